"""A Tết list in one `POST /api/v1/case-lists`, to every first task open.

The target is 10,000 members in ≤ 20 s on SQLite, which size full runs (QUADRATIC says why a
list used to cost more per member the longer it was, and why size full once ran only 3,000:
the request counts the quota once, and screening once per batch of 100 cases). Should the
API refuse a list for its length (it takes 10,000), the list is sent in halves, and the
figure says so.

Set-up (not measured): the benchmark world, the members bulk-inserted (each joined in 2015),
the `tet` campaign declared with a unit quota above the list, the upper-level `tet` budgets,
passwords; the API (uvicorn, one worker) on a free loopback port.

* **flow** (WELFARE_SCREENING=flow, the product's default shape): the request files every case
  in `screening`; then the product's `outbox-relay` flow runs once against the run's Prefect
  server — for each claimed batch the `tet` policy flow screens the submitted cases (one task
  run a batch, `flows.policies.CHUNK`), the consumers handle the events, and the next
  batches carry the events screening wrote. The flow process is started and warmed up
  before the request (in production it is always running); the clock stops when the relay
  finds the outbox empty, and the bench then checks that every case has its first task open.
* **inline** (WELFARE_SCREENING=inline): screening inside the list request; the clock stops
  with the answer.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update

from bench.core import Figure, RunContext, Section
from bench.dbs import BenchDb, fresh_db
from bench.http import ACCOUNT, PASSWORD, SECRET, RssSampler, start_api
from bench.prefect_local import client_env, free_port
from bench.world import ADMIN, add_members, app_for, build_world
from domain.adapters.repository import CASE, TASK
from domain.service.accounts import hash_password
from domain.service.commands import DeclareCampaign
from domain.workcalendar import VN_TZ

NAME = "tet_list"
TITLE = "A Tết list in one request, to every first task open (target: 10,000 in ≤ 20 s)"
NEEDS_PREFECT = True
ROOT = Path(__file__).resolve().parent.parent
MEMBERS = {"smoke": 100, "small": 1_000, "full": 10_000}
UNIT = "CS-A"
DOC = {
    "kind": "signed_list",
    "filename": "CS-A-danh-sach-tet.pdf",
    "sha256": "ab" * 32,
    "size": 250_000,
}


QUADRATIC = (
    "A list used to cost more per member the longer it was: every submission and every "
    "screening read all earlier cases that shared the list's signed document "
    "(`Repository.reused_documents`) and counted the campaign's cases of the unit "
    "(`Repository.quota_used`) — 45 % of a 1,000-member list, which is why size full once "
    "ran 3,000 members. Fixed: only the facts the policy's rules use are read (tet uses no "
    "document reuse), the request counts the quota once under its lock and adds its own "
    "accepted items, and screening (`WelfareService.screen_many`) counts it once per batch "
    "of 100 cases."
)


def prepare(db: BenchDb, n: int) -> tuple[str, list[str], list[str]]:
    """Campaign id and two member sets (flow variant, inline variant) of `n` each."""
    engine = db.engine()
    try:
        app = app_for(db, engine)
        spec = build_world(app, 1)
        a = app.admin
        year = datetime.now(UTC).astimezone(VN_TZ).year
        for y in (year, year + 1):
            for upper in ("TP", "DK"):
                a.set_budget(ADMIN, upper, y, "tet", 10**15)
        today = datetime.now(UTC).astimezone(VN_TZ).date()
        campaign = a.declare_campaign(
            spec.accounts["province_standing"],
            DeclareCampaign(
                policy="tet",
                code="TET-BENCH",
                title="Tết Sum vầy (benchmark)",
                opens_on=today - timedelta(days=5),
                closes_on=today + timedelta(days=30),
                event_from=today - timedelta(days=5),
                event_to=today + timedelta(days=30),
                quotas={UNIT: 3 * n},
            ),
        )
        with engine.begin() as c:
            c.execute(update(ACCOUNT).values(password_hash=hash_password(PASSWORD)))
        return campaign, add_members(engine, UNIT, n), add_members(engine, UNIT, n)
    finally:
        engine.dispose()


def body(campaign: str, members: list[str], on: date) -> dict[str, Any]:
    item = {"subtype": "standard", "event_date": on.isoformat(), "documents": [DOC]}
    items = [{**item, "member_id": m, "form": {"criterion": "low_income"}} for m in members]
    return {"policy": "tet", "unit_id": UNIT, "campaign_id": campaign, "items": items}


def login(base: str) -> dict[str, str]:
    """The officer's Authorization header. Logged in before the list's RSS is sampled: one
    argon2 verification takes 64 MiB for a moment (pwdlib's recommended memory cost), more
    than the list itself needs since the fourth round (bench/NOTES.md)."""
    r = httpx.post(
        f"{base}/auth/token",
        data={"username": f"officer_{UNIT}", "password": PASSWORD},
        timeout=60,
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def submit(
    base: str, payload: dict[str, Any], auth: dict[str, str]
) -> tuple[float, list[dict[str, Any]], int]:
    """POST the list (split only if the API refuses its length); seconds, answers, requests."""
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        t0 = time.perf_counter()
        items = payload["items"]
        size = len(items)
        while True:
            answers: list[dict[str, Any]] = []
            chunks = [items[i : i + size] for i in range(0, len(items), size)]
            for chunk in chunks:
                r = await client.post(
                    "/api/v1/case-lists", json={**payload, "items": chunk}, headers=auth
                )
                if r.status_code == 422 and size > 1 and not answers and "items" in r.text:
                    break
                if r.status_code != 200:
                    raise RuntimeError(f"list refused: {r.status_code} {r.text[:500]}")
                answers.append(r.json())
            else:
                return time.perf_counter() - t0, answers, len(chunks)
            size = -(-size // 2)  # too long for one request: halves, and say so
            t0 = time.perf_counter()


def check_first_tasks(db: BenchDb, case_ids: list[str]) -> tuple[int, int]:
    """(cases still in screening, cases with an open task) among `case_ids`."""
    engine = db.engine()
    try:
        with engine.connect() as c:
            waiting = opened = 0
            for i in range(0, len(case_ids), 500):
                chunk = case_ids[i : i + 500]
                waiting += int(
                    c.execute(
                        select(func.count())
                        .select_from(CASE)
                        .where(CASE.c.id.in_(chunk), CASE.c.status == "screening")
                    ).scalar_one()
                )
                opened += int(
                    c.execute(
                        select(func.count(func.distinct(TASK.c.case_id))).where(
                            TASK.c.case_id.in_(chunk), TASK.c.status == "open"
                        )
                    ).scalar_one()
                )
        return waiting, opened
    finally:
        engine.dispose()


def worker_log(ctx: RunContext) -> str:
    return (ctx.workdir / "tet-worker.log").read_text(errors="replace")[-3000:]


def api_env(db: BenchDb, ctx: RunContext, screening: str) -> dict[str, str]:
    return {
        **os.environ,
        "WELFARE_DATABASE_URL": db.url,
        "WELFARE_DATA_DIR": str(ctx.workdir / "api-data"),
        "WELFARE_SECRET_KEY": SECRET,
        "WELFARE_SCREENING": screening,
    }


def variant(
    ctx: RunContext, db: BenchDb, screening: str, campaign: str, members: list[str]
) -> dict[str, Any]:
    worker, errors, api = None, None, None
    try:
        if screening == "flow":  # started first: it warms up while the API starts
            prefect_api, home = ctx.prefect()
            env = {**client_env(home, prefect_api), **api_env(db, ctx, screening)}
            errors = (ctx.workdir / "tet-worker.log").open("w")
            worker = subprocess.Popen(
                [sys.executable, "-m", "bench.tet_worker"],
                env=env,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        port = free_port()
        api = start_api(api_env(db, ctx, screening), port, ctx.workdir / f"uvicorn-{screening}.log")
        if worker is not None:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError(f"tet worker failed:\n{worker_log(ctx)}")
        today = datetime.now(UTC).astimezone(VN_TZ).date()
        payload = body(campaign, members, today)
        base = f"http://127.0.0.1:{port}"
        auth = login(base)
        time.sleep(0.5)  # the login's argon2 memory handed back before sampling starts
        started = time.time()
        with RssSampler(api.pid) as rss:
            seconds, answers, requests = asyncio.run(submit(base, payload, auth))
        out: dict[str, Any] = {"request_s": seconds, "requests": requests, "api_rss": rss.peak}
        case_ids = [i["case_id"] for a in answers for i in a["items"] if i["case_id"]]
        out["accepted"] = sum(a["accepted"] + a["flagged"] for a in answers)
        out["refused"] = sum(a["refused"] for a in answers)
        if worker is not None:
            assert worker.stdin is not None
            assert worker.stdout is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
            line = worker.stdout.readline()
            if not line.startswith("{"):
                raise RuntimeError(f"tet worker failed:\n{worker_log(ctx)}")
            r = json.loads(line)
            out.update(relay_s=r["seconds"], total_s=r["end"] - started, flow_rss=r["rss_mb"])
            out["relay_cpu_s"] = r["cpu_s"]
            out["relay"] = r
        else:
            out["total_s"] = time.time() - started
        out["waiting"], out["opened"] = check_first_tasks(db, case_ids)
        return out
    finally:
        if worker is not None:
            worker.kill()
            worker.wait()
        if errors is not None:
            errors.close()
        if api is not None:
            api.terminate()
            try:
                api.wait(timeout=20)
            except subprocess.TimeoutExpired:
                api.kill()


def run(ctx: RunContext) -> Section:
    section = Section(NAME, TITLE)
    n = MEMBERS[ctx.size.name]
    with fresh_db("sqlite", "tet", ctx.workdir, ctx.postgres_url) as db:
        campaign, flow_members, inline_members = prepare(db, n)
        results = {"flow": variant(ctx, db, "flow", campaign, flow_members)}
        if ctx.size.name != "smoke":  # the CI pass runs the flow path only
            results["inline"] = variant(ctx, db, "inline", campaign, inline_members)
    for name, r in results.items():
        if r["accepted"] != n or r["waiting"] or r["opened"] != n:
            raise RuntimeError(f"{name}: {r['accepted']} accepted, {r['opened']} opened of {n}")
        split = (
            f" The API accepts at most {n // r['requests']:,} items a request, so the list went "
            f"in {r['requests']} requests."
            if r["requests"] > 1
            else ""
        )
        if name == "flow":
            explain = (
                f"List request {r['request_s']:.1f} s (cases filed, in screening), then the "
                f"relay flow {r['relay_s']:.1f} s ({r['relay_cpu_s']:.1f} s of the flow worker's "
                "CPU: screening by the `tet` policy flow and every event handled). In "
                "production the relay is scheduled every 15 s, which can add up to 15 s of "
                f"waiting before it starts.{split}"
            )
        else:
            explain = f"Screening inside the request; the answer lists every case.{split}"
        section.add(
            Figure(
                f"tet.sqlite.{name}.seconds",
                f"{n:,} members, screening {name}: request to every first task open",
                r["total_s"],
                "s",
                target="≤ 20" if name == "flow" else "",
                met=r["total_s"] <= 20 if n == 10_000 else None,
                explain=explain,
            )
        )
    section.add(
        Figure(
            "tet.api_worker_rss_mb",
            "peak RSS of the API worker during the list request",
            max(r["api_rss"] for r in results.values()),
            "MB",
            target="≤ 200",
            explain="The API worker's resident memory, sampled every 100 ms while it takes the "
            "whole list in one request and answers it: the memory to plan for each API worker "
            "in the Tết peak.",
        )
    )
    section.add(
        Figure(
            "tet.flow_worker_rss_mb",
            "peak RSS of the flow worker (relay + tet policy flows)",
            results["flow"]["flow_rss"],
            "MB",
            target="≤ 300",
            explain="The worker's own peak (VmHWM); `ru_maxrss` also counts the bench driver's "
            "peak, which a child inherits on Linux (the 799 MB once reported here).",
        )
    )
    section.notes.append(QUADRATIC)
    section.notes.append(
        f"SQLite; {n:,} members of one grassroots union, standard Tết support, one signed list "
        "document; campaign quota above the list. The flow variant's relay ran "
        f"{results['flow']['relay'].get('claimed', 0):,} events."
    )
    return section
