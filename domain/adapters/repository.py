"""Reads and writes of the case aggregate and its surroundings, as explicit SQL statements.

Rows map to the pure domain dataclasses here and nowhere else. Writes are exactly what the
engine recorded on the aggregate; the case row's version guards against lost updates.
"""

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Date,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.engine import Connection

from domain.adapters import tables as t
from domain.adapters.prepared import Prepared
from domain.audit import AuditEntry
from domain.errors import Conflict, NotFound, RuleViolation
from domain.events import Event
from domain.model import (
    BudgetKey,
    BudgetOp,
    Case,
    CaseAggregate,
    CaseStatus,
    Complaint,
    Decision,
    Document,
    Escalation,
    Payment,
    Task,
    TaskKind,
    TaskStatus,
)
from domain.roles import OrgLevel, Role
from domain.rules.facts import (
    LIVE_STATUSES,
    CampaignFacts,
    MemberFacts,
    MembershipPeriod,
    PriorCase,
)

RowLike = Mapping[Any, Any]
"""A row by column name: a dict from the prepared path or a SQLAlchemy RowMapping."""


def _t(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


CASE, TASK, DECISION, DOCUMENT, PAYMENT = (
    _t(t.CaseRow),
    _t(t.TaskRow),
    _t(t.DecisionRow),
    _t(t.DocumentRow),
    _t(t.PaymentRow),
)
MEMBER, MEMBERSHIP, HOUSEHOLD = _t(t.MemberRow), _t(t.MembershipRow), _t(t.HouseholdRow)
ORG, LINK, ACCOUNT, GRANT = _t(t.OrgUnitRow), _t(t.OrgLinkRow), _t(t.AccountRow), _t(t.RoleGrantRow)
CAMPAIGN, BUDGET, CLAIM_KEY = _t(t.CampaignRow), _t(t.BudgetRow), _t(t.ClaimKeyRow)
AUDIT, AUDIT_HEAD, OUTBOX = _t(t.AuditEntryRow), _t(t.AuditHeadRow), _t(t.OutboxRow)
COMPLAINT, SNAPSHOT = _t(t.ComplaintRow), _t(t.DefinitionSnapshotRow)
CASE_LIST = _t(t.CaseListRow)


# --- statements of the command path, built once ------------------------------------------
# Building a Core statement and its cache key costs more Python time than SQLite takes to run
# it; every command issues a few dozen, so the hot ones are built here once, with named bind
# parameters (prefixed b_ so they never clash with the columns an UPDATE sets).


def _valid_on(table: Any, on: Any) -> Any:
    return and_(table.c.valid_from <= on, or_(table.c.valid_to.is_(None), table.c.valid_to >= on))


_B_ON = bindparam("b_on", type_=Date)
# The live statuses as inline SQL constants (fixed enum values, not input): an IN list of bound
# values would be an expanding parameter, which the prepared path cannot run.
_LIVE: list[Any] = [literal_column(f"'{s}'") for s in sorted(LIVE_STATUSES)]


def _aggregate_statements(case_id: Any) -> tuple[Any, Any, Any, Any, Any, Any]:
    """The case row (plain and row-locked) and its child rows, for the case `case_id` names."""
    return (
        select(CASE).where(CASE.c.id == case_id),
        select(CASE).where(CASE.c.id == case_id).with_for_update(),
        select(TASK).where(TASK.c.case_id == case_id).order_by(TASK.c.opened_at),
        select(DECISION).where(DECISION.c.case_id == case_id).order_by(DECISION.c.at),
        select(DOCUMENT).where(DOCUMENT.c.case_id == case_id).order_by(DOCUMENT.c.added_at),
        select(PAYMENT).where(PAYMENT.c.case_id == case_id).order_by(PAYMENT.c.tranche),
    )


_BY_ID = _aggregate_statements(bindparam("b_id"))
_SEL_CASE, _SEL_CASE_LOCKED, _SEL_TASKS, _SEL_DECISIONS, _SEL_DOCUMENTS, _SEL_PAYMENTS = _BY_ID
# A task command names its task: its case found by a subquery, so the aggregate is still read
# in one go (one round trip on PostgreSQL) instead of after a lookup of its own.
_BY_TASK = _aggregate_statements(
    select(TASK.c.case_id).where(TASK.c.id == bindparam("b_task")).scalar_subquery()
)


def _aggregates_of(ids: Any) -> tuple[Any, Any, Any, Any, Any]:
    """Several cases' rows (the SLA sweep's batches), in id order, and their child rows."""
    return (
        select(CASE).where(ids(CASE.c.id)).order_by(CASE.c.id),
        select(TASK).where(ids(TASK.c.case_id)).order_by(TASK.c.opened_at),
        select(DECISION).where(ids(DECISION.c.case_id)).order_by(DECISION.c.at),
        select(DOCUMENT).where(ids(DOCUMENT.c.case_id)).order_by(DOCUMENT.c.added_at),
        select(PAYMENT).where(ids(PAYMENT.c.case_id)).order_by(PAYMENT.c.tranche),
    )


_B_IDS: Any = bindparam("b_ids", expanding=True)
_OF_IDS = _aggregates_of(lambda col: col.in_(_B_IDS))
# On PostgreSQL the ids are one array parameter (`= ANY`) rather than an expanding IN list:
# the statements' text no longer changes with the batch's size, so they run on the prepared
# path, all five in one round trip (through `Connection.execute` they cost ≈ 90 ms of a
# 1,000-task sweep, two thirds of it SQLAlchemy and psycopg rendering 200 bind parameters).
_B_ID_ARRAY: Any = bindparam("b_ids", type_=postgresql.ARRAY(String))
_OF_ID_ARRAY = _aggregates_of(lambda col: col == any_(_B_ID_ARRAY))
_OF_ID_ARRAY = (_OF_ID_ARRAY[0].with_for_update(), *_OF_ID_ARRAY[1:])
_INS_CASE, _INS_TASK, _INS_DECISION = insert(CASE), insert(TASK), insert(DECISION)
_INS_DOCUMENT, _INS_PAYMENT, _INS_CLAIM_KEY = insert(DOCUMENT), insert(PAYMENT), insert(CLAIM_KEY)
_INS_AUDIT, _INS_OUTBOX = insert(AUDIT), insert(OUTBOX)
# SET columns come from the parameters' keys: every column the row dict carries.
_UPD_CASE = update(CASE).where(
    CASE.c.id == bindparam("b_id"), CASE.c.version == bindparam("b_version")
)
_UPD_TASK = update(TASK).where(TASK.c.id == bindparam("b_id"))
# A member with their memberships, and an account with its roles, are each one statement
# (a row per membership or role, the first's columns repeated): every command reads both, and
# a statement costs ≈ 10 µs on SQLite and ≈ 45 µs of client CPU on PostgreSQL.
_SEL_MEMBER_WITH_PERIODS = (
    select(
        MEMBER,
        MEMBERSHIP.c.unit_id.label("period_unit"),
        MEMBERSHIP.c.joined_on.label("period_joined"),
        MEMBERSHIP.c.left_on.label("period_left"),
    )
    .select_from(MEMBER.outerjoin(MEMBERSHIP, MEMBERSHIP.c.member_id == MEMBER.c.id))
    .where(MEMBER.c.id == bindparam("b_id"))
    .order_by(MEMBERSHIP.c.joined_on, MEMBERSHIP.c.id)
)
_SEL_HISTORY = select(
    CASE.c.id,
    CASE.c.policy,
    CASE.c.subtype,
    CASE.c.status,
    CASE.c.entitled_amount,
    CASE.c.approved_amount,
    CASE.c.event_date,
    CASE.c.campaign_id,
    CASE.c.member_id,
    CASE.c.household_key,
).where(
    or_(CASE.c.member_id == bindparam("b_member"), CASE.c.household_key == bindparam("b_hh")),
    CASE.c.status.in_(_LIVE),
)


def _household_lock(insert_for_dialect: Any) -> Any:
    # An upsert, not "UPDATE, and INSERT if nothing matched": it needs no answer before the
    # next statement, so on PostgreSQL it goes in the same round trip as the reads after it.
    return (
        insert_for_dialect(HOUSEHOLD)
        .values(key=bindparam("b_key"), version=1)
        .on_conflict_do_update(
            index_elements=[HOUSEHOLD.c.key], set_={"version": HOUSEHOLD.c.version + 1}
        )
    )


_LOCK_HOUSEHOLD = _household_lock(postgresql_insert)
_SEL_CLAIM_KEY = select(CLAIM_KEY.c.key, CLAIM_KEY.c.case_id).where(
    CLAIM_KEY.c.key == bindparam("b_key")
)
_SEL_CLAIM_KEYS_OF = select(CLAIM_KEY.c.key).where(CLAIM_KEY.c.case_id == bindparam("b_case"))
_DEL_CLAIM_KEYS_OF = delete(CLAIM_KEY).where(CLAIM_KEY.c.case_id == bindparam("b_case"))
_DEL_CLAIM_KEY = delete(CLAIM_KEY).where(CLAIM_KEY.c.key == bindparam("b_key"))
# Every file of a case checked in one statement, the hashes one array parameter (a JSON
# array on SQLite, `= ANY` on PostgreSQL): a housing case has 7 files, and one read per file
# was ≈ 1.9 of a command's ≈ 27 statements on average.
_SEL_REUSED_DOCS_JSON = select(DOCUMENT.c.sha256, DOCUMENT.c.case_id).where(
    DOCUMENT.c.sha256.in_(
        select(literal_column("value")).select_from(func.json_each(bindparam("b_hashes")))
    ),
    DOCUMENT.c.case_id != bindparam("b_case"),
)
_SEL_REUSED_DOCS_ARRAY = select(DOCUMENT.c.sha256, DOCUMENT.c.case_id).where(
    DOCUMENT.c.sha256 == any_(bindparam("b_hashes", type_=postgresql.ARRAY(String))),
    DOCUMENT.c.case_id != bindparam("b_case"),
)
_COUNT_DUPLICATES = (
    select(func.count())
    .select_from(MEMBER)
    .where(
        MEMBER.c.name_key == bindparam("b_name_key"),
        MEMBER.c.dob == bindparam("b_dob", type_=Date),
        MEMBER.c.id != bindparam("b_id"),
    )
)
_SEL_UNIT = select(ORG).where(ORG.c.id == bindparam("b_id"))
_SEL_CAMPAIGN = select(CAMPAIGN).where(CAMPAIGN.c.id == bindparam("b_id"))
_COUNT_QUOTA = (
    select(func.count())
    .select_from(CASE)
    .where(
        CASE.c.campaign_id == bindparam("b_campaign"),
        CASE.c.unit_id == bindparam("b_unit"),
        CASE.c.status.in_(_LIVE),
        CASE.c.id != bindparam("b_exclude"),  # "" when nothing is excluded: no id is empty
    )
)
_SEL_ACCOUNT = select(ACCOUNT).where(ACCOUNT.c.id == bindparam("b_id"))
_SEL_ACCOUNT_WITH_GRANTS = (
    select(ACCOUNT, GRANT.c.role.label("grant_role"), GRANT.c.org_unit_id.label("grant_unit"))
    .select_from(
        ACCOUNT.outerjoin(GRANT, and_(GRANT.c.account_id == ACCOUNT.c.id, _valid_on(GRANT, _B_ON)))
    )
    .where(ACCOUNT.c.id == bindparam("b_id"))
    .order_by(GRANT.c.id)
)
_SEL_HOUSEHOLD_OF = select(MEMBER.c.household_key).where(MEMBER.c.id == bindparam("b_id"))
_BUDGET_KEY = and_(
    BUDGET.c.org_unit_id == bindparam("b_unit"),
    BUDGET.c.year == bindparam("b_year"),
    BUDGET.c.fund == bindparam("b_fund"),
)
_SEL_BUDGET = select(BUDGET.c.amount, BUDGET.c.reserved, BUDGET.c.spent).where(_BUDGET_KEY)
_B_AMOUNT = bindparam("b_amount", type_=Integer)
_BUDGET_OPS = {
    "reserve": update(BUDGET)
    .where(_BUDGET_KEY, BUDGET.c.amount - BUDGET.c.reserved - BUDGET.c.spent >= _B_AMOUNT)
    .values(reserved=BUDGET.c.reserved + _B_AMOUNT),
    "release": update(BUDGET)
    .where(_BUDGET_KEY, BUDGET.c.reserved >= _B_AMOUNT)
    .values(reserved=BUDGET.c.reserved - _B_AMOUNT),
    "spend": update(BUDGET)
    .where(_BUDGET_KEY, BUDGET.c.reserved >= _B_AMOUNT)
    .values(reserved=BUDGET.c.reserved - _B_AMOUNT, spent=BUDGET.c.spent + _B_AMOUNT),
}
_SEL_CASE_LIST = select(CASE_LIST).where(CASE_LIST.c.id == bindparam("b_id"))
_SEL_CASE_LIST_LOCKED = _SEL_CASE_LIST.with_for_update()
_INS_CASE_LIST = insert(CASE_LIST)
_UPD_CASE_LIST = (
    update(CASE_LIST)
    .where(CASE_LIST.c.id == bindparam("b_id"))
    .values(
        tally=bindparam("b_tally", type_=CASE_LIST.c.tally.type),
        screened_at=bindparam("b_screened_at", type_=CASE_LIST.c.screened_at.type),
    )
)
# Any one of the list's cases still in screening: an index probe on ix_case_batch_status.
_SEL_LIST_WAITING = (
    select(CASE.c.id)
    .where(CASE.c.batch_id == bindparam("b_id"), CASE.c.status == literal_column("'screening'"))
    .limit(1)
)
_SEL_AUDIT_HEAD = select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.entry_hash).where(AUDIT_HEAD.c.id == 1)
_SEL_AUDIT_HEAD_LOCKED = _SEL_AUDIT_HEAD.with_for_update()
_UPD_AUDIT_HEAD = (
    update(AUDIT_HEAD)
    .where(AUDIT_HEAD.c.id == 1)
    .values(seq=bindparam("b_seq"), entry_hash=bindparam("b_hash"))
)


