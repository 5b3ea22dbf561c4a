"""The case aggregate and the entities around it: pure data, mutated only by the engine.

The aggregate records what a command changed (new and touched rows, events, audit intents,
budget and claim-key operations) so the unit of work can write exactly that, in one transaction.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from domain.events import Event
from domain.roles import OrgLevel, Role


class CaseStatus(StrEnum):
    SCREENING = "screening"  # accepted at intake, automatic step pending
    IN_REVIEW = "in_review"  # an approval task is open
    AWAITING_INFO = "awaiting_info"  # returned to the submitter; approver's clock paused
    APPROVED = "approved"  # budget reserved, payment pending
    PAID = "paid"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


TERMINAL = frozenset({CaseStatus.PAID, CaseStatus.REJECTED, CaseStatus.WITHDRAWN})


class TaskKind(StrEnum):
    APPROVAL = "approval"
    MEMBER_INPUT = "member_input"
    PAYMENT = "payment"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Escalation(StrEnum):
    """How far the SLA sweep has gone with a task; the sweep only ever moves forward."""

    NONE = "none"
    REMINDED = "reminded"
    OVERDUE = "overdue"  # due time passed: the next level was notified
    ESCALATED = "escalated"  # twice the SLA: reassigned and flagged for the auditors

    @property
    def rank(self) -> int:
        return list(Escalation).index(self)


@dataclass
class Task:
    id: str
    case_id: str
    step: str
    kind: TaskKind
    role: Role
    level: OrgLevel
    org_unit_id: str
    opened_at: datetime
    clock: str  # Duration unit of the SLA: working_days | calendar_days | hours
    sla_seconds: int
    clock_used_before: int  # clock seconds already used before this task (paused SLA resumed)
    remind_at: datetime | None
    due_at: datetime
    escalate_at: datetime
    approvals_needed: int = 1
    committee: bool = False
    status: TaskStatus = TaskStatus.OPEN
    assignee_id: str | None = None
    delegated_by: str | None = None
    delegated_until: datetime | None = None
    escalation: Escalation = Escalation.NONE
    next_check_at: datetime | None = None
    closed_at: datetime | None = None
    outcome: str | None = None
    tranche: int | None = None  # payment tasks: which tranche (1-based)


@dataclass
class Decision:
    id: str
    case_id: str
    task_id: str
    step: str
    actor_id: str
    person_key: str
    role: Role | None
    org_unit_id: str | None
    action: str  # approve | approve_lower | reject | return | vote_approve | vote_reject | pay
    amount: int | None
    reason: str | None
    at: datetime


@dataclass
class Document:
    id: str
    case_id: str
    kind: str
    filename: str
    sha256: str
    size: int
    content_type: str
    sensitive: bool
    added_by: str
    added_at: datetime


@dataclass
class Payment:
    id: str
    case_id: str
    tranche: int
    amount: int
    method: str  # bank_transfer | cash
    reference: str
    paid_by: str
    paid_at: datetime


@dataclass(frozen=True)
class BudgetKey:
    org_unit_id: str
    year: int
    fund: str


@dataclass(frozen=True)
class BudgetOp:
    """reserve: available → reserved; release: reserved → available; spend: reserved → spent."""

    op: str
    key: BudgetKey
    amount: int


@dataclass(frozen=True, slots=True)
class AuditIntent:
    """An audit entry to append, before it gets its sequence number and hash link.

    Slotted: a campaign list holds two a member until its commit seals them.
    """

    action: str
    entity_type: str
    entity_id: str
    actor_id: str | None
    actor_role: str | None
    org_unit_id: str | None
    policy: str | None
    policy_version: int | None
    payload: Mapping[str, object]


@dataclass
class Case:
    id: str
    policy: str
    policy_version: int
    subtype: str
    member_id: str
    household_key: str
    unit_id: str
    campaign_id: str | None
    submitted_by: str
    submitter_person: str
    submitted_at: datetime
    event_date: date
    form: dict[str, object]
    entitled_amount: int
    approved_amount: int | None = None
    paid_amount: int = 0
    status: CaseStatus = CaseStatus.SCREENING
    current_step: str = ""
    return_step: str | None = None
    paused_clock_used: int = 0
    flags: list[str] = field(default_factory=list)
    batch_id: str | None = None
    budget_key: BudgetKey | None = None
    reserved_amount: int = 0
    closed_at: datetime | None = None
    outcome_reason: str | None = None
    version: int = 0

    @property
    def amount(self) -> int:
        """The amount at stake now: the last approved amount, else the entitlement."""
        return self.approved_amount if self.approved_amount is not None else self.entitled_amount

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass
class CaseAggregate:
    """A case with its tasks, decisions, documents and payments, plus what a command changed."""

    case: Case
    tasks: list[Task] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    is_new: bool = False
    # --- change tracking, consumed by the unit of work ---
    new_tasks: list[Task] = field(default_factory=list)
    touched_tasks: dict[str, Task] = field(default_factory=dict)
    new_decisions: list[Decision] = field(default_factory=list)
    new_documents: list[Document] = field(default_factory=list)
    new_payments: list[Payment] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    audit: list[AuditIntent] = field(default_factory=list)
    budget_ops: list[BudgetOp] = field(default_factory=list)
    claim_keys_added: list[str] = field(default_factory=list)
    claim_keys_released: bool = False

    def add_task(self, task: Task) -> None:
        self.tasks.append(task)
        self.new_tasks.append(task)

    def touch(self, task: Task) -> None:
        if task not in self.new_tasks:
            self.touched_tasks[task.id] = task

    def add_decision(self, decision: Decision) -> None:
        self.decisions.append(decision)
        self.new_decisions.append(decision)

    def add_document(self, doc: Document) -> None:
        self.documents.append(doc)
        self.new_documents.append(doc)

    def open_tasks(self) -> list[Task]:
        return [t for t in self.tasks if t.status is TaskStatus.OPEN]

    def task(self, task_id: str) -> Task | None:
        return next((t for t in self.tasks if t.id == task_id), None)


@dataclass
class Complaint:
    id: str
    case_id: str
    kind: str  # feedback | complaint
    filed_by: str
    filed_at: datetime
    handling_unit_id: str  # the inspection committee (UBKT) of the level above the decider
    text: str
    status: str = "open"
    resolution: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
