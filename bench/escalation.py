"""The SLA sweep: `WelfareService.escalate_due(now)` with 1,000 overdue tasks among N open ones.

Set-up is not measured: open cases and their tasks are bulk-inserted with plain SQL (COPY on
PostgreSQL). The overdue thousand are a third each reminder-due, overdue and past twice the
SLA (reassigned to the escalation target), so every rung of the ladder is exercised.

Each size is swept `SWEEPS` times and the median kept: one sweep lasts a few tenths of a
second, which a neighbour's burst on this shared machine can double (one run measured 0.50 s
where the runs before and after it measured 0.27 s). Between sweeps a fresh overdue thousand
is inserted and a thousand of the not-yet-due cases deleted, so every sweep finds the same
number of open tasks and the same number due.
"""

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.core import Figure, RunContext, Section, median
from bench.dbs import BenchDb, Kind, fresh_db
from bench.lifecycles import NAMES
from bench.world import GRASSROOTS, WorldSpec, app_for, build_world

NAME = "escalation"
SWEEPS = 3
TITLE = "SLA sweep scaling"
CASE_COLS = [
    "id",
    "policy",
    "policy_version",
    "subtype",
    "member_id",
    "household_key",
    "unit_id",
    "submitted_by",
    "submitter_person",
    "submitted_at",
    "event_date",
    "form",
    "entitled_amount",
    "paid_amount",
    "status",
    "current_step",
    "paused_clock_used",
    "flags",
    "reserved_amount",
    "version",
]
TASK_COLS = [
    "id",
    "case_id",
    "step",
    "kind",
    "role",
    "level",
    "org_unit_id",
    "opened_at",
    "clock",
    "sla_seconds",
    "clock_used_before",
    "remind_at",
    "due_at",
    "escalate_at",
    "approvals_needed",
    "committee",
    "status",
    "escalation",
    "next_check_at",
]


def _insert(
    db: BenchDb, raw: Any, spec: WorldSpec, n: int, overdue: int, now: datetime
) -> list[str]:
    """`n` open illness cases at grassroots review; the first `overdue` tasks are due now.

    Returns the ids of the others (not due for days)."""
    pg = db.kind == "postgres"
    d = timedelta(days=1)

    def ts(x: datetime) -> Any:
        return x if pg else x.replace(tzinfo=None).isoformat(" ")

    future = (ts(now + 3 * d), ts(now + 5 * d), ts(now + 10 * d))
    ladders = [
        (ts(now - 2 * d), ts(now + 5 * d), ts(now + 10 * d)),  # reminder due
        (ts(now - 6 * d), ts(now - d), ts(now + 4 * d)),  # overdue
        (ts(now - 12 * d), ts(now - 7 * d), ts(now - 2 * d)),  # past twice the SLA
    ]
    opened, today = ts(now - 15 * d), now.date() if pg else now.date().isoformat()
    members = [(u, m) for u in GRASSROOTS for m in spec.members[u]]
    officer = spec.accounts["officer_CS-A"]
    cases: list[tuple[Any, ...]] = []
    tasks: list[tuple[Any, ...]] = []
    for j in range(n):
        unit, member = members[j % len(members)]
        cid = str(uuid.uuid4())
        remind, due, esc = ladders[j % 3] if j < overdue else future
        cases.append(
            (
                cid,
                "illness",
                1,
                "hospital",
                member,
                f"hh-{member}",
                unit,
                officer,
                officer,
                opened,
                today,
                "{}",
                500_000,
                0,
                "in_review",
                "grassroots_review",
                0,
                "[]",
                0,
                0,
            )
        )
        tasks.append(
            (
                str(uuid.uuid4()),
                cid,
                "grassroots_review",
                "approval",
                "grassroots_chair",
                "grassroots",
                unit,
                opened,
                "working_days",
                5 * 86400,
                0,
                remind,
                due,
                esc,
                1,
                False if pg else 0,
                "open",
                "none",
                remind,
            )
        )
    not_due = [row[0] for row in cases[overdue:]]
    if pg:
        with raw.cursor() as cur:
            with cur.copy(f"COPY welfare_case ({', '.join(CASE_COLS)}) FROM STDIN") as cp:
                for row in cases:
                    cp.write_row(row)
            with cur.copy(f"COPY task ({', '.join(TASK_COLS)}) FROM STDIN") as cp:
                for row in tasks:
                    cp.write_row(row)
        raw.commit()
        with raw.cursor() as cur:
            cur.execute("ANALYZE welfare_case")
            cur.execute("ANALYZE task")
        raw.commit()
        return not_due
    cur = raw.cursor()
    cur.execute("BEGIN")
    cur.executemany(
        f"INSERT INTO welfare_case ({', '.join(CASE_COLS)}) VALUES ({', '.join('?' * len(CASE_COLS))})",
        cases,
    )
    cur.executemany(
        f"INSERT INTO task ({', '.join(TASK_COLS)}) VALUES ({', '.join('?' * len(TASK_COLS))})",
        tasks,
    )
    cur.execute("COMMIT")
    cur.execute("ANALYZE")
    # The state of a database between sweeps: its WAL copied back into the file. Otherwise the
    # sweep's first commit may be the one that checkpoints the bulk insert's pages.
    cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return not_due


