"""Domain events: what happened, past tense, written to the outbox in the command's transaction.

Events carry ids and small values only — never names, CCCD or health data — because they end
up in Prefect parameters, logs and e-mail triggers.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from domain.ids import new_id

# The wire names consumers subscribe to. Kept in one place so a typo is a NameError.
CASE_SUBMITTED = "case.submitted"
CASE_SCREENED = "case.screened"
CASE_FLAGGED = "case.flagged"
CASE_INFO_REQUESTED = "case.info_requested"
CASE_INFO_PROVIDED = "case.info_provided"
CASE_APPROVED = "case.approved"
CASE_REJECTED = "case.rejected"
CASE_WITHDRAWN = "case.withdrawn"
CASE_PAYMENT_RECORDED = "case.payment_recorded"
CASE_PAID = "case.paid"
TASK_OPENED = "task.opened"
TASK_DECIDED = "task.decided"
TASK_CLAIMED = "task.claimed"
TASK_RELEASED = "task.released"
TASK_DELEGATED = "task.delegated"
TASK_REMINDER = "task.reminder"
TASK_OVERDUE = "task.overdue"
TASK_ESCALATED = "task.escalated"
COMPLAINT_FILED = "complaint.filed"
COMPLAINT_RESOLVED = "complaint.resolved"
CAMPAIGN_DECLARED = "campaign.declared"
AUDIT_VERIFICATION_FAILED = "audit.verification_failed"
REPORT_YEARLY_READY = "report.yearly_ready"
CASE_LIST_SCREENED = "case_list.screened"
"""Once per list of cases (a Tết list), when none of its cases is left in screening: what
screening made of the list, for one digest mail instead of one a case."""

LIST = "list"
"""Data key of the events of a list case's submission and screening: the list's id. Their news
is in the list's `case_list.screened` digest, so they send no mail of their own to the officer
or the approvers (auditors still hear of flags case by case)."""

JsonValue: TypeAlias = str | int | bool | list["JsonValue"] | dict[str, "JsonValue"] | None


@dataclass(frozen=True)
class Event:
    type: str
    occurred_at: datetime
    case_id: str | None = None
    data: Mapping[str, JsonValue] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
