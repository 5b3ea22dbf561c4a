"""Event relay: the outbox drained by the product's relay, directly and through Prefect.

Set-up (not measured): real lifecycles through the service layer fill the outbox with the
events the engine writes (submitted, screened, task opened/decided, approved, paid …). Each
variant then starts from the same outbox: every row back to pending, the consumers' records
(consumed events, notification rows) deleted. A variant is one child process
(`bench.relay_worker`) so its peak RSS is the flow worker's: `direct` calls
`domain.service.relay.Relay.drain`; `prefect` runs the `outbox-relay` flow once against a real
Prefect server, with one `handle-events` task run per batch (batch sizes 1, 50, 500).
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text, update

from bench.core import Figure, Latencies, RunContext, Section
from bench.dbs import BenchDb, fresh_db
from bench.prefect_local import client_env
from bench.workload import members_needed, plan, run_lifecycle
from bench.world import app_for, build_world
from domain.adapters.repository import ACCOUNT, OUTBOX

NAME = "relay"
NEEDS_PREFECT = True
TITLE = "Event relay (outbox → consumers), directly and through Prefect"
ROOT = Path(__file__).resolve().parent.parent
EVENTS = {"smoke": 300, "small": 3_000, "full": 10_000}
# Batch size → events handled in that variant: one task run per event is slow, so batch 1
# drains a sample only (its rate is what matters).
SAMPLE_BATCH_1 = {"smoke": 10, "small": 150, "full": 300}


def fill_outbox(engine: Engine, app_db: BenchDb, events: int) -> int:
    """Run lifecycles until the outbox holds at least `events` rows; the row count."""
    app = app_for(app_db, engine)
    cases = max(4, events // 8 + 4)  # ≈ 9–11 events a case: enough, stopped at `events`
    spec = build_world(app, members_needed(cases))
    lat = Latencies()
    for i, lc in enumerate(plan(spec, cases)):
        run_lifecycle(app.service, spec, lc, lat)
        if i % 20 == 19 and count(engine) >= events:
            break
    give_addresses(engine)
    return count(engine)


def give_addresses(engine: Engine) -> None:
    """Every account an e-mail address: without one nobody is notified, and the notification
    consumer would plan every event and write nothing."""
    with engine.begin() as c:
        c.execute(update(ACCOUNT).values(email=ACCOUNT.c.username + "@congdoan.test"))


def count(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(OUTBOX)).scalar_one())


def reset(engine: Engine) -> None:
    """Every event pending again, as if no relay had run."""
    with engine.begin() as c:
        c.execute(
            update(OUTBOX).values(
                status="pending",
                attempts=0,
                claimed_by=None,
                lease_until=None,
                processed_at=None,
                last_error=None,
            )
        )
        c.execute(text("DELETE FROM consumed_event"))
        c.execute(text("DELETE FROM notification"))


def run_worker(env: dict[str, str], variants: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    args = [f"{m}:{b}:{n}" for m, b, n in variants]
    p = subprocess.run(
        [sys.executable, "-m", "bench.relay_worker", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if p.returncode != 0:
        raise RuntimeError(f"relay worker failed:\n{p.stderr[-3000:]}")
    return [json.loads(line) for line in p.stdout.strip().splitlines() if line.startswith("{")]


def run(ctx: RunContext) -> Section:
    section = Section(NAME, TITLE)
    want = EVENTS[ctx.size.name]
    with fresh_db("sqlite", "relay", ctx.workdir, ctx.postgres_url) as db:
        engine = db.engine()
        try:
            n = fill_outbox(engine, db, want)
            ctx.log(f"  outbox filled with {n:,} events by real lifecycles")
            variants: list[tuple[str, int, int]] = [
                ("direct", 500, 10_000),
                ("prefect", 500, 10_000),
                ("prefect", 50, 10_000),
                ("prefect", 1, SAMPLE_BATCH_1[ctx.size.name]),
            ]
            if ctx.size.name == "smoke":  # the CI pass: every code path, less waiting
                del variants[2]
            api, home = ctx.prefect()
            env = {
                **client_env(home, api),
                "WELFARE_DATABASE_URL": db.url,
                "WELFARE_DATA_DIR": str(ctx.workdir / "data"),
                "WELFARE_SCREENING": "inline",
            }
            # A first flow run pays the Prefect client's one-off set-up: not a relay cost.
            results = run_worker(env, [("prefect", 500, 0), *variants])[1:]
            for (mode, batch, max_batches), r in zip(variants, results, strict=True):
                handled = int(r["processed"])
                if handled < min(n, batch * max_batches):
                    raise RuntimeError(f"{mode}/{batch}: only {handled} of {n} events handled")
                label = "without Prefect" if mode == "direct" else "Prefect flow"
                batches = -(-handled // batch)
                section.add(
                    Figure(
                        f"relay.{mode}.b{batch}.events_per_s",
                        f"relay {label}, batch {batch}: events/s",
                        handled / r["seconds"],
                        "events/s",
                        target="≥ 1,000" if batch == 500 else "",
                        explain=f"{handled:,} events in {r['seconds']:.2f} s ({r['cpu_s']:.2f} s "
                        f"of the worker's CPU), {batches:,} batch(es): "
                        f"{1000 * r['seconds'] / handled:.2f} ms an event.",
                    )
                )
            section.add(
                Figure(
                    "relay.flow_worker_rss_mb",
                    "flow worker peak RSS (relay, all variants)",
                    max(r["rss_mb"] for r in results),
                    "MB",
                    target="≤ 300",
                    explain="One process ran every variant, the Prefect client included; its own "
                    "peak (VmHWM), not `ru_maxrss`, which includes the bench driver's peak.",
                )
            )
        finally:
            engine.dispose()
    section.notes.append(
        f"{n:,} outbox events written by real lifecycles on SQLite; every variant drains the "
        "same rows (reset to pending in between). Consumers: screening (a no-op here: cases "
        "were screened inline) and notifications (recipients looked up, notification rows "
        "written: every account has an address); e-mail sending is off. Batch 1 drains a "
        "sample only."
    )
    return section
