"""Read models of the case side, always within the caller's scope: case lists, one case in
detail, the approver's inbox, and approved cases awaiting payment.

Usage:

    require_visible_case(engine, access, case_id)     # NotFound unless the caller may read it
    require_visible_task(engine, access, task_id)     # the task's case id, same rule
    list_cases(engine, access, CaseFilter(...), limit=50, cursor=None) -> CasePage
    case_detail(app_defs, engine, access, case_id) -> CaseView     # redacted as needed
    inbox(engine, access, now, InboxFilter(...)) -> list[InboxItem]
    pending_payments(defs, engine, access, now, ...) -> list[PendingPayment]

Who reads a case: an account whose case-reading role (every role but admin and member)
reaches the case's unit; its submitter; the assignee of one of its tasks; and a member
account, for the cases about its own member record. Anything else is NotFound, so the
existence of another unit's case never leaks.

Health data (form fields and document kinds marked `sensitive` in the definition) is shown
only to: auditors reaching the case's unit, whoever holds the role of one of the case's
approval tasks (open or closed) at its unit or above, whoever decided on it, and the
officers of the filing unit; everyone else sees it redacted. CCCD numbers are always masked.
"""

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, and_, false, func, literal_column, or_, select, union_all
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import ColumnElement

from domain.adapters.db import READ_ONLY
from domain.adapters.definitions import DefinitionStore
from domain.adapters.repository import CASE, DECISION, DOCUMENT, MEMBER, PAYMENT, TASK
from domain.cccd import mask_cccd
from domain.errors import InvalidRequest, NotFound
from domain.model import TaskKind
from domain.roles import Role
from domain.service.access import APPROVER_ROLES, Access
from domain.workflow import PaymentStep

MAX_PAGE = 200


def _ro(engine: Engine) -> Connection:
    return engine.connect().execution_options(**READ_ONLY)


def _visible(access: Access) -> ColumnElement[bool]:
    """Cases the caller may read, as a SQL condition on the case table."""
    units = access.case_units
    clauses: list[ColumnElement[bool]] = [CASE.c.submitted_by == access.account_id]
    if units:
        clauses.append(CASE.c.unit_id.in_(sorted(units)))
    if access.member_id:
        clauses.append(CASE.c.member_id == access.member_id)
    clauses.append(
        CASE.c.id.in_(select(TASK.c.case_id).where(TASK.c.assignee_id == access.account_id))
    )
    return or_(*clauses)


def require_visible_case(engine: Engine, access: Access, case_id: str) -> None:
    with _ro(engine) as conn:
        found = conn.execute(
            select(CASE.c.id).where(CASE.c.id == case_id, _visible(access))
        ).first()
    if found is None:
        raise NotFound("case", case_id)


def require_visible_task(engine: Engine, access: Access, task_id: str) -> str:
    """The case id of a task the caller may see (NotFound otherwise, like a missing task)."""
    with _ro(engine) as conn:
        row = conn.execute(
            select(TASK.c.case_id)
            .join(CASE, CASE.c.id == TASK.c.case_id)
            .where(TASK.c.id == task_id, _visible(access))
        ).first()
    if row is None:
        raise NotFound("task", task_id)
    return str(row[0])


# --- case lists ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilter:
    unit_id: str | None = None
    status: str | None = None
    policy: str | None = None
    member_id: str | None = None
    campaign_id: str | None = None
    batch_id: str | None = None


@dataclass(frozen=True)
class CaseSummary:
    id: str
    policy: str
    policy_version: int
    subtype: str
    status: str
    current_step: str
    unit_id: str
    campaign_id: str | None
    batch_id: str | None
    member_id: str
    member_name: str
    member_cccd: str  # masked
    entitled_amount: int
    approved_amount: int | None
    paid_amount: int
    amount: int
    flags: list[str]
    submitted_at: datetime
    event_date: date
    closed_at: datetime | None
    outcome_reason: str | None


@dataclass(frozen=True)
class CasePage:
    items: list[CaseSummary]
    total: int
    next_cursor: str | None