# --- set-based writes of the SLA sweep's batches on PostgreSQL ----------------------------
# A batch writes ≈ 200 case rows, 200 task rows, 200 audit entries and 400 outbox rows. As
# executemany each row is a statement of its own: ≈ 25 µs of psycopg's pipeline machinery on
# the client (binding, prepare bookkeeping, socket polling) and an executor start on the
# server, ≈ 5,000 a 1,000-task sweep. Here each kind of row is one statement over one JSON
# array parameter (`json_to_recordset`): one `json.dumps` on the client, one executor run on
# the server. Values are written as they were: times as ISO 8601 with their offset (exact to
# the microsecond), JSON columns as the text `json.dumps` makes — what psycopg's own JSON
# dumper sends — cast back to json. SQLite keeps executemany: its driver loops in C. A
# command's few rows keep the executemany path too (below SET_BASED_ROWS).

SET_BASED_ROWS = 8
"""From this many rows of one kind a PostgreSQL write goes set-based (a command writes 1–4)."""


@lru_cache(maxsize=1024)
def _utc_text(v: datetime | None) -> str | None:
    # Cached: a batch's rows share a few times (every outbox row of a sweep carries its `now`
    # twice). Equal aware times are the same instant, whichever offset the text carries.
    if v is None:
        return None
    if v.tzinfo is None:  # as UTCDateTime refuses it
        raise ValueError("naive datetime: store UTC-aware times only")
    return v.isoformat()


