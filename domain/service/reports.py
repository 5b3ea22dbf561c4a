"""Scheduled work: the nightly audit-chain verification and the yearly report (first version).

Both record what they did in the audit log and announce it through the outbox, so e-mail to
the auditors or the provincial standing committee goes the same way as every other message.
"""

import csv
import json
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from domain.adapters.db import READ_ONLY
from domain.adapters.repository import CASE, DECISION, ORG, TASK, Repository
from domain.adapters.unit_of_work import UnitOfWork
from domain.audit import VerifyResult
from domain.events import Event
from domain.model import AuditIntent
from domain.roles import OrgLevel
from domain.service.notifications import AUDIT_VERIFICATION_FAILED, REPORT_READY
from domain.service.queries import verify_audit
from domain.workcalendar import VN_TZ

STATUSES = ("screening", "in_review", "awaiting_info", "approved", "paid", "rejected", "withdrawn")


# --- nightly audit verification -------------------------------------------------------------


def verify_and_alert(engine: Engine, now: datetime) -> VerifyResult:
    """Verify the chain; record `audit.verified` with the result; alert auditors on a break."""
    result = verify_audit(engine)
    payload = {
        "ok": result.ok,
        "checked": result.checked,
        "head_seq": result.head_seq,
        "broken_seq": result.broken_seq,
        "problem": result.problem,
        "problem_code": result.problem_code,
        "problem_params": dict(result.problem_params),
    }
    events = []
    if not result.ok:
        events.append(
            Event(
                type=AUDIT_VERIFICATION_FAILED,
                occurred_at=now,
                data={
                    "broken_seq": result.broken_seq,
                    "checked": result.checked,
                    "problem": (result.problem or "")[:200],
                    # Each auditor's e-mail says it in their language.
                    "problem_code": result.problem_code,
                    "problem_params": dict(result.problem_params),
                },
            )
        )
    with UnitOfWork(engine) as uow:
        uow.record(
            audit=[
                AuditIntent(
                    action="audit.verified",
                    entity_type="audit",
                    entity_id=str(result.head_seq),
                    actor_id="system",
                    actor_role=None,
                    org_unit_id=None,
                    policy=None,
                    policy_version=None,
                    payload=payload,
                )
            ],
            events=events,
        )
        uow.commit(now)
    return result


# --- the yearly report ------------------------------------------------------------------------


@dataclass
class UnitPolicyLine:
    """One upper-level (commune/ward) union, one policy, one year."""

    year: int
    unit_id: str
    unit_name: str
    policy: str
    cases: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    approved_amount: int = 0
    paid_amount: int = 0
    members_supported: int = 0
    median_decision_days: float | None = None
    overdue_tasks: int = 0


@dataclass(frozen=True)
class ReportFiles:
    year: int
    csv: Path
    json: Path
    units: int
    cases: int