def _delete(db: BenchDb, raw: Any, case_ids: list[str]) -> None:
    """Delete these (not yet due) cases and their tasks: the open count stays as it was."""
    mark = "%s" if db.kind == "postgres" else "?"
    cur = raw.cursor()
    for table, col in (("task", "case_id"), ("welfare_case", "id")):
        cur.executemany(f"DELETE FROM {table} WHERE {col} = {mark}", [(c,) for c in case_ids])
    raw.commit()
    if db.kind == "sqlite":
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cur.close()


def _check_open(raw: Any, n: int) -> None:
    cur = raw.cursor()
    cur.execute("SELECT count(*) FROM task WHERE status = 'open'")
    found = cur.fetchone()[0]
    cur.close()
    raw.commit()
    if found != n:
        raise RuntimeError(f"{found:,} open tasks before the sweep, not {n:,}")


def run(ctx: RunContext) -> Section:
    section = Section(NAME, TITLE)
    kinds: list[Kind] = ["sqlite", "postgres"] if ctx.postgres_url else ["sqlite"]
    overdue = ctx.size.sweep_overdue
    for kind in kinds:
        with fresh_db(kind, "sweep", ctx.workdir, ctx.postgres_url) as db:
            engine = db.engine()
            app = app_for(db, engine)
            spec = build_world(app, 25)
            raw: Any = engine.raw_connection()
            dbapi = raw.driver_connection
            open_now = 0
            not_due: list[str] = []
            try:
                for n in ctx.size.sweep_open:
                    now = datetime.now(UTC)
                    t0 = time.perf_counter()
                    # The overdue thousand, then background tasks up to n open in all.
                    not_due += _insert(db, dbapi, spec, n - open_now, overdue, now)
                    open_now = n
                    ctx.log(
                        f"  {kind}: {n:,} open tasks inserted in {time.perf_counter() - t0:.1f} s"
                    )
                    times: list[float] = []
                    for sweep in range(SWEEPS):
                        if sweep:  # a fresh overdue thousand in place of a thousand not due
                            now = datetime.now(UTC)
                            _insert(db, dbapi, spec, overdue, overdue, now)
                            _delete(db, dbapi, not_due[-overdue:])
                            del not_due[-overdue:]
                        _check_open(dbapi, n)
                        t0 = time.perf_counter()
                        result = app.service.escalate_due(now)
                        times.append(time.perf_counter() - t0)
                        if result.changed != overdue:
                            raise RuntimeError(f"sweep changed {result.changed} of {overdue} tasks")
                        again = app.service.escalate_due(now)
                        if again.changed:
                            raise RuntimeError("a second sweep changed tasks again")
                    seconds = median(times)
                    spread = ", ".join(f"{t:.3f}" for t in times)
                    section.add(
                        Figure(
                            f"escalation.{kind}.{n}.seconds",
                            f"{NAMES[kind]}: {overdue:,} overdue among {n:,} open",
                            seconds,
                            "s",
                            explain=f"The median of {SWEEPS} sweeps ({spread} s): "
                            f"{overdue / seconds:,.0f} tasks escalated per second. Run every few "
                            "minutes, it keeps up with any realistic number of late approvals.",
                        )
                    )
            finally:
                raw.close()
                engine.dispose()
    return section