def _date_text(v: date | None) -> str | None:
    return None if v is None else v.isoformat()


def _json_encoder(col: Any) -> Any:
    """How one column's value goes into the JSON array (None: as it is)."""
    if isinstance(col.type, t.UTCDateTime):
        return _utc_text
    if isinstance(col.type, Date):
        return _date_text
    if isinstance(col.type, JSON):
        return json.dumps  # None too, as SQLAlchemy's JSON type writes it: JSON null
    return None


def _is_text(type_: Any) -> bool:
    # String and Text, or a decorator of one (SQLModel's AutoString)
    return isinstance(getattr(type_, "impl_instance", type_), String)


def _recordset(table: Table, names: Sequence[str]) -> tuple[str, str]:
    """The `json_to_recordset` column list, and the SELECT list casting JSON columns back."""
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    decl, out = [], []
    for name in names:
        col = table.c[name]
        if isinstance(col.type, JSON):
            decl.append(f"{name} TEXT")
            out.append(f"CAST(v.{name} AS JSON)")
        elif _is_text(col.type):
            # No length here: an over-long value must fail on the column's own type (as an
            # INSERT of it would), not be cut to fit by the record's.
            decl.append(f"{name} TEXT")
            out.append(f"v.{name}")
        else:
            decl.append(f"{name} {col.type.compile(dialect=dialect)}")
            out.append(f"v.{name}")
    return ", ".join(decl), ", ".join(out)


class _JsonRows:
    """One statement writing many rows of a table from a JSON array (PostgreSQL only)."""

    def __init__(self, table: Table, sql: str, keys: Sequence[str]) -> None:
        self.stmt = text(sql)
        self.encoders = tuple(
            (k, _json_encoder(table.c[k]) if k in table.c else None) for k in keys
        )

    def params(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        encoders = self.encoders
        rows_out = [{k: r[k] if e is None else e(r[k]) for k, e in encoders} for r in rows]
        # Text as UTF-8, not \u escapes: less to write and to parse, decoded to the same text.
        return {"b_rows": json.dumps(rows_out, ensure_ascii=False)}


def _json_update(table: Table, key_sql: str, extra: Sequence[tuple[str, str]] = ()) -> _JsonRows:
    """UPDATE every column but `id` from the array; `extra` are (name, SQL type) of the
    where-clause's own keys, matched by `key_sql`."""
    names = [c.name for c in table.c if c.name != "id"]
    decl, _ = _recordset(table, names)
    sets = ", ".join(
        f"{n} = CAST(v.{n} AS JSON)" if isinstance(table.c[n].type, JSON) else f"{n} = v.{n}"
        for n in names
    )
    keys_decl = ", ".join(f"{n} {typ}" for n, typ in extra)
    sql = (
        f"UPDATE {table.name} SET {sets} "
        f"FROM json_to_recordset(CAST(:b_rows AS JSON)) AS v({decl}, {keys_decl}) "
        f"WHERE {key_sql}"
    )
    return _JsonRows(table, sql, [*names, *(n for n, _ in extra)])


def _json_insert(table: Table, names: Sequence[str]) -> _JsonRows:
    """INSERT the array's rows, in array order: a function scan returns them so, and the
    serial column's defaults are drawn as they come (the outbox's serial is its delivery
    order; a test checks it)."""
    decl, out = _recordset(table, names)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {out} "
        f"FROM json_to_recordset(CAST(:b_rows AS JSON)) AS v({decl})"
    )
    return _JsonRows(table, sql, names)


_PG_UPD_CASES = _json_update(
    CASE,
    "welfare_case.id = v.b_id AND welfare_case.version = v.b_version",
    [("b_id", "VARCHAR"), ("b_version", "INTEGER")],
)
_PG_UPD_TASKS = _json_update(TASK, "task.id = v.b_id", [("b_id", "VARCHAR")])
_AUDIT_COLUMNS = (
    "seq",
    "at",
    "actor_id",
    "actor_role",
    "org_unit_id",
    "action",
    "entity_type",
    "entity_id",
    "policy",
    "policy_version",
    "payload",
    "prev_hash",
    "entry_hash",
)
_OUTBOX_COLUMNS = (
    "id",
    "type",
    "case_id",
    "occurred_at",
    "data",
    "status",
    "attempts",
    "available_at",
)
_PG_INS_AUDIT = _json_insert(AUDIT, _AUDIT_COLUMNS)
_PG_INS_OUTBOX = _json_insert(OUTBOX, _OUTBOX_COLUMNS)


def _ancestry_statement() -> Any:
    """The unit and its ancestors as of a date, nearest first, in one recursive query.

    Of several parent links valid on the date, the latest-starting one wins (as a
    re-parenting that starts today replaces yesterday's link).
    """
    start = select(
        cast(bindparam("b_unit"), String(64)).label("id"), literal(0, Integer).label("depth")
    ).cte("chain", recursive=True)
    prev = start.alias("prev")
    other = LINK.alias("other")
    latest = (
        select(func.max(other.c.valid_from))
        .where(other.c.child_id == prev.c.id, _valid_on(other, _B_ON))
        .scalar_subquery()
    )
    step = (
        select(LINK.c.parent_id, prev.c.depth + 1)
        .join_from(prev, LINK, LINK.c.child_id == prev.c.id)
        .where(_valid_on(LINK, _B_ON), LINK.c.valid_from == latest, prev.c.depth < 8)
    )
    chain = start.union_all(step)
    return (
        select(ORG, chain.c.depth)
        .join_from(chain, ORG, ORG.c.id == chain.c.id)
        .order_by(chain.c.depth)
    )


