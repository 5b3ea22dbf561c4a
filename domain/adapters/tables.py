"""The relational schema, as SQLModel tables. The source of truth for every case and decision.

Amounts are BIGINT đồng. Timestamps are stored in UTC (timestamptz on PostgreSQL; naive UTC on
SQLite, re-tagged on read). Audit payloads are stored as the exact canonical JSON text that
was hashed, so verification recomputes from the bytes on disk.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store UTC-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the text SQLAlchemy's DATETIME would store ('YYYY-MM-DD HH:MM:SS.ffffff',
        UTC), made in one step: a command binds ≈ 20 timestamps, and the two-step path
        (`process_bind_param`, then DATETIME's formatting in Python) took twice as long."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            tz = value.tzinfo
            if tz is UTC:  # almost every value: its text less the "+00:00", a third cheaper
                return value.isoformat(" ", "microseconds")[:-6]
            if tz is None:
                raise ValueError("naive datetime: store UTC-aware times only")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """On SQLite, the stored text parsed and tagged UTC in one step (DATETIME's parser is
        `fromisoformat` too): a command reads ≈ 20 timestamps, and the two-step path called
        two Python functions for each."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            found = parse(value)
            return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)

        return process


def _ts(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _money(**kw: Any) -> Any:
    return Field(sa_type=BigInteger, **kw)


def _not_null(column: str) -> dict[str, Any]:
    """Index options making an index partial: only rows where `column` is set. Each query
    that uses it compares the column with `=` or `<=`, which both databases know implies
    NOT NULL, so their planners still choose it."""
    where = text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


class OrgUnitRow(SQLModel, table=True):
    __tablename__ = "org_unit"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    level: str = Field(max_length=20, index=True)
    commune_code: str | None = Field(default=None, max_length=20)
    valid_from: date
    valid_to: date | None = None


class OrgLinkRow(SQLModel, table=True):
    """Effective-dated parent links: re-parenting after a reorganisation keeps the history."""

    __tablename__ = "org_link"
    id: int | None = Field(default=None, primary_key=True)
    child_id: str = Field(foreign_key="org_unit.id", index=True, max_length=64)
    parent_id: str = Field(foreign_key="org_unit.id", index=True, max_length=64)
    valid_from: date
    valid_to: date | None = None


class MemberRow(SQLModel, table=True):
    __tablename__ = "member"
    __table_args__ = (Index("ix_member_name_key_dob", "name_key", "dob"),)
    id: str = Field(primary_key=True, max_length=36)
    cccd: str = Field(max_length=12, unique=True)
    full_name: str = Field(max_length=120)
    name_key: str = Field(max_length=120)
    dob: date
    sex: str = Field(max_length=6)
    household_key: str = Field(max_length=64, index=True)
    commune_code: str | None = Field(default=None, max_length=20)
    phone: str | None = Field(default=None, max_length=15)
    created_at: datetime = _ts()


class MembershipRow(SQLModel, table=True):
    __tablename__ = "membership"
    id: int | None = Field(default=None, primary_key=True)
    member_id: str = Field(foreign_key="member.id", index=True, max_length=36)
    unit_id: str = Field(foreign_key="org_unit.id", index=True, max_length=64)
    joined_on: date
    left_on: date | None = None


class HouseholdRow(SQLModel, table=True):
    """One row per household: the lock that serialises cap checks for spouses' cases."""

    __tablename__ = "household"
    key: str = Field(primary_key=True, max_length=64)
    version: int = 0


class AccountRow(SQLModel, table=True):
    __tablename__ = "account"
    id: str = Field(primary_key=True, max_length=36)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=120)
    email: str | None = Field(default=None, max_length=200)
    member_id: str | None = Field(default=None, foreign_key="member.id", max_length=36)
    home_unit_id: str | None = Field(default=None, foreign_key="org_unit.id", max_length=64)
    password_hash: str | None = Field(default=None, max_length=200)
    active: bool = True
    created_at: datetime = _ts()
    lang: str = Field(default="vi", max_length=5, sa_column_kwargs={"server_default": "vi"})


class RoleGrantRow(SQLModel, table=True):
    __tablename__ = "role_grant"
    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=36)
    role: str = Field(max_length=40)
    org_unit_id: str = Field(foreign_key="org_unit.id", index=True, max_length=64)
    valid_from: date
    valid_to: date | None = None
    granted_by: str | None = Field(default=None, max_length=36)