def yearly_lines(engine: Engine, year: int) -> list[UnitPolicyLine]:
    """The plan's indicators per upper-level unit and policy, for cases filed in `year`.

    The year is the local (Asia/Ho_Chi_Minh) year of submission; a case counts under the
    upper-level union its grassroots union belonged to on 31 December of that year (or now).
    """
    start = datetime(year, 1, 1, tzinfo=VN_TZ).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=VN_TZ).astimezone(UTC)
    on = min(datetime(year, 12, 31, tzinfo=VN_TZ).date(), datetime.now(VN_TZ).date())
    c = CASE.c
    with engine.connect().execution_options(**READ_ONLY) as conn:
        repo = Repository(conn)
        names = {r[0]: r[1] for r in conn.execute(select(ORG.c.id, ORG.c.name))}
        cases = list(
            conn.execute(
                select(
                    c.id,
                    c.unit_id,
                    c.policy,
                    c.status,
                    c.member_id,
                    c.submitted_at,
                    c.approved_amount,
                    c.paid_amount,
                ).where(c.submitted_at >= start, c.submitted_at < end)
            ).mappings()
        )
        last_decision: dict[str, datetime] = dict(
            conn.execute(
                select(DECISION.c.case_id, func.max(DECISION.c.at))
                .join(CASE, CASE.c.id == DECISION.c.case_id)
                .where(c.submitted_at >= start, c.submitted_at < end)
                .group_by(DECISION.c.case_id)
            )
            .tuples()
            .all()
        )
        overdue: dict[str, int] = dict(
            conn.execute(
                select(TASK.c.case_id, func.count())
                .join(CASE, CASE.c.id == TASK.c.case_id)
                .where(
                    c.submitted_at >= start,
                    c.submitted_at < end,
                    TASK.c.escalation.in_(("overdue", "escalated")),
                )
                .group_by(TASK.c.case_id)
            )
            .tuples()
            .all()
        )
        upper_of: dict[str, str] = {}
        for unit in {r["unit_id"] for r in cases}:
            upper_of[unit] = repo.ancestry(unit, on).get(OrgLevel.UPPER, unit)
    lines: dict[tuple[str, str], UnitPolicyLine] = {}
    members: dict[tuple[str, str], set[str]] = {}
    durations: dict[tuple[str, str], list[float]] = {}
    for r in cases:
        upper = upper_of[r["unit_id"]]
        key = (upper, r["policy"])
        line = lines.setdefault(
            key, UnitPolicyLine(year, upper, names.get(upper, upper), r["policy"])
        )
        line.cases += 1
        line.by_status[r["status"]] = line.by_status.get(r["status"], 0) + 1
        if r["status"] in ("approved", "paid"):
            line.approved_amount += r["approved_amount"] or 0
            members.setdefault(key, set()).add(r["member_id"])
        line.paid_amount += r["paid_amount"] or 0
        line.overdue_tasks += int(overdue.get(r["id"], 0))
        decided = last_decision.get(r["id"])
        if decided is not None and r["status"] in ("approved", "paid", "rejected"):
            if decided.tzinfo is None:
                decided = decided.replace(tzinfo=UTC)
            durations.setdefault(key, []).append(
                (decided - r["submitted_at"]).total_seconds() / 86_400
            )
    for key, line in lines.items():
        line.members_supported = len(members.get(key, ()))
        if durations.get(key):
            line.median_decision_days = round(statistics.median(durations[key]), 2)
    return sorted(lines.values(), key=lambda x: (x.unit_name, x.unit_id, x.policy))


CSV_COLUMNS = (
    "year",
    "unit_id",
    "unit_name",
    "policy",
    "cases",
    *(f"status_{s}" for s in STATUSES),
    "approved_amount",
    "paid_amount",
    "members_supported",
    "median_decision_days",
    "overdue_tasks",
)


def write_yearly_report(engine: Engine, year: int, out_dir: Path, now: datetime) -> ReportFiles:
    """Write `yearly-<year>.csv` and `.json` under `out_dir`; audit it; announce it by mail."""
    lines = yearly_lines(engine, year)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / f"yearly-{year}.csv", out_dir / f"yearly-{year}.json"
    with csv_path.open("w", newline="", encoding="utf-8-sig") as f:  # BOM: Excel reads UTF-8
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for x in lines:
            w.writerow(
                [
                    x.year,
                    x.unit_id,
                    x.unit_name,
                    x.policy,
                    x.cases,
                    *(x.by_status.get(s, 0) for s in STATUSES),
                    x.approved_amount,
                    x.paid_amount,
                    x.members_supported,
                    "" if x.median_decision_days is None else x.median_decision_days,
                    x.overdue_tasks,
                ]
            )
    document = {
        "year": year,
        "generated_at": now.isoformat(),
        "lines": [asdict(x) for x in lines],
    }
    json_path.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    files = ReportFiles(
        year,
        csv_path,
        json_path,
        units=len({x.unit_id for x in lines}),
        cases=sum(x.cases for x in lines),
    )
    with UnitOfWork(engine) as uow:
        uow.record(
            audit=[
                AuditIntent(
                    action="report.generated",
                    entity_type="report",
                    entity_id=f"yearly-{year}",
                    actor_id="system",
                    actor_role=None,
                    org_unit_id=None,
                    policy=None,
                    policy_version=None,
                    payload={"year": year, "units": files.units, "cases": files.cases},
                )
            ],
            events=[
                Event(
                    type=REPORT_READY,
                    occurred_at=now,
                    data={
                        "year": year,
                        "units": files.units,
                        "cases": files.cases,
                        "csv": csv_path.name,
                        "json": json_path.name,
                    },
                )
            ],
        )
        uow.commit(now)
    return files
