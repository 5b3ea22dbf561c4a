"""The audit log: chain verification speed, and one case's trail with a large log.

The log is built fast: entries sealed with `domain.audit.seal` (a valid chain) and
bulk-inserted; 1 case in 4 entries-worth belongs to sampled cases, the rest is background.
"""

import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, update

from bench.core import Figure, RunContext, Section, percentile
from bench.dbs import Kind, fresh_db
from bench.lifecycles import NAMES
from domain.adapters.repository import AUDIT, AUDIT_HEAD
from domain.audit import GENESIS, canonical_json, seal
from domain.service import queries
from domain.service.queries import (
    VERIFY_SEGMENT_MIN,
    VERIFY_SEGMENTS,
    case_trail,
    verify_audit,
)

NAME = "audit_log"
TITLE = "Audit log: verification and case trails"
CHUNK = 20_000


def _fill(engine: Any, n: int) -> list[str]:
    """`n` sealed entries, 6 per case (a housing lifecycle's worth); returns the case ids."""
    now = datetime.now(UTC)
    head, seq = GENESIS, 0
    cases: list[str] = []
    rows: list[dict[str, Any]] = []
    case = ""
    actions = (
        "case.submitted",
        "case.screened",
        "task.decided",
        "task.decided",
        "task.decided",
        "case.payment_recorded",
    )
    with engine.begin() as conn:
        for i in range(n):
            if i % 6 == 0:
                case = str(uuid.uuid4())
                cases.append(case)
            seq += 1
            e = seal(
                seq=seq,
                prev_hash=head,
                at=now,
                actor_id="acc-officer",
                actor_role="grassroots_officer",
                org_unit_id="CS-A",
                action=actions[i % 6],
                entity_type="case",
                entity_id=case,
                policy="housing",
                policy_version=1,
                payload={
                    "case": case,
                    "status": "in_review",
                    "amount": 25_000_000,
                    "checks": [
                        {
                            "rule": "cccd_plausible",
                            "code": "C1",
                            "outcome": "passed",
                            "reason": "ok",
                            "params": {},
                        }
                    ],
                },
            )
            head = e.entry_hash
            rows.append(
                {
                    "seq": e.seq,
                    "at": e.at,
                    "actor_id": e.actor_id,
                    "actor_role": e.actor_role,
                    "org_unit_id": e.org_unit_id,
                    "action": e.action,
                    "entity_type": e.entity_type,
                    "entity_id": e.entity_id,
                    "policy": e.policy,
                    "policy_version": e.policy_version,
                    "payload": canonical_json(e.payload).decode(),
                    "prev_hash": e.prev_hash,
                    "entry_hash": e.entry_hash,
                }
            )
            if len(rows) >= CHUNK:
                conn.execute(insert(AUDIT), rows)
                rows = []
        if rows:
            conn.execute(insert(AUDIT), rows)
        conn.execute(
            update(AUDIT_HEAD).where(AUDIT_HEAD.c.id == 1).values(seq=seq, entry_hash=head)
        )
    return cases


def run(ctx: RunContext) -> Section:
    section = Section(NAME, TITLE)
    kinds: list[Kind] = ["sqlite", "postgres"] if ctx.postgres_url else ["sqlite"]
    n = ctx.size.audit_entries
    rng = random.Random(5)
    for kind in kinds:
        with fresh_db(kind, "audit", ctx.workdir, ctx.postgres_url) as db:
            engine = db.engine()
            try:
                t0 = time.perf_counter()
                cases = _fill(engine, n)
                ctx.log(
                    f"  {kind}: {n:,} audit entries sealed and inserted in {time.perf_counter() - t0:.1f} s"
                )
                if kind == "postgres":
                    with engine.begin() as c:
                        c.exec_driver_sql("ANALYZE audit_entry")
                segments = len(
                    queries._plan_segments(
                        engine, VERIFY_SEGMENTS.get(engine.dialect.name, 1), VERIFY_SEGMENT_MIN
                    )
                )
                t0, cpu0 = time.perf_counter(), time.process_time()
                result = verify_audit(engine)
                seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                if not result.ok or result.checked != n:
                    raise RuntimeError(f"verification failed: {result}")
                section.add(
                    Figure(
                        f"audit.{kind}.verify_per_s",
                        f"{NAMES[kind]}: chain verification",
                        n / seconds,
                        "entries/s",
                        explain=f"`welfare audit verify` over {n:,} entries took {seconds:,.1f} s "
                        f"({segments} segment(s) at once; {cpu / n * 1e6:.2f} µs of this "
                        f"process's CPU an entry, the database server's not counted): a year of "
                        f"a province's activity (≈ {n:,} entries) is checked in that time.",
                    )
                )
                samples = [rng.choice(cases) for _ in range(ctx.size.trail_samples)]
                for cid in samples[:10]:
                    case_trail(engine, cid)  # warm the connection pool and caches
                lat = []
                for cid in samples:
                    t0 = time.perf_counter()
                    trail = case_trail(engine, cid)
                    lat.append(time.perf_counter() - t0)
                    if len(trail) != 6:
                        raise RuntimeError(f"trail of {cid} has {len(trail)} entries")
                section.add(
                    Figure(
                        f"audit.{kind}.trail_p95_ms",
                        f"{NAMES[kind]}: one case's trail p95 ({n:,} entries in the log)",
                        percentile(lat, 95) * 1000,
                        "ms",
                        explain="What an auditor waits for a case's full decision trail with hash links.",
                    )
                )
            finally:
                engine.dispose()
    return section