class CampaignRow(SQLModel, table=True):
    __tablename__ = "campaign"
    id: str = Field(primary_key=True, max_length=36)
    policy: str = Field(max_length=40, index=True)
    code: str = Field(max_length=60, unique=True)
    title: str = Field(max_length=200)
    opens_on: date
    closes_on: date
    event_from: date
    event_to: date
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    declared_by: str = Field(max_length=36)
    declared_at: datetime = _ts()


class CaseRow(SQLModel, table=True):
    __tablename__ = "welfare_case"  # "case" is an SQL keyword
    __table_args__ = (
        Index("ix_case_unit_status", "unit_id", "status"),
        # A list's cases, and whether any is still in screening (asked by every screening
        # transaction of a list: an index probe, not a walk over the list's screened cases).
        # Partial (rows with a list only): most cases have none, and an index entry for
        # each of them would be one more B-tree page every filing and status change writes.
        Index("ix_case_batch_status", "batch_id", "status", **_not_null("batch_id")),
        Index("ix_welfare_case_campaign_id", "campaign_id", **_not_null("campaign_id")),
        CheckConstraint("entitled_amount > 0", name="entitled_positive"),
        CheckConstraint("paid_amount >= 0 AND reserved_amount >= 0", name="money_non_negative"),
    )
    id: str = Field(primary_key=True, max_length=36)
    policy: str = Field(max_length=40)
    policy_version: int
    subtype: str = Field(max_length=40)
    member_id: str = Field(foreign_key="member.id", index=True, max_length=36)
    household_key: str = Field(max_length=64, index=True)
    unit_id: str = Field(foreign_key="org_unit.id", max_length=64)
    campaign_id: str | None = Field(default=None, foreign_key="campaign.id", max_length=36)
    submitted_by: str = Field(max_length=36)
    submitter_person: str = Field(max_length=36)
    submitted_at: datetime = _ts()
    event_date: date
    form: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    entitled_amount: int = _money()
    approved_amount: int | None = _money(default=None)
    paid_amount: int = _money(default=0)
    status: str = Field(max_length=20, index=True)
    current_step: str = Field(max_length=60)
    return_step: str | None = Field(default=None, max_length=60)
    paused_clock_used: int = _money(default=0)
    flags: list[str] = Field(default_factory=list, sa_type=JSON)
    batch_id: str | None = Field(default=None, max_length=36)
    budget_unit_id: str | None = Field(default=None, max_length=64)
    budget_year: int | None = None
    budget_fund: str | None = Field(default=None, max_length=40)
    reserved_amount: int = _money(default=0)
    closed_at: datetime | None = _ts(default=None)
    outcome_reason: str | None = Field(default=None, max_length=200)
    version: int = 0


class CaseListRow(SQLModel, table=True):
    """A list of cases filed in one request (a Tết list); its id is the cases' `batch_id`.

    `tally` is what screening made of the list's cases, added to by every transaction that
    takes one of them out of `screening` (under this row's lock): cases by status, the first
    tasks opened by (role, level, unit), and the first rejected cases' ids. `screened_at` is
    set once, by the transaction after which none of its cases is left in screening — the one
    that announces the list (`case_list.screened`).
    """

    __tablename__ = "case_list"
    id: str = Field(primary_key=True, max_length=36)
    policy: str = Field(max_length=40)
    policy_version: int
    unit_id: str = Field(foreign_key="org_unit.id", max_length=64)
    campaign_id: str | None = Field(default=None, foreign_key="campaign.id", max_length=36)
    submitted_by: str = Field(max_length=36)
    submitted_at: datetime = _ts()
    items: int
    accepted: int
    tally: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    screened_at: datetime | None = _ts(default=None)