def _summary(r: RowMapping) -> CaseSummary:
    approved = r["approved_amount"]
    return CaseSummary(
        id=r["id"],
        policy=r["policy"],
        policy_version=r["policy_version"],
        subtype=r["subtype"],
        status=r["status"],
        current_step=r["current_step"],
        unit_id=r["unit_id"],
        campaign_id=r["campaign_id"],
        batch_id=r["batch_id"],
        member_id=r["member_id"],
        member_name=r["full_name"],
        member_cccd=mask_cccd(r["cccd"]),
        entitled_amount=r["entitled_amount"],
        approved_amount=approved,
        paid_amount=r["paid_amount"],
        amount=approved if approved is not None else r["entitled_amount"],
        flags=list(r["flags"] or []),
        submitted_at=r["submitted_at"],
        event_date=r["event_date"],
        closed_at=r["closed_at"],
        outcome_reason=r["outcome_reason"],
    )


def encode_cursor(case_id: str) -> str:
    return base64.urlsafe_b64encode(case_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raw = ""
    if not raw or len(raw) > 64 or not raw.isprintable():
        raise InvalidRequest(
            "invalid_field", field="cursor", params={"field": "cursor", "reason": "unknown cursor"}
        )
    return raw


def _case_columns() -> list[Any]:
    return [*CASE.c, MEMBER.c.full_name, MEMBER.c.cccd]


def list_cases(
    engine: Engine, access: Access, f: CaseFilter, *, limit: int = 50, cursor: str | None = None
) -> CasePage:
    """Visible cases, newest first (ids are time-ordered), with keyset pagination."""
    limit = max(1, min(limit, MAX_PAGE))
    where: list[ColumnElement[bool]] = [_visible(access)]
    for col, value in (
        (CASE.c.unit_id, f.unit_id),
        (CASE.c.status, f.status),
        (CASE.c.policy, f.policy),
        (CASE.c.member_id, f.member_id),
        (CASE.c.campaign_id, f.campaign_id),
        (CASE.c.batch_id, f.batch_id),
    ):
        if value is not None:
            where.append(col == value)
    with _ro(engine) as conn:
        total = int(conn.execute(select(func.count()).select_from(CASE).where(*where)).scalar_one())
        q = (
            select(*_case_columns())
            .join(MEMBER, MEMBER.c.id == CASE.c.member_id)
            .where(*where)
            .order_by(CASE.c.id.desc())
            .limit(limit + 1)
        )
        if cursor is not None:
            q = q.where(CASE.c.id < decode_cursor(cursor))
        rows = list(conn.execute(q).mappings())
    more = len(rows) > limit
    items = [_summary(r) for r in rows[:limit]]
    return CasePage(items, total, encode_cursor(items[-1].id) if more and items else None)


# --- one case -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskView:
    id: str
    step: str
    kind: str
    role: str
    org_unit_id: str
    status: str
    opened_at: datetime
    due_at: datetime
    overdue: bool
    escalation: str
    assignee_id: str | None
    delegated_by: str | None
    delegated_until: datetime | None
    approvals_needed: int
    committee: bool
    closed_at: datetime | None
    outcome: str | None
    tranche: int | None


@dataclass(frozen=True)
class DecisionView:
    id: str
    task_id: str
    step: str
    actor_id: str
    role: str | None
    org_unit_id: str | None
    action: str
    amount: int | None
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class DocumentView:
    id: str
    kind: str
    sensitive: bool
    redacted: bool
    filename: str | None
    sha256: str | None
    size: int | None
    content_type: str | None
    added_by: str
    added_at: datetime


@dataclass(frozen=True)
class PaymentView:
    id: str
    tranche: int
    amount: int
    method: str
    reference: str
    paid_by: str
    paid_at: datetime


@dataclass(frozen=True)
class CaseView:
    case: CaseSummary
    form: dict[str, object]
    redacted_fields: list[str]
    tasks: list[TaskView]
    decisions: list[DecisionView]
    documents: list[DocumentView]
    payments: list[PaymentView]
    submitted_by: str
    reserved_amount: int
    sensitive_documents_read: list[str] = field(default_factory=list)


def task_view(r: RowMapping, now: datetime) -> TaskView:
    return TaskView(
        id=r["id"],
        step=r["step"],
        kind=r["kind"],
        role=r["role"],
        org_unit_id=r["org_unit_id"],
        status=r["status"],
        opened_at=r["opened_at"],
        due_at=r["due_at"],
        overdue=r["status"] == "open" and r["due_at"] <= now,
        escalation=r["escalation"],
        assignee_id=r["assignee_id"],
        delegated_by=r["delegated_by"],
        delegated_until=r["delegated_until"],
        approvals_needed=r["approvals_needed"],
        committee=r["committee"],
        closed_at=r["closed_at"],
        outcome=r["outcome"],
        tranche=r["tranche"],
    )


def sees_sensitive(
    access: Access, case_unit: str, tasks: Sequence[RowMapping], deciders: set[str]
) -> bool:
    if access.reaches(case_unit, Role.AUDITOR):
        return True
    if access.account_id in deciders:
        return True
    if access.reaches(case_unit, Role.GRASSROOTS_OFFICER):
        return True  # the filing unit's officers gathered the data and answer returns
    for t in tasks:
        if t["kind"] != TaskKind.APPROVAL.value:
            continue
        role = Role(t["role"])
        if role in APPROVER_ROLES and access.reaches(t["org_unit_id"], role):
            return True
        if t["assignee_id"] == access.account_id:
            return True
    return False


def case_detail(
    defs: DefinitionStore, engine: Engine, access: Access, case_id: str, now: datetime
) -> CaseView:
    """One visible case with everything about it; `sensitive_documents_read` lists the ids of
    sensitive document metadata shown (the caller records that read in the audit log)."""
    with _ro(engine) as conn:
        row = (
            conn.execute(
                select(*_case_columns())
                .join(MEMBER, MEMBER.c.id == CASE.c.member_id)
                .where(CASE.c.id == case_id, _visible(access))
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("case", case_id)
        tasks = list(
            conn.execute(
                select(TASK).where(TASK.c.case_id == case_id).order_by(TASK.c.opened_at, TASK.c.id)
            ).mappings()
        )
        decisions = list(
            conn.execute(
                select(DECISION)
                .where(DECISION.c.case_id == case_id)
                .order_by(DECISION.c.at, DECISION.c.id)
            ).mappings()
        )
        documents = list(
            conn.execute(
                select(DOCUMENT)
                .where(DOCUMENT.c.case_id == case_id)
                .order_by(DOCUMENT.c.added_at, DOCUMENT.c.id)
            ).mappings()
        )
        payments = list(
            conn.execute(
                select(PAYMENT).where(PAYMENT.c.case_id == case_id).order_by(PAYMENT.c.tranche)
            ).mappings()
        )
    defn = defs.get(row["policy"], row["policy_version"])
    privileged = sees_sensitive(access, row["unit_id"], tasks, {d["actor_id"] for d in decisions})
    form = dict(row["form"] or {})
    redacted = []
    if not privileged:
        for name in list(form):
            spec = defn.form.get(name)
            if spec is not None and spec.sensitive:
                form[name] = None
                redacted.append(name)
    docs, read = [], []
    for d in documents:
        hide = d["sensitive"] and not privileged
        if d["sensitive"] and privileged:
            read.append(d["id"])
        docs.append(
            DocumentView(
                id=d["id"],
                kind=d["kind"],
                sensitive=d["sensitive"],
                redacted=hide,
                filename=None if hide else d["filename"],
                sha256=None if hide else d["sha256"],
                size=None if hide else d["size"],
                content_type=None if hide else d["content_type"],
                added_by=d["added_by"],
                added_at=d["added_at"],
            )
        )
    return CaseView(
        case=_summary(row),
        form=form,
        redacted_fields=redacted,
        tasks=[task_view(t, now) for t in tasks],
        decisions=[
            DecisionView(
                id=d["id"],
                task_id=d["task_id"],
                step=d["step"],
                actor_id=d["actor_id"],
                role=d["role"],
                org_unit_id=d["org_unit_id"],
                action=d["action"],
                amount=d["amount"],
                reason=d["reason"],
                at=d["at"],
            )
            for d in decisions
        ],
        documents=docs,
        payments=[
            PaymentView(
                id=p["id"],
                tranche=p["tranche"],
                amount=p["amount"],
                method=p["method"],
                reference=p["reference"],
                paid_by=p["paid_by"],
                paid_at=p["paid_at"],
            )
            for p in payments
        ],
        submitted_by=row["submitted_by"],
        reserved_amount=row["reserved_amount"],
        sensitive_documents_read=read,
    )


# --- the inbox ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxFilter:
    policy: str | None = None
    step: str | None = None
    role: str | None = None
    unit_id: str | None = None
    overdue: bool | None = None
    mine: bool | None = None
    kind: str | None = None


@dataclass(frozen=True)
class InboxItem:
    task: TaskView
    case_id: str
    policy: str
    subtype: str
    case_status: str
    case_unit_id: str
    member_name: str
    amount: int
    flags: list[str]
    assigned_to_me: bool


def _task_reach(access: Access, roles: Sequence[Role] | None = None) -> ColumnElement[bool]:
    """Tasks routed to a role the caller holds at the task's unit or a unit above it, or
    assigned to the caller (a claim or a delegation)."""
    clauses: list[ColumnElement[bool]] = [TASK.c.assignee_id == access.account_id]
    for role, units in access.reach.items():
        if role in (Role.AUDITOR, Role.ADMIN, Role.MEMBER):
            continue
        if roles is not None and role not in roles:
            continue
        clauses.append(and_(TASK.c.role == role.value, TASK.c.org_unit_id.in_(sorted(units))))
    return or_(*clauses) if clauses else false()


MAX_INBOX_PARTS = 200
"""Above this many (role, unit) pairs in reach the inbox runs as one query (see below)."""


def _inbox_candidates(
    access: Access,
    filters: Sequence[ColumnElement[bool]],
    limit: int,
    *,
    joins_case: bool,
    sqlite: bool,
) -> Any:
    """Ids of at most `limit` soonest-due open tasks per (role, unit) the caller reaches, plus
    those assigned to them — or None when the caller reaches too many units for this.

    One `status, role, org_unit_id` equality per part lets the database walk
    `ix_task_inbox` in due order and stop after `limit` rows; the single query with an OR
    over every unit had to read and sort every open task in reach (≈ 0.1 s at 100,000 open
    tasks, growing with them). The caller's inbox is the first `limit` of their union.
    """
    reach: list[ColumnElement[bool]] = [TASK.c.assignee_id == access.account_id]
    for role, units in access.reach.items():
        if role in (Role.AUDITOR, Role.ADMIN, Role.MEMBER):
            continue
        reach += [and_(TASK.c.role == role.value, TASK.c.org_unit_id == u) for u in sorted(units)]
    if len(reach) > MAX_INBOX_PARTS:
        return None
    if sqlite:
        # Through ix_task_assignee_id. Before it became partial (0006), statistics from an
        # ANALYZE (most tasks have no assignee) called it useless and SQLite scanned the
        # whole table; the hint keeps the plan whatever statistics a database has.
        reach[0] = func.likelihood(reach[0], literal_column("0.0001"))
    parts = []
    for clause in reach:
        part = select(TASK.c.id.label("id")).where(TASK.c.status == "open", clause, *filters)
        if joins_case:
            part = part.join(CASE, CASE.c.id == TASK.c.case_id)
        # By due time only: `ix_task_inbox` yields that order, while a tie-break on id made
        # the database read and sort every task sharing a due time (a list filed in one
        # transaction gives thousands the same one). Which of such equals reach the inbox at
        # its cut is arbitrary; the inbox itself is still ordered by (due_at, id).
        sub = part.order_by(TASK.c.due_at).limit(limit).subquery()
        parts.append(select(sub.c.id))
    return union_all(*parts)


def inbox(
    engine: Engine, access: Access, now: datetime, f: InboxFilter, *, limit: int = 100
) -> list[InboxItem]:
    """Open tasks for the caller's roles at their units and below, soonest due first."""
    limit = max(1, min(limit, 1000))
    where: list[ColumnElement[bool]] = [TASK.c.status == "open", _task_reach(access)]
    if f.policy is not None:
        where.append(CASE.c.policy == f.policy)
    if f.step is not None:
        where.append(TASK.c.step == f.step)
    if f.role is not None:
        where.append(TASK.c.role == f.role)
    if f.unit_id is not None:
        where.append(TASK.c.org_unit_id == f.unit_id)
    if f.kind is not None:
        where.append(TASK.c.kind == f.kind)
    if f.overdue is True:
        where.append(TASK.c.due_at <= now)
    elif f.overdue is False:
        where.append(TASK.c.due_at > now)
    if f.mine is True:
        where.append(TASK.c.assignee_id == access.account_id)
    candidates = _inbox_candidates(
        access,
        where[2:],
        limit,
        joins_case=f.policy is not None,
        sqlite=engine.dialect.name == "sqlite",
    )
    if candidates is not None:
        where.append(TASK.c.id.in_(candidates))
    q = (
        select(
            TASK,
            CASE.c.policy,
            CASE.c.subtype,
            CASE.c.status.label("case_status"),
            CASE.c.unit_id.label("case_unit_id"),
            CASE.c.entitled_amount,
            CASE.c.approved_amount,
            CASE.c.flags,
            MEMBER.c.full_name,
        )
        .join(CASE, CASE.c.id == TASK.c.case_id)
        .join(MEMBER, MEMBER.c.id == CASE.c.member_id)
        .where(*where)
        .order_by(TASK.c.due_at, TASK.c.id)
        .limit(limit)
    )
    with _ro(engine) as conn:
        rows = list(conn.execute(q).mappings())
    out = []
    for r in rows:
        approved = r["approved_amount"]
        out.append(
            InboxItem(
                task=task_view(r, now),
                case_id=r["case_id"],
                policy=r["policy"],
                subtype=r["subtype"],
                case_status=r["case_status"],
                case_unit_id=r["case_unit_id"],
                member_name=r["full_name"],
                amount=approved if approved is not None else r["entitled_amount"],
                flags=list(r["flags"] or []),
                assigned_to_me=r["assignee_id"] == access.account_id,
            )
        )
    return out


# --- payments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingPayment:
    case: CaseSummary
    task_id: str
    tranche: int
    tranches: int
    amount_due: int
    due_at: datetime
    overdue: bool


def tranche_due(
    defs: DefinitionStore, row: RowMapping, step_id: str, tranche: int
) -> tuple[int, int]:
    """(amount due for `tranche`, number of tranches) — the same split record_payment expects."""
    step = defs.get(row["policy"], row["policy_version"]).steps[step_id]
    parts = step.tranches if isinstance(step, PaymentStep) else [100]
    total = row["approved_amount"] or 0
    if tranche >= len(parts):
        return total - row["paid_amount"], len(parts)
    return total * parts[tranche - 1] // 100, len(parts)


def pending_payments(
    defs: DefinitionStore,
    engine: Engine,
    access: Access,
    now: datetime,
    *,
    policy: str | None = None,
    unit_id: str | None = None,
    limit: int = 200,
) -> list[PendingPayment]:
    """Approved cases with an open payment task the caller may pay, soonest due first."""
    where: list[ColumnElement[bool]] = [
        TASK.c.status == "open",
        TASK.c.kind == TaskKind.PAYMENT.value,
        _task_reach(access, [Role.TREASURER]),
    ]
    if policy is not None:
        where.append(CASE.c.policy == policy)
    if unit_id is not None:
        where.append(CASE.c.unit_id == unit_id)
    q = (
        select(
            *_case_columns(),
            TASK.c.id.label("task_id"),
            TASK.c.step.label("task_step"),
            TASK.c.tranche,
            TASK.c.due_at,
        )
        .join(TASK, TASK.c.case_id == CASE.c.id)
        .join(MEMBER, MEMBER.c.id == CASE.c.member_id)
        .where(*where)
        .order_by(TASK.c.due_at, TASK.c.id)
        .limit(max(1, min(limit, 1000)))
    )
    with _ro(engine) as conn:
        rows = list(conn.execute(q).mappings())
    out = []
    for r in rows:
        tranche = r["tranche"] or 1
        amount, parts = tranche_due(defs, r, r["task_step"], tranche)
        out.append(
            PendingPayment(
                case=_summary(r),
                task_id=r["task_id"],
                tranche=tranche,
                tranches=parts,
                amount_due=amount,
                due_at=r["due_at"],
                overdue=r["due_at"] <= now,
            )
        )
    return out