_SEL_ANCESTRY = _ancestry_statement()


def _subtree_statement() -> Any:
    """A unit and every unit below it as of a date, in one recursive query.

    Every child link valid on the date counts (as `access.descendants` did level by level);
    the depth bound guards against a bad cycle, and duplicates are the caller's to merge.
    """
    start = select(
        cast(bindparam("b_unit"), String(64)).label("id"), literal(0, Integer).label("depth")
    ).cte("below", recursive=True)
    prev = start.alias("prev")
    step = (
        select(LINK.c.child_id, prev.c.depth + 1)
        .join_from(prev, LINK, LINK.c.parent_id == prev.c.id)
        .where(_valid_on(LINK, _B_ON), prev.c.depth < 9)
    )
    below = start.union_all(step)
    return select(below.c.id)


_SEL_SUBTREE = _subtree_statement()


# --- row ⇄ domain -----------------------------------------------------------------------


def case_from_row(r: RowLike) -> Case:
    key = (
        BudgetKey(r["budget_unit_id"], r["budget_year"], r["budget_fund"])
        if r["budget_unit_id"] is not None
        else None
    )
    return Case(
        id=r["id"],
        policy=r["policy"],
        policy_version=r["policy_version"],
        subtype=r["subtype"],
        member_id=r["member_id"],
        household_key=r["household_key"],
        unit_id=r["unit_id"],
        campaign_id=r["campaign_id"],
        submitted_by=r["submitted_by"],
        submitter_person=r["submitter_person"],
        submitted_at=r["submitted_at"],
        event_date=r["event_date"],
        form=dict(r["form"] or {}),
        entitled_amount=r["entitled_amount"],
        approved_amount=r["approved_amount"],
        paid_amount=r["paid_amount"],
        status=CaseStatus(r["status"]),
        current_step=r["current_step"],
        return_step=r["return_step"],
        paused_clock_used=r["paused_clock_used"],
        flags=list(r["flags"] or []),
        batch_id=r["batch_id"],
        budget_key=key,
        reserved_amount=r["reserved_amount"],
        closed_at=r["closed_at"],
        outcome_reason=r["outcome_reason"],
        version=r["version"],
    )


def case_to_row(c: Case) -> dict[str, Any]:
    return {
        "id": c.id,
        "policy": c.policy,
        "policy_version": c.policy_version,
        "subtype": c.subtype,
        "member_id": c.member_id,
        "household_key": c.household_key,
        "unit_id": c.unit_id,
        "campaign_id": c.campaign_id,
        "submitted_by": c.submitted_by,
        "submitter_person": c.submitter_person,
        "submitted_at": c.submitted_at,
        "event_date": c.event_date,
        "form": c.form,
        "entitled_amount": c.entitled_amount,
        "approved_amount": c.approved_amount,
        "paid_amount": c.paid_amount,
        "status": c.status.value,
        "current_step": c.current_step,
        "return_step": c.return_step,
        "paused_clock_used": c.paused_clock_used,
        "flags": list(c.flags),
        "batch_id": c.batch_id,
        "budget_unit_id": c.budget_key.org_unit_id if c.budget_key else None,
        "budget_year": c.budget_key.year if c.budget_key else None,
        "budget_fund": c.budget_key.fund if c.budget_key else None,
        "reserved_amount": c.reserved_amount,
        "closed_at": c.closed_at,
        "outcome_reason": c.outcome_reason,
        "version": c.version,
    }


def task_from_row(r: RowLike) -> Task:
    return Task(
        id=r["id"],
        case_id=r["case_id"],
        step=r["step"],
        kind=TaskKind(r["kind"]),
        role=Role(r["role"]),
        level=OrgLevel(r["level"]),
        org_unit_id=r["org_unit_id"],
        opened_at=r["opened_at"],
        clock=r["clock"],
        sla_seconds=r["sla_seconds"],
        clock_used_before=r["clock_used_before"],
        remind_at=r["remind_at"],
        due_at=r["due_at"],
        escalate_at=r["escalate_at"],
        approvals_needed=r["approvals_needed"],
        committee=r["committee"],
        status=TaskStatus(r["status"]),
        assignee_id=r["assignee_id"],
        delegated_by=r["delegated_by"],
        delegated_until=r["delegated_until"],
        escalation=Escalation(r["escalation"]),
        next_check_at=r["next_check_at"],
        closed_at=r["closed_at"],
        outcome=r["outcome"],
        tranche=r["tranche"],
    )


def task_to_row(x: Task) -> dict[str, Any]:
    return {
        "id": x.id,
        "case_id": x.case_id,
        "step": x.step,
        "kind": x.kind.value,
        "role": x.role.value,
        "level": x.level.value,
        "org_unit_id": x.org_unit_id,
        "opened_at": x.opened_at,
        "clock": x.clock,
        "sla_seconds": x.sla_seconds,
        "clock_used_before": x.clock_used_before,
        "remind_at": x.remind_at,
        "due_at": x.due_at,
        "escalate_at": x.escalate_at,
        "approvals_needed": x.approvals_needed,
        "committee": x.committee,
        "status": x.status.value,
        "assignee_id": x.assignee_id,
        "delegated_by": x.delegated_by,
        "delegated_until": x.delegated_until,
        "escalation": x.escalation.value,
        "next_check_at": x.next_check_at,
        "closed_at": x.closed_at,
        "outcome": x.outcome,
        "tranche": x.tranche,
    }


def decision_from_row(r: RowLike) -> Decision:
    return Decision(
        id=r["id"],
        case_id=r["case_id"],
        task_id=r["task_id"],
        step=r["step"],
        actor_id=r["actor_id"],
        person_key=r["person_key"],
        role=Role(r["role"]) if r["role"] else None,
        org_unit_id=r["org_unit_id"],
        action=r["action"],
        amount=r["amount"],
        reason=r["reason"],
        at=r["at"],
    )


def decision_to_row(d: Decision) -> dict[str, Any]:
    return {
        "id": d.id,
        "case_id": d.case_id,
        "task_id": d.task_id,
        "step": d.step,
        "actor_id": d.actor_id,
        "person_key": d.person_key,
        "role": d.role.value if d.role else None,
        "org_unit_id": d.org_unit_id,
        "action": d.action,
        "amount": d.amount,
        "reason": d.reason,
        "at": d.at,
    }


def document_from_row(r: RowLike) -> Document:
    return Document(
        **{
            k: r[k]
            for k in (
                "id",
                "case_id",
                "kind",
                "filename",
                "sha256",
                "size",
                "content_type",
                "sensitive",
                "added_by",
                "added_at",
            )
        }
    )


def payment_from_row(r: RowLike) -> Payment:
    return Payment(
        **{
            k: r[k]
            for k in (
                "id",
                "case_id",
                "tranche",
                "amount",
                "method",
                "reference",
                "paid_by",
                "paid_at",
            )
        }
    )