class TaskRow(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (
        # The inbox: open tasks for a role at a set of units, by due time.
        Index("ix_task_inbox", "status", "role", "org_unit_id", "due_at"),
        # The SLA sweep reads only tasks whose next check is due: cost ~ overdue, not all.
        # Closed tasks have none, so the index holds open tasks only.
        Index("ix_task_next_check", "next_check_at", **_not_null("next_check_at")),
        # "Assigned to me": most tasks are never claimed by one person.
        Index("ix_task_assignee_id", "assignee_id", **_not_null("assignee_id")),
    )
    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="welfare_case.id", index=True, max_length=36)
    step: str = Field(max_length=60)
    kind: str = Field(max_length=20)
    role: str = Field(max_length=40)
    level: str = Field(max_length=20)
    org_unit_id: str = Field(max_length=64)
    opened_at: datetime = _ts()
    clock: str = Field(max_length=20)
    sla_seconds: int = _money()
    clock_used_before: int = _money(default=0)
    remind_at: datetime | None = _ts(default=None)
    due_at: datetime = _ts()
    escalate_at: datetime = _ts()
    approvals_needed: int = 1
    committee: bool = False
    status: str = Field(max_length=20)
    assignee_id: str | None = Field(default=None, max_length=36)
    delegated_by: str | None = Field(default=None, max_length=36)
    delegated_until: datetime | None = _ts(default=None)
    escalation: str = Field(default="none", max_length=20)
    next_check_at: datetime | None = _ts(default=None)
    closed_at: datetime | None = _ts(default=None)
    outcome: str | None = Field(default=None, max_length=20)
    tranche: int | None = None


class DecisionRow(SQLModel, table=True):
    __tablename__ = "decision"
    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="welfare_case.id", index=True, max_length=36)
    task_id: str = Field(foreign_key="task.id", max_length=36)
    step: str = Field(max_length=60)
    actor_id: str = Field(max_length=36, index=True)
    person_key: str = Field(max_length=36)
    role: str | None = Field(default=None, max_length=40)
    org_unit_id: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=20)
    amount: int | None = _money(default=None)
    reason: str | None = Field(default=None, sa_type=Text)
    at: datetime = _ts()


class DocumentRow(SQLModel, table=True):
    __tablename__ = "document"
    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="welfare_case.id", index=True, max_length=36)
    kind: str = Field(max_length=60)
    filename: str = Field(max_length=255)
    sha256: str = Field(max_length=64, index=True)
    size: int = _money()
    content_type: str = Field(max_length=100)
    sensitive: bool = False
    added_by: str = Field(max_length=36)
    added_at: datetime = _ts()


class PaymentRow(SQLModel, table=True):
    __tablename__ = "payment"
    __table_args__ = (UniqueConstraint("case_id", "tranche", name="uq_payment_case_tranche"),)
    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="welfare_case.id", index=True, max_length=36)
    tranche: int
    amount: int = _money()
    method: str = Field(max_length=20)
    reference: str = Field(max_length=100)
    paid_by: str = Field(max_length=36)
    paid_at: datetime = _ts()


class BudgetRow(SQLModel, table=True):
    __tablename__ = "budget"
    __table_args__ = (
        UniqueConstraint("org_unit_id", "year", "fund", name="uq_budget_unit_year_fund"),
        # The database itself refuses over-commitment, whatever the code path.
        CheckConstraint(
            "reserved >= 0 AND spent >= 0 AND reserved + spent <= amount", name="within"
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_unit_id: str = Field(foreign_key="org_unit.id", max_length=64)
    year: int
    fund: str = Field(max_length=40)
    amount: int = _money()
    reserved: int = _money(default=0)
    spent: int = _money(default=0)


class ClaimKeyRow(SQLModel, table=True):
    """Live dedup keys (C6): the primary key makes a concurrent duplicate impossible."""

    __tablename__ = "claim_key"
    key: str = Field(primary_key=True, max_length=400)
    case_id: str = Field(foreign_key="welfare_case.id", index=True, max_length=36)


class ComplaintRow(SQLModel, table=True):
    __tablename__ = "complaint"
    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="welfare_case.id", index=True, max_length=36)
    kind: str = Field(max_length=20)
    filed_by: str = Field(max_length=36)
    filed_at: datetime = _ts()
    handling_unit_id: str = Field(max_length=64, index=True)
    text: str = Field(sa_type=Text)
    status: str = Field(max_length=20)
    resolution: str | None = Field(default=None, sa_type=Text)
    resolved_by: str | None = Field(default=None, max_length=36)
    resolved_at: datetime | None = _ts(default=None)


class AuditEntryRow(SQLModel, table=True):
    """Append-only (triggers refuse UPDATE and DELETE); hash-chained by `prev_hash`."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entity", "entity_type", "entity_id", "seq"),
        # The auditors' search (domain/service/audit_search.py), in chain order.
        Index("ix_audit_policy_seq", "policy", "seq"),
        Index("ix_audit_unit_seq", "org_unit_id", "seq"),
        Index("ix_audit_at", "at"),
    )
    # On SQLite an INTEGER primary key is the rowid itself (as outbox.seq): a BIGINT one is a
    # separate index, one more B-tree every appended entry writes (migration 0006).
    seq: int = Field(
        sa_type=BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        sa_column_kwargs={"autoincrement": False},
    )
    at: datetime = _ts()
    actor_id: str | None = Field(default=None, max_length=36, index=True)
    actor_role: str | None = Field(default=None, max_length=40)
    org_unit_id: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=40, index=True)
    entity_type: str = Field(max_length=20)
    entity_id: str = Field(max_length=64)
    policy: str | None = Field(default=None, max_length=40)
    policy_version: int | None = None
    payload: str = Field(sa_type=Text)
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)


class AuditHeadRow(SQLModel, table=True):
    """The single chain head, locked while appending so the chain never forks."""

    __tablename__ = "audit_head"
    id: int = Field(primary_key=True)
    seq: int = Field(sa_type=BigInteger)
    entry_hash: str = Field(max_length=64)


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "available_at"),)
    # Insertion order is the delivery order: consumers handle a case's events in sequence.
    seq: int | None = Field(
        default=None, primary_key=True, sa_type=BigInteger().with_variant(Integer, "sqlite")
    )
    id: str = Field(max_length=36, unique=True)
    type: str = Field(max_length=40)
    case_id: str | None = Field(default=None, max_length=36, index=True)
    occurred_at: datetime = _ts()
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    available_at: datetime = _ts()
    processed_at: datetime | None = _ts(default=None)
    last_error: str | None = Field(default=None, sa_type=Text)
    # A consumer leases a batch (status "claimed") so several can run side by side; an expired
    # lease (a crashed worker) returns the rows to the pool.
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _ts(default=None)


class DefinitionSnapshotRow(SQLModel, table=True):
    """Every published (policy, version) with its content hash: a published version never changes."""

    __tablename__ = "definition_snapshot"
    policy: str = Field(primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    sha256: str = Field(max_length=64)
    content: dict[str, Any] = Field(sa_type=JSON)
    published_at: datetime = _ts()


class ConsumedEventRow(SQLModel, table=True):
    """Effects applied at most once: a consumer records the event id in its effect's transaction."""

    __tablename__ = "consumed_event"
    consumer: str = Field(primary_key=True, max_length=60)
    event_id: str = Field(primary_key=True, max_length=36)
    at: datetime = _ts()


class NotificationRow(SQLModel, table=True):
    """One e-mail to send: (event, address, template) is unique, so a replayed event sends nothing new."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("event_id", "address", "template", name="uq_notification_once"),
        Index("ix_notification_pending", "status", "available_at"),
    )
    id: str = Field(primary_key=True, max_length=36)
    event_id: str = Field(max_length=36)
    case_id: str | None = Field(default=None, max_length=36, index=True)
    account_id: str | None = Field(default=None, max_length=36)
    address: str = Field(max_length=200)
    template: str = Field(max_length=60)
    lang: str = Field(default="vi", max_length=5)
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    available_at: datetime = _ts()
    sent_at: datetime | None = _ts(default=None)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _ts()


class IdempotencyRow(SQLModel, table=True):
    """The first answer to a write sent with an Idempotency-Key, replayed for a retry."""

    __tablename__ = "idempotency_record"
    account_id: str = Field(primary_key=True, max_length=36)
    key: str = Field(primary_key=True, max_length=200)
    scope: str = Field(max_length=200)  # method and path template
    request_hash: str = Field(max_length=64)
    status_code: int
    response_body: str = Field(sa_type=Text)
    created_at: datetime = _ts(index=True)


class LoginThrottleRow(SQLModel, table=True):
    """Failed logins per username (and per client address) in a sliding window, shared by all API processes."""

    __tablename__ = "login_throttle"
    key: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    window_started_at: datetime = _ts()
    locked_until: datetime | None = _ts(default=None)