def audit_from_row(r: RowLike) -> AuditEntry:
    return AuditEntry(
        seq=r["seq"],
        at=r["at"],
        actor_id=r["actor_id"],
        actor_role=r["actor_role"],
        org_unit_id=r["org_unit_id"],
        action=r["action"],
        entity_type=r["entity_type"],
        entity_id=r["entity_id"],
        policy=r["policy"],
        policy_version=r["policy_version"],
        payload=json.loads(r["payload"]),
        prev_hash=r["prev_hash"],
        entry_hash=r["entry_hash"],
    )


class Repository:
    """All SQL of the command side, on one connection inside one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        # The hot, prebuilt statements run here (see prepared.py: ≈ 40–130 µs less each).
        self.x = Prepared(conn)
        # Read once per transaction (a list of 10,000 members asks for the same ones each time);
        # nothing else writes them while it runs.
        self._units: dict[str, RowLike] = {}  # ancestry fills it; unit() reads it
        self._ancestry: dict[tuple[str, date], dict[OrgLevel, str]] = {}
        self._campaigns: dict[str, CampaignFacts] = {}
        # Case and task rows as read or last written in this transaction, keyed (kind, id):
        # `save` writes only the columns that differ from them (see `_changed`).
        self._rows: dict[tuple[str, str], Mapping[str, Any]] = {}

    # --- case aggregate ---------------------------------------------------------------

    def load_case(self, case_id: str, *, lock: bool = True) -> CaseAggregate:
        agg = self._load_aggregate(_BY_ID, {"b_id": case_id}, lock)
        if agg is None:
            raise NotFound("case", case_id)
        return agg

    def load_case_of_task(self, task_id: str) -> CaseAggregate:
        """The (row-locked) aggregate of the case `task_id` belongs to."""
        agg = self._load_aggregate(_BY_TASK, {"b_task": task_id}, True)
        if agg is None:
            raise NotFound("task", task_id)
        return agg

    def _load_aggregate(
        self, statements: tuple[Any, ...], key: dict[str, str], lock: bool
    ) -> CaseAggregate | None:
        # On PostgreSQL the row lock serialises commands on one case; SQLite already is. The
        # lock is taken by the first statement, before the child rows are read.
        plain, locked, tasks, decisions, documents, payments = statements
        head = locked if lock and self.postgres else plain
        found = self.x.rows_many([(q, key) for q in (head, tasks, decisions, documents, payments)])
        if not found[0]:
            return None
        agg = CaseAggregate(case=case_from_row(found[0][0]))
        agg.tasks = [task_from_row(r) for r in found[1]]
        rows = self._rows
        rows[("case", agg.case.id)] = found[0][0]
        for r in found[1]:
            rows[("task", r["id"])] = r
        agg.decisions = [decision_from_row(r) for r in found[2]]
        agg.documents = [document_from_row(r) for r in found[3]]
        agg.payments = [payment_from_row(r) for r in found[4]]
        return agg

    def load_cases(self, case_ids: Sequence[str]) -> dict[str, CaseAggregate]:
        """Several whole aggregates in five queries (the SLA sweep's batches).

        On PostgreSQL the case rows are locked in id order, so two sweeps cannot deadlock.
        """
        ids = sorted(set(case_ids))
        if not ids:
            return {}
        found: Sequence[Iterable[RowLike]]
        if self.postgres:
            found = self.x.rows_many([(q, {"b_ids": ids}) for q in _OF_ID_ARRAY])
        else:  # streamed, as before: SQLite pays no round trip per statement
            key = {"b_ids": ids}
            found = [self.conn.execute(q, key).mappings() for q in _OF_IDS]
        cases, tasks, decisions, documents, payments = found
        out = {r["id"]: CaseAggregate(case=case_from_row(r)) for r in cases}
        for r in tasks:
            out[r["case_id"]].tasks.append(task_from_row(r))
        for r in decisions:
            out[r["case_id"]].decisions.append(decision_from_row(r))
        for r in documents:
            out[r["case_id"]].documents.append(document_from_row(r))
        for r in payments:
            out[r["case_id"]].payments.append(payment_from_row(r))
        return out

    def save(self, agg: CaseAggregate) -> None:
        c = agg.case
        x = self.x
        # One round trip on PostgreSQL for all of the aggregate's rows; the version and budget
        # checks are tested when the batch ends, before anything else runs.
        rows = self._rows
        with x.batch():
            case_row = case_to_row(c)
            if agg.is_new:
                x.execute_many(_INS_CASE, [case_row])
            else:
                case_row["version"] = c.version + 1
                params = self._changed("case", case_row)
                params.update(b_id=c.id, b_version=c.version)
                x.check(_UPD_CASE, params, 1, Conflict("stale_case"))
            rows[("case", c.id)] = case_row
            if agg.new_tasks:
                new_rows = [task_to_row(t) for t in agg.new_tasks]
                x.execute_many(_INS_TASK, new_rows)
                for r in new_rows:
                    rows[("task", r["id"])] = r
            for task in agg.touched_tasks.values():
                task_row = task_to_row(task)
                params = self._changed("task", task_row)
                if params:
                    params["b_id"] = task.id
                    x.execute_many(_UPD_TASK, [params])
                rows[("task", task.id)] = task_row
            if agg.new_decisions:
                x.execute_many(_INS_DECISION, [decision_to_row(d) for d in agg.new_decisions])
            if agg.new_documents:
                x.execute_many(_INS_DOCUMENT, [d.__dict__ for d in agg.new_documents])
            if agg.new_payments:
                x.execute_many(_INS_PAYMENT, [p.__dict__ for p in agg.new_payments])
            for op in agg.budget_ops:
                self.apply_budget(op)
        if not agg.is_new:
            c.version += 1
        if agg.claim_keys_released:
            x.execute_many(_DEL_CLAIM_KEYS_OF, [{"b_case": c.id}])
        elif agg.claim_keys_added:
            self.add_claim_keys(c.id, agg.claim_keys_added, new_case=agg.is_new)

    def forget_rows(self) -> None:
        """Forget the rows read or written so far: after a savepoint is rolled back they may
        no longer be what the database holds, and `save` would leave out columns it must
        write. The next save of a forgotten row writes every column."""
        self._rows.clear()

    def _changed(self, kind: str, row: dict[str, Any]) -> dict[str, Any]:
        """The columns of `row` that differ from the same row as read or last written in this
        transaction (all of them if it was not read here).

        An UPDATE of every column rewrote every index entry of the row on SQLite — a case's
        member, household, campaign and list indexes, a task's assignee index: about five of a
        command's ≈ 40 pages written at commit, for columns that never change after filing.
        The row is locked (PostgreSQL) or the database is (SQLite) from the read to the
        commit, so the columns left out still hold the values read — unless a savepoint was
        rolled back in between, which is why its caller must `forget_rows`.
        """
        before = self._rows.get((kind, row["id"]))
        if before is None:
            out = dict(row)
            del out["id"]
            return out
        missing = object()
        return {k: v for k, v in row.items() if k != "id" and before.get(k, missing) != v}

    def save_many(self, aggs: Sequence[CaseAggregate]) -> None:
        """Save several changed aggregates with one statement per kind of row (the SLA sweep).

        The same writes as `save` for each, batched: each executemany costs about what one
        single-row statement does (on PostgreSQL each kind is one set-based statement). The
        version check still covers every case row; inside a `batch()` it is tested when the
        batch ends.
        """
        if not self.conn.dialect.supports_sane_multi_rowcount or any(a.is_new for a in aggs):
            for agg in aggs:
                self.save(agg)
            return
        cases = []
        for agg in aggs:
            row = case_to_row(agg.case)
            del row["id"]
            row.update(version=agg.case.version + 1, b_id=agg.case.id, b_version=agg.case.version)
            cases.append(row)
        x = self.x
        if self.postgres:
            if cases:  # inside a batch the count is tested when it ends
                stmt = _PG_UPD_CASES.stmt
                x.check(stmt, _PG_UPD_CASES.params(cases), len(cases), Conflict("stale_case"))
        elif cases and x.execute_many(_UPD_CASE, cases) != len(cases):
            raise Conflict("stale_case")
        for agg in aggs:
            agg.case.version += 1
        new_tasks = [task_to_row(t) for a in aggs for t in a.new_tasks]
        if new_tasks:
            x.execute_many(_INS_TASK, new_tasks)
        touched = []
        for a in aggs:
            for task in a.touched_tasks.values():
                row = task_to_row(task)
                row["b_id"] = row.pop("id")
                touched.append(row)
        if self.postgres and touched:
            x.execute_many(_PG_UPD_TASKS.stmt, [_PG_UPD_TASKS.params(touched)])
        else:
            x.execute_many(_UPD_TASK, touched)
        x.execute_many(_INS_DECISION, [decision_to_row(d) for a in aggs for d in a.new_decisions])
        x.execute_many(_INS_DOCUMENT, [d.__dict__ for a in aggs for d in a.new_documents])
        x.execute_many(_INS_PAYMENT, [p.__dict__ for a in aggs for p in a.new_payments])
        for a in aggs:
            for op in a.budget_ops:
                self.apply_budget(op)
            if a.claim_keys_released:
                x.execute_many(_DEL_CLAIM_KEYS_OF, [{"b_case": a.case.id}])
            elif a.claim_keys_added:
                self.add_claim_keys(a.case.id, a.claim_keys_added)

    def add_claim_keys(self, case_id: str, keys: Sequence[str], *, new_case: bool = False) -> None:
        taken = self.taken_claim_keys(keys)
        clash = {k: v for k, v in taken.items() if v != case_id}
        if clash:
            # Lost a race against a concurrent submission for the same event.
            raise RuleViolation(
                "duplicate_claim", rule="unique_claim", params={"key_kind": "sự việc"}
            )
        if not new_case:  # a case being filed holds no key yet: nothing to give up
            # A case re-keyed after its form changed gives up the keys it no longer has.
            held = self.x.rows(_SEL_CLAIM_KEYS_OF, {"b_case": case_id})
            gone = [{"b_key": r["key"]} for r in held if r["key"] not in keys]
            self.x.execute_many(_DEL_CLAIM_KEY, gone)
        new = [k for k in keys if k not in taken]
        if new:
            self.x.execute_many(_INS_CLAIM_KEY, [{"key": k, "case_id": case_id} for k in new])

    # --- facts ------------------------------------------------------------------------

    def member_facts(self, member_id: str) -> MemberFacts:
        found = self.x.rows(_SEL_MEMBER_WITH_PERIODS, {"b_id": member_id})
        if not found:
            raise NotFound("member", member_id)
        r = found[0]
        periods = tuple(
            MembershipPeriod(p["period_unit"], p["period_joined"], p["period_left"])
            for p in found
            if p["period_unit"] is not None
        )
        return MemberFacts(
            id=r["id"],
            cccd=r["cccd"],
            dob=r["dob"],
            sex=r["sex"],
            name_key=r["name_key"],
            household_key=r["household_key"],
            commune_code=r["commune_code"],
            memberships=periods,
        )

    @contextmanager
    def prefetching(
        self,
        *,
        member_id: str,
        household_key: str | None,
        unit_on: tuple[str, date],
        account_on: tuple[str, date] | None,
    ) -> Iterator[None]:
        """Read a command's facts in one go (one round trip on PostgreSQL, nothing on SQLite):
        the member and memberships, the history when `household_key` is given, the org chain
        and the unit's row, and the acting account with its roles. The calls inside the block
        get these answers; what they do not ask for is dropped when it ends.
        """
        reads: list[tuple[Any, dict[str, Any]]] = [(_SEL_MEMBER_WITH_PERIODS, {"b_id": member_id})]
        if household_key is not None:
            reads.append(_history_read(member_id, household_key))
        if unit_on not in self._ancestry:
            reads.append((_SEL_ANCESTRY, {"b_unit": unit_on[0], "b_on": unit_on[1]}))
        if unit_on[0] not in self._units:
            reads.append((_SEL_UNIT, {"b_id": unit_on[0]}))
        if account_on is not None:
            account = {"b_id": account_on[0], "b_on": account_on[1]}
            reads.append((_SEL_ACCOUNT_WITH_GRANTS, account))
        self.x.prefetch(reads)
        try:
            yield
        finally:
            self.x.drop_prefetched()

    @contextmanager
    def prefetching_facts(
        self,
        *,
        history: tuple[str, str] | None,
        claim_keys: Iterable[str],
        documents: tuple[Iterable[str], str] | None,
        duplicates_of: MemberFacts | None,
        budget: BudgetKey | None,
        quota: tuple[str, str, str | None] | None,
    ) -> Iterator[None]:
        """The rule facts that depend on the first ones (the member, the org chain), read in
        one go — one round trip on PostgreSQL, nothing on SQLite — for the `history`,
        `taken_claim_keys`, `reused_documents`, `duplicate_persons`, `budget_available` and
        `quota_used` calls inside the block, with the arguments given here. Answers an
        enclosing `prefetching` block already holds are not read again; those read here and
        not asked for are dropped when the block ends (the enclosing block's are kept).
        """
        reads: list[tuple[Any, dict[str, Any]]] = []
        if history is not None:
            reads.append(_history_read(*history))
        reads += _claim_key_reads(claim_keys)
        if documents is not None:
            reads += _reused_document_reads(*documents, self.postgres)
        if duplicates_of is not None:
            reads.append(_duplicates_read(duplicates_of))
        if budget is not None:
            reads.append(_budget_read(budget))
        if quota is not None:
            reads.append(_quota_read(*quota))
        taken = self.x.prefetch(reads)
        try:
            yield
        finally:
            self.x.drop_prefetched(taken)

    def history(
        self, member_id: str, household_key: str, exclude: str | None = None
    ) -> tuple[PriorCase, ...]:
        out = []
        for r in self.x.rows(*_history_read(member_id, household_key)):
            if r["id"] == exclude:
                continue
            amount = (
                r["approved_amount"] if r["approved_amount"] is not None else r["entitled_amount"]
            )
            out.append(
                PriorCase(
                    r["id"],
                    r["policy"],
                    r["subtype"],
                    r["status"],
                    amount,
                    r["event_date"],
                    r["campaign_id"],
                    r["member_id"],
                    r["household_key"],
                )
            )
        return tuple(out)

    def lock_household(self, key: str) -> None:
        """Serialise cap checks of one household (spouses' concurrent cases).

        PostgreSQL: the household's row, upserted (inside a batch it is only sent: the reads
        after it wait for it on the server). SQLite writers are already serialised by BEGIN
        IMMEDIATE, as for `lock_quota`: writing the row there only cost a statement and two
        pages of every commit.
        """
        if self.postgres:
            self.x.execute_many(_LOCK_HOUSEHOLD, [{"b_key": key}])

    def lock_quota(self, campaign_id: str, unit_id: str) -> None:
        """Serialise quota checks of one unit in one campaign (concurrent submissions).

        PostgreSQL: a transaction-level advisory lock, no row needed; SQLite writers are
        already serialised by BEGIN IMMEDIATE.
        """
        if self.postgres:
            self.conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                {"k": f"quota|{campaign_id}|{unit_id}"},
            )

    # --- case lists -----------------------------------------------------------------------

    def add_case_list(self, row: Mapping[str, Any]) -> None:
        self.x.execute_many(_INS_CASE_LIST, [row])

    def lock_case_lists(self, list_ids: Iterable[str]) -> dict[str, RowLike]:
        """The rows of these lists, locked one by one in id order (PostgreSQL: FOR UPDATE, so
        two transactions screening cases of the same lists cannot deadlock; SQLite writers are
        already serialised by BEGIN IMMEDIATE). A list filed before case lists were recorded
        has no row and is left out.

        On PostgreSQL (READ COMMITTED) a statement run after this one sees what a transaction
        that held the lock before committed: the caller's "is any case still in screening?"
        must come after it, not before.
        """
        out: dict[str, RowLike] = {}
        stmt = _SEL_CASE_LIST_LOCKED if self.postgres else _SEL_CASE_LIST
        for list_id in sorted(set(list_ids)):
            row = self.x.first(stmt, {"b_id": list_id})
            if row is not None:
                out[list_id] = row
        return out

    def list_waiting(self, list_id: str) -> bool:
        """Whether any case of the list is still in screening."""
        return self.x.first(_SEL_LIST_WAITING, {"b_id": list_id}) is not None

    def update_case_list(
        self, list_id: str, tally: Mapping[str, Any], screened_at: datetime | None
    ) -> None:
        self.x.execute_many(
            _UPD_CASE_LIST,
            [{"b_id": list_id, "b_tally": dict(tally), "b_screened_at": screened_at}],
        )

    def taken_claim_keys(self, keys: Iterable[str]) -> dict[str, str]:
        found = self.x.rows_many(_claim_key_reads(keys))
        return {str(r["key"]): str(r["case_id"]) for rows in found for r in rows}

    def reused_documents(self, hashes: Iterable[str], case_id: str) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for read in _reused_document_reads(hashes, case_id, self.postgres):
            for r in self.x.rows(*read):
                out.setdefault(r["sha256"], []).append(r["case_id"])
        return {k: tuple(v) for k, v in out.items()}

    def duplicate_persons(self, member: MemberFacts) -> int:
        return int(self.x.scalar(*_duplicates_read(member)))

    def campaign_facts(self, campaign_id: str) -> CampaignFacts:
        known = self._campaigns.get(campaign_id)
        if known is None:
            known = self._campaigns[campaign_id] = self._campaign_facts(campaign_id)
        return known

    def _campaign_facts(self, campaign_id: str) -> CampaignFacts:
        r = self.x.first(_SEL_CAMPAIGN, {"b_id": campaign_id})
        if r is None:
            raise NotFound("campaign", campaign_id)
        p = r["params"] or {}
        cutoff = p.get("dues_cutoff")
        return CampaignFacts(
            id=r["id"],
            policy=r["policy"],
            code=r["code"],
            opens_on=r["opens_on"],
            closes_on=r["closes_on"],
            event_from=r["event_from"],
            event_to=r["event_to"],
            affected_communes=frozenset(p.get("affected_communes", [])),
            dues_cutoff=date.fromisoformat(cutoff) if cutoff else None,
            quotas={k: int(v) for k, v in p.get("quotas", {}).items()},
        )

    def quota_used(self, campaign_id: str, unit_id: str, exclude: str | None) -> int:
        return int(self.x.scalar(*_quota_read(campaign_id, unit_id, exclude)))

    # --- organisation and people --------------------------------------------------------

    def unit(self, unit_id: str) -> RowLike:
        r = self._units.get(unit_id)
        if r is None:
            r = self.x.first(_SEL_UNIT, {"b_id": unit_id})
            if r is None:
                raise NotFound("org unit", unit_id)
            self._units[unit_id] = r
        return r

    def parent_of(self, unit_id: str, on: date) -> str | None:
        r = self.conn.execute(
            select(LINK.c.parent_id)
            .where(
                LINK.c.child_id == unit_id,
                LINK.c.valid_from <= on,
                or_(LINK.c.valid_to.is_(None), LINK.c.valid_to >= on),
            )
            .order_by(LINK.c.valid_from.desc())
        ).first()
        return r[0] if r else None

    def ancestry(self, unit_id: str, on: date) -> dict[OrgLevel, str]:
        """The unit and its ancestors as of `on`, by level (one recursive query)."""
        known = self._ancestry.get((unit_id, on))
        if known is not None:
            return dict(known)
        rows = self.x.rows(_SEL_ANCESTRY, {"b_unit": unit_id, "b_on": on})
        if not rows:
            raise NotFound("org unit", unit_id)
        return dict(self._remember_chain(unit_id, on, rows))

    def _remember_chain(
        self, unit_id: str, on: date, rows: Sequence[RowLike]
    ) -> dict[OrgLevel, str]:
        chain: dict[OrgLevel, str] = {}
        for r in rows:
            self._units.setdefault(r["id"], r)
            chain.setdefault(OrgLevel(r["level"]), r["id"])
        self._ancestry[(unit_id, on)] = chain
        return chain

    def read_ancestries(self, unit_ids: Iterable[str], on: date) -> None:
        """Read the chains of these units not read yet in this transaction, together (one
        round trip on PostgreSQL: the sweep's batch needs one per unit of its cases)."""
        todo = sorted({u for u in unit_ids if (u, on) not in self._ancestry})
        if len(todo) < 2:
            return  # `ancestry` reads a single one as well
        found = self.x.rows_many([(_SEL_ANCESTRY, {"b_unit": u, "b_on": on}) for u in todo])
        for unit_id, rows in zip(todo, found, strict=True):
            if rows:  # else `ancestry` raises NotFound when asked for it
                self._remember_chain(unit_id, on, rows)

    def account(self, account_id: str) -> RowLike:
        r = self.x.first(_SEL_ACCOUNT, {"b_id": account_id})
        if r is None or not r["active"]:
            raise NotFound("account", account_id)
        return r

    def account_and_grants(
        self, account_id: str, on: date
    ) -> tuple[RowLike, tuple[tuple[Role, str], ...]]:
        """An active account (its row, with `grant_role` and `grant_unit` of the first role as
        well) and its roles on `on`, read in one statement."""
        found = self.x.rows(_SEL_ACCOUNT_WITH_GRANTS, {"b_id": account_id, "b_on": on})
        if not found or not found[0]["active"]:
            raise NotFound("account", account_id)
        grants = tuple(
            (Role(r["grant_role"]), r["grant_unit"]) for r in found if r["grant_role"] is not None
        )
        return found[0], grants

    def subtree(self, unit_id: str, on: date) -> frozenset[str]:
        """The unit and every unit below it as of `on` (one recursive query)."""
        return frozenset(
            r["id"] for r in self.x.rows(_SEL_SUBTREE, {"b_unit": unit_id, "b_on": on})
        )

    def household_of(self, member_id: str) -> str | None:
        found = self.x.scalar(_SEL_HOUSEHOLD_OF, {"b_id": member_id})
        return None if found is None else str(found)

    # --- budgets ------------------------------------------------------------------------

    def budget_available(self, key: BudgetKey) -> int:
        r = self.x.first(*_budget_read(key))
        return 0 if r is None else int(r["amount"] - r["reserved"] - r["spent"])

    def apply_budget(self, op: BudgetOp) -> None:
        k = op.key
        stmt = _BUDGET_OPS["spend" if op.op not in ("reserve", "release") else op.op]
        self.x.check(
            stmt,
            {**_budget_params(k), "b_amount": op.amount},
            1,
            # Another approval took the money first: refuse rather than over-commit.
            RuleViolation(
                "budget_insufficient",
                rule="budget_available",
                params={"fund": k.fund, "year": k.year},
            ),
        )

    # --- audit and outbox -----------------------------------------------------------------

    def lock_audit_head(self) -> tuple[int, str]:
        row = self.x.first(_SEL_AUDIT_HEAD_LOCKED if self.postgres else _SEL_AUDIT_HEAD, {})
        if row is None:
            raise LookupError("the audit head row is missing")
        return int(row["seq"]), str(row["entry_hash"])

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        from domain.audit import canonical_json

        rows = [
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
                "payload": e.payload_text
                if e.payload_text is not None
                else canonical_json(e.payload).decode("utf-8"),
                "prev_hash": e.prev_hash,
                "entry_hash": e.entry_hash,
            }
            for e in entries
        ]
        if self.postgres and len(rows) >= SET_BASED_ROWS:
            self.x.execute_many(_PG_INS_AUDIT.stmt, [_PG_INS_AUDIT.params(rows)])
        else:
            self.x.execute_many(_INS_AUDIT, rows)
        last = entries[-1]
        self.x.execute_many(_UPD_AUDIT_HEAD, [{"b_seq": last.seq, "b_hash": last.entry_hash}])

    def add_outbox(self, events: Sequence[Event], now: datetime) -> None:
        if not events:
            return
        rows = [
            {
                "id": e.id,
                "type": e.type,
                "case_id": e.case_id,
                "occurred_at": e.occurred_at,
                "data": dict(e.data),
                "status": "pending",
                "attempts": 0,
                "available_at": now,
            }
            for e in events
        ]
        if self.postgres and len(rows) >= SET_BASED_ROWS:
            self.x.execute_many(_PG_INS_OUTBOX.stmt, [_PG_INS_OUTBOX.params(rows)])
        else:
            self.x.execute_many(_INS_OUTBOX, rows)

    # --- complaints -------------------------------------------------------------------------

    def insert_complaint(self, c: Complaint) -> None:
        self.conn.execute(insert(COMPLAINT).values(**c.__dict__))

    def complaint(self, complaint_id: str) -> Complaint:
        r = (
            self.conn.execute(select(COMPLAINT).where(COMPLAINT.c.id == complaint_id))
            .mappings()
            .first()
        )
        if r is None:
            raise NotFound("complaint", complaint_id)
        return Complaint(**dict(r))

    def update_complaint(self, c: Complaint) -> None:
        self.conn.execute(update(COMPLAINT).where(COMPLAINT.c.id == c.id).values(**c.__dict__))

    def due_tasks(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(task id, case id) of open tasks whose next SLA check is due, oldest first."""
        is_open: ColumnElement[bool] = TASK.c.status == TaskStatus.OPEN.value
        if self.conn.dialect.name == "sqlite":
            # Without statistics (nothing runs ANALYZE in production) SQLite guesses that
            # `status = 'open'` is selective and reads every open task through ix_task_inbox,
            # then sorts them: the sweep's cost would follow the open tasks, not the due ones.
            # With the status test declared nearly always true, ix_task_next_check is the
            # index to use: it reads just the due tasks, already in order.
            is_open = func.likelihood(is_open, literal_column("0.9375"))
        rows = self.conn.execute(
            select(TASK.c.id, TASK.c.case_id)
            .where(TASK.c.next_check_at <= now, is_open)
            .order_by(TASK.c.next_check_at)
            .limit(limit)
        ).all()
        return [(r[0], r[1]) for r in rows]


def _budget_params(key: BudgetKey) -> dict[str, Any]:
    return {"b_unit": key.org_unit_id, "b_year": key.year, "b_fund": key.fund}


# The statement and parameters of each fact read, shared by the read itself and by
# `prefetching_facts`, whose answers are found by exactly these.
Read = tuple[Any, dict[str, Any]]


def _history_read(member_id: str, household_key: str) -> Read:
    return _SEL_HISTORY, {"b_member": member_id, "b_hh": household_key}


def _claim_key_reads(keys: Iterable[str]) -> list[Read]:
    # One prepared read per key (a case has one or two), not an IN list: expanding
    # parameters cannot run on the prepared path, nor inside a PostgreSQL pipeline.
    return [(_SEL_CLAIM_KEY, {"b_key": k}) for k in dict.fromkeys(keys)]


def _reused_document_reads(hashes: Iterable[str], case_id: str, postgres: bool) -> list[Read]:
    """One read for all the files (none for no file)."""
    unique = sorted(set(hashes))
    if not unique:
        return []
    if postgres:
        return [(_SEL_REUSED_DOCS_ARRAY, {"b_hashes": unique, "b_case": case_id})]
    return [(_SEL_REUSED_DOCS_JSON, {"b_hashes": json.dumps(unique), "b_case": case_id})]


def _duplicates_read(member: MemberFacts) -> Read:
    return _COUNT_DUPLICATES, {
        "b_name_key": member.name_key,
        "b_dob": member.dob,
        "b_id": member.id,
    }


def _budget_read(key: BudgetKey) -> Read:
    return _SEL_BUDGET, _budget_params(key)


def _quota_read(campaign_id: str, unit_id: str, exclude: str | None) -> Read:
    return _COUNT_QUOTA, {"b_campaign": campaign_id, "b_unit": unit_id, "b_exclude": exclude or ""}


def mapping_to_json(m: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(m, default=str))  # type: ignore[no-any-return]
