"""Request and response bodies of the case, task and payment endpoints, documented with examples.

Inputs are bounded everywhere (lengths, amounts, dates, list sizes) and refuse control
characters, so nothing a client sends can overflow a column or reach the database malformed.
Money is whole đồng; instants are ISO 8601 UTC (`Z`).
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from domain.money import format_vnd
from domain.service.commands import MAX_AMOUNT


def _printable(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
"""Ids and codes of org units, accounts, cases, tasks: what every id field and path accepts."""

Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN),
]
IdQuery = Query(max_length=64, pattern=ID_PATTERN)

Code = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")]
Text = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_printable)]
Amount = Annotated[int, Field(gt=0, le=MAX_AMOUNT, description="Whole đồng.")]
EventDate = Annotated[date, Field(ge=date(1900, 1, 1), le=date(2100, 12, 31))]

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
CASE_ID = "0192f7a0-5c1e-7d2a-9b1f-3c4d5e6f7a8b"
TASK_ID = "0192f7a0-61aa-7b3c-8d4e-5f6a7b8c9d0e"


# Examples shown in /docs, shared by the models that embed a case summary or a task.
TASK_EXAMPLE: dict[str, Any] = {
    "id": "0192f7a0-dddd-7000-8000-000000000020",
    "step": "grassroots_review",
    "kind": "approval",
    "role": "grassroots_chair",
    "org_unit_id": "LC-TANPHONG-CS1",
    "status": "open",
    "opened_at": "2026-11-24T08:06:51Z",
    "due_at": "2026-12-01T17:00:00Z",
    "overdue": False,
    "escalation": "none",
    "assignee_id": None,
    "delegated_by": None,
    "delegated_until": None,
    "approvals_needed": 1,
    "committee": False,
    "closed_at": None,
    "outcome": None,
    "tranche": None,
}
CASE_SUMMARY_EXAMPLE: dict[str, Any] = {
    "id": "0192f7a0-cccc-7000-8000-000000000010",
    "policy": "illness",
    "policy_version": 1,
    "subtype": "hospital",
    "status": "approved",
    "current_step": "payment_grassroots",
    "unit_id": "LC-TANPHONG-CS1",
    "campaign_id": None,
    "batch_id": None,
    "member_id": "0192f7a0-0000-7000-8000-000000000001",
    "member_name": "Nguyễn Mạnh Đông",
    "member_cccd": "••••••••1128",
    "entitled_amount": 1000000,
    "approved_amount": 1000000,
    "paid_amount": 0,
    "amount": 1000000,
    "amount_display": "1.000.000 ₫",
    "flags": [],
    "submitted_at": "2026-11-24T08:06:50Z",
    "event_date": "2026-11-19",
    "closed_at": None,
    "outcome_reason": None,
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DocumentIn(_In):
    """Metadata of one document kept by the union (the file itself stays with the unit)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "medical_record",
                    "filename": "benh-an.pdf",
                    "sha256": SHA,
                    "size": 182044,
                    "content_type": "application/pdf",
                }
            ]
        },
    )
    kind: Code = Field(description="A document kind of the policy (see /api/v1/policies/{code}).")
    filename: Annotated[
        str, StringConstraints(min_length=1, max_length=255), AfterValidator(_printable)
    ] = Field(description="File name as kept by the unit.")
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 of the file, hex.")
    size: int = Field(ge=0, le=200_000_000, description="Size in bytes.")
    content_type: Annotated[str, StringConstraints(max_length=100), AfterValidator(_printable)] = (
        Field(default="application/pdf", description="MIME type.")
    )


class CaseItemIn(_In):
    """One member's request (inside a list, or the body of a single submission)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member_id": "0192f7a0-0000-7000-8000-000000000001",
                    "subtype": "standard",
                    "event_date": "2026-01-20",
                    "form": {"criterion": "low_income"},
                    "documents": [
                        {
                            "kind": "signed_list",
                            "filename": "danh_sach_niem_yet.pdf",
                            "sha256": "9f2c000000000000000000000000000000000000000000000000000000000000",
                            "size": 350000,
                        }
                    ],
                }
            ]
        }
    )
    member_id: Id = Field(description="The member the case is for.")
    subtype: Code = Field(description="A subtype of the policy.", examples=["serious_illness"])
    event_date: EventDate = Field(description="Date of the event (illness, disaster, …).")
    form: dict[Annotated[str, StringConstraints(max_length=60)], Any] = Field(
        default_factory=dict,
        max_length=60,
        description="The policy's case form (field names and types: /api/v1/policies/{code}).",
    )
    requested_amount: Amount | None = Field(
        default=None, description="Only for subtypes with an amount range (đồng)."
    )
    documents: list[DocumentIn] = Field(default_factory=list, max_length=50)


class CaseIn(CaseItemIn):
    """A support request for one member, filed by an officer of the member's grassroots union."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "policy": "illness",
                    "unit_id": "CS-A",
                    "member_id": "0192f7a0-0000-7000-8000-000000000001",
                    "subtype": "serious_illness",
                    "event_date": "2026-02-20",
                    "form": {"diagnosis": "…", "hospital": "Bệnh viện Đa khoa tỉnh Lai Châu"},
                    "documents": [
                        {
                            "kind": "medical_record",
                            "filename": "benh-an.pdf",
                            "sha256": SHA,
                            "size": 182044,
                        }
                    ],
                }
            ]
        },
    )
    policy: Code = Field(description="Policy code.", examples=["illness"])
    unit_id: Id = Field(description="The grassroots union filing the case.", examples=["CS-A"])
    campaign_id: Id | None = Field(default=None, description="Campaign (Tết, disaster, job loss).")


class CaseListIn(_In):
    """A campaign list: every member screened on their own, in one request."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "policy": "tet",
                    "unit_id": "CS-A",
                    "campaign_id": "0192f7a0-aaaa-7000-8000-000000000002",
                    "items": [
                        {
                            "member_id": "0192f7a0-0000-7000-8000-000000000001",
                            "subtype": "standard",
                            "event_date": "2026-01-20",
                        }
                    ],
                }
            ]
        },
    )
    policy: Code = Field(description="Policy code.", examples=["tet"])
    unit_id: Id = Field(description="The grassroots union filing the list.")
    campaign_id: Id | None = Field(default=None, description="The campaign the list is for.")
    items: list[CaseItemIn] = Field(
        min_length=1,
        max_length=10_000,
        description="The members, each screened on their own (at most 10,000: a province's "
        "largest grassroots union files its whole Tết list in one request).",
    )


class InformationIn(_In):
    """The answer to a return for information: changed form fields and/or documents."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"form": {"hospital_days": 12}, "note": "Bổ sung giấy ra viện"}]
        },
    )
    form: dict[Annotated[str, StringConstraints(max_length=60)], Any] = Field(
        default_factory=dict, max_length=60
    )
    documents: list[DocumentIn] = Field(default_factory=list, max_length=50)
    note: Text | None = Field(default=None, description="Free text (kept out of the audit log).")


class DocumentsIn(_In):
    """Document metadata and hashes to attach to an open case."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "documents": [
                        {"kind": "photos", "filename": "anh-nha.jpg", "sha256": SHA, "size": 88211}
                    ]
                }
            ]
        },
    )
    documents: list[DocumentIn] = Field(min_length=1, max_length=50)


class WithdrawalIn(_In):
    """Why the case is withdrawn."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "Đoàn viên xin rút hồ sơ"}]}
    )
    reason: Text | None = Field(default=None, description="Why (kept out of the audit log).")


class DecisionIn(_In):
    """An approver's decision on a task. Committee steps record it as a vote."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"action": "approve"},
                {"action": "approve_lower", "amount": 1000000, "reason": "Theo mức quỹ còn lại"},
                {"action": "reject", "reason": "Không đủ điều kiện"},
                {"action": "return", "reason": "Bổ sung giấy ra viện"},
            ]
        },
    )
    action: Literal["approve", "approve_lower", "reject", "return"] = Field(
        description="approve | approve_lower (needs `amount`) | reject | return (both need `reason`)."
    )
    amount: Amount | None = Field(default=None, description="approve_lower: the lower amount.")
    reason: Text | None = Field(default=None, description="Required to reject or return.")


class DelegationIn(_In):
    """Hand a task to another officer until a given time."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "to_account_id": "0192f7a0-1111-7000-8000-000000000003",
                    "until": "2026-03-09T10:00:00Z",
                }
            ]
        },
    )
    to_account_id: Id = Field(description="Who acts on the task meanwhile.")
    until: AwareDatetime = Field(description="End of the delegation (at most 30 days ahead).")


class PaymentIn(_In):
    """A payment (or a tranche of it) made for an approved case."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"amount": 1300000, "method": "bank_transfer", "reference": "UNC-2026-0042"}
            ]
        },
    )
    amount: Amount = Field(description="The amount of the tranche due (see /payments/pending).")
    method: Literal["bank_transfer", "cash"]
    reference: Annotated[
        str, StringConstraints(min_length=1, max_length=100), AfterValidator(_printable)
    ] = Field(description="Bank transfer or receipt reference.")


# --- responses ------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CheckOut(BaseModel):
    """One anti-abuse or eligibility check, as recorded in the entry it guarded."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"rule": "frequency_cap", "code": "C4", "outcome": "passed", "reason": "ok"},
                {
                    "rule": "documents_complete",
                    "code": "DOC",
                    "outcome": "failed",
                    "reason": "documents_missing",
                    "params": {"kinds": "signed_list"},
                },
            ]
        }
    )
    rule: str = Field(description="Registered rule name.", examples=["frequency_cap"])
    code: str = Field(
        description="Catalogue code (C1…C18, DOC, BUDGET) or a short tag.", examples=["C4"]
    )
    outcome: str = Field(description="passed | flagged | failed.", examples=["passed"])
    reason: str = Field(description="Reason code (see the i18n messages).", examples=["ok"])
    params: dict[str, Any] = Field(default_factory=dict, description="The reason's parameters.")


class SubmittedOut(_Out):
    """The answer to a submission: the new case, its status and every check's result."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "case_id": CASE_ID,
                    "status": "in_review",
                    "amount": 1300000,
                    "amount_display": "1.300.000 ₫",
                    "flags": [],
                    "checks": [
                        {
                            "rule": "member_on_event_date",
                            "code": "C3",
                            "outcome": "passed",
                            "reason": "ok",
                            "params": {},
                        }
                    ],
                    "open_task_ids": ["0192f7a0-0000-7000-8000-0000000000aa"],
                }
            ]
        },
    )
    case_id: str = Field(description="The new case.")
    status: str = Field(description="screening | in_review | …")
    amount: int = Field(description="Entitled amount, đồng.")
    amount_display: str = Field(description="The amount as people read it.")
    flags: list[str] = Field(description="Soft-check flags (the case needs one more approver).")
    checks: list[CheckOut] = Field(description="Every check's result at intake.")
    open_task_ids: list[str] = Field(
        description="The approval tasks the submission opened (none while the case is still "
        "in screening): what the first approver acts on."
    )


class ListItemOut(BaseModel):
    """The outcome for one member of a list: accepted, flagged (with flags) or refused (with the rule)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "index": 3,
                    "member_id": "0192f7a0-0000-7000-8000-000000000001",
                    "outcome": "refused",
                    "case_id": None,
                    "flags": [],
                    "code": "quota_exhausted",
                    "rule": "unit_quota",
                    "field": None,
                    "reason": "Đơn vị đã dùng hết chỉ tiêu 3 suất",
                    "checks": [],
                }
            ]
        }
    )
    index: int = Field(description="Position in the submitted list (0-based).")
    member_id: str
    outcome: Literal["accepted", "flagged", "refused"]
    case_id: str | None = Field(default=None, description="The new case (accepted or flagged).")
    flags: list[str] = Field(default_factory=list)
    code: str | None = Field(default=None, description="Refused: the reason code.")
    rule: str | None = Field(default=None, description="Refused: the rule at fault.")
    field: str | None = Field(default=None, description="Refused: the field at fault.")
    reason: str | None = Field(default=None, description="Refused: why, in the caller's language.")
    checks: list[CheckOut] = Field(default_factory=list)


class ListOut(BaseModel):
    """The outcome of a campaign list: counts, and one item per member in the order sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 1,
                    "flagged": 0,
                    "refused": 1,
                    "items": [
                        {
                            "index": 0,
                            "member_id": "m1",
                            "outcome": "accepted",
                            "case_id": CASE_ID,
                            "flags": [],
                        },
                        {
                            "index": 1,
                            "member_id": "m2",
                            "outcome": "refused",
                            "code": "not_member_on_event_date",
                            "rule": "member_on_event_date",
                            "reason": "Không phải đoàn viên vào ngày 20/01/2026",
                        },
                    ],
                }
            ]
        }
    )
    accepted: int
    flagged: int
    refused: int
    items: list[ListItemOut]


class CaseSummaryOut(_Out):
    """A case as listed: status, amounts and flags; CCCD masked, no health data."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": CASE_ID,
                    "policy": "illness",
                    "policy_version": 1,
                    "subtype": "serious_illness",
                    "status": "in_review",
                    "current_step": "grassroots_review",
                    "unit_id": "CS-A",
                    "campaign_id": None,
                    "batch_id": None,
                    "member_id": "0192f7a0-0000-7000-8000-000000000001",
                    "member_name": "Giàng A Pếnh",
                    "member_cccd": "••••••••0042",
                    "entitled_amount": 3000000,
                    "approved_amount": None,
                    "paid_amount": 0,
                    "amount": 3000000,
                    "amount_display": "3.000.000 ₫",
                    "flags": [],
                    "submitted_at": "2026-03-02T02:00:00Z",
                    "event_date": "2026-02-20",
                    "closed_at": None,
                    "outcome_reason": None,
                }
            ]
        },
    )
    id: str
    policy: str
    policy_version: int = Field(description="The definition version the case was filed under.")
    subtype: str
    status: str = Field(
        description="screening | in_review | awaiting_info | approved | paid | rejected | withdrawn"
    )
    current_step: str
    unit_id: str = Field(description="The filing grassroots union.")
    campaign_id: str | None
    batch_id: str | None = Field(description="The list submission the case came in with.")
    member_id: str
    member_name: str
    member_cccd: str = Field(description="CCCD masked except its last 4 digits.")
    entitled_amount: int
    approved_amount: int | None
    paid_amount: int
    amount: int = Field(description="The amount at stake now (approved, else entitled).")
    amount_display: str = ""
    flags: list[str]
    submitted_at: datetime
    event_date: date
    closed_at: datetime | None
    outcome_reason: str | None

    def model_post_init(self, _context: Any) -> None:
        self.amount_display = format_vnd(self.amount)


class CasePageOut(BaseModel):
    """One page of the cases the caller may see, with the total that match the filters."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [CASE_SUMMARY_EXAMPLE], "total": 1, "next_cursor": None}]
        }
    )
    items: list[CaseSummaryOut]
    total: int = Field(description="Visible cases matching the filters.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class TaskOut(_Out):
    """A task of a case: who must act (role at a unit), by when, and whether it is overdue."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": TASK_ID,
                    "step": "grassroots_review",
                    "kind": "approval",
                    "role": "grassroots_chair",
                    "org_unit_id": "CS-A",
                    "status": "open",
                    "opened_at": "2026-03-02T02:00:00Z",
                    "due_at": "2026-03-05T02:00:00Z",
                    "overdue": False,
                    "escalation": "none",
                    "assignee_id": None,
                    "delegated_by": None,
                    "delegated_until": None,
                    "approvals_needed": 1,
                    "committee": False,
                    "closed_at": None,
                    "outcome": None,
                    "tranche": None,
                }
            ]
        },
    )
    id: str
    step: str
    kind: str = Field(description="approval | member_input | payment")
    role: str = Field(description="The role the task is routed to.")
    org_unit_id: str = Field(description="The unit the task is routed to.")
    status: str = Field(description="open | done | cancelled")
    opened_at: datetime
    due_at: datetime
    overdue: bool = Field(description="Open and past its due time.")
    escalation: str = Field(description="none | reminded | overdue | escalated")
    assignee_id: str | None
    delegated_by: str | None
    delegated_until: datetime | None
    approvals_needed: int
    committee: bool = Field(description="Each member votes; a majority decides.")
    closed_at: datetime | None
    outcome: str | None
    tranche: int | None


class DecisionOut(_Out):
    """One recorded decision (or committee vote) on a case's task."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0192f7a0-ffff-7000-8000-000000000040",
                    "task_id": "0192f7a0-dddd-7000-8000-000000000020",
                    "step": "grassroots_review",
                    "actor_id": "0192f7a0-eeee-7000-8000-000000000030",
                    "role": "grassroots_chair",
                    "org_unit_id": "LC-TANPHONG-CS1",
                    "action": "return",
                    "amount": None,
                    "reason": "Giấy ra viện chưa có dấu bệnh viện",
                    "at": "2026-11-24T08:07:29Z",
                }
            ]
        }
    )
    id: str
    task_id: str
    step: str
    actor_id: str
    role: str | None
    org_unit_id: str | None
    action: str = Field(
        description="approve | approve_lower | reject | return | vote_approve | vote_reject | pay"
    )
    amount: int | None
    reason: str | None
    at: datetime


class DocumentOut(_Out):
    """A document's metadata and SHA-256; redacted for callers who may not see health data."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0192f7a0-aaaa-7000-8000-000000000050",
                    "kind": "discharge_paper",
                    "sensitive": True,
                    "redacted": False,
                    "filename": "giay_ra_vien.pdf",
                    "sha256": "9f2c000000000000000000000000000000000000000000000000000000000000",
                    "size": 210000,
                    "content_type": "application/pdf",
                    "added_by": "0192f7a0-eeee-7000-8000-000000000030",
                    "added_at": "2026-11-24T08:06:50Z",
                }
            ]
        }
    )
    id: str
    kind: str
    sensitive: bool = Field(description="Health data.")
    redacted: bool = Field(description="Metadata hidden from this caller (health data).")
    filename: str | None
    sha256: str | None
    size: int | None
    content_type: str | None
    added_by: str
    added_at: datetime


class PaymentOut(_Out):
    """A recorded payment."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0192f7a0-bbbb-7000-8000-000000000060",
                    "tranche": 1,
                    "amount": 1000000,
                    "method": "cash",
                    "reference": "PC-2026-001",
                    "paid_by": "0192f7a0-eeee-7000-8000-000000000030",
                    "paid_at": "2026-11-24T08:07:36Z",
                }
            ]
        }
    )
    id: str
    tranche: int
    amount: int
    method: str
    reference: str
    paid_by: str
    paid_at: datetime


class CaseOut(BaseModel):
    """One case: status, amounts, form, tasks, documents, decisions and payments."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "case": CaseSummaryOut.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                    "form": {"diagnosis": None, "hospital": "Bệnh viện Đa khoa tỉnh Lai Châu"},
                    "redacted_fields": ["diagnosis"],
                    "tasks": [],
                    "decisions": [],
                    "documents": [],
                    "payments": [],
                    "submitted_by": "0192f7a0-2222-7000-8000-000000000004",
                    "reserved_amount": 0,
                }
            ]
        }
    )
    case: CaseSummaryOut
    form: dict[str, Any] = Field(description="The case form; health fields null when redacted.")
    redacted_fields: list[str] = Field(description="Form fields hidden from this caller.")
    tasks: list[TaskOut]
    decisions: list[DecisionOut]
    documents: list[DocumentOut]
    payments: list[PaymentOut]
    submitted_by: str
    reserved_amount: int = Field(description="Budget reserved for the case, đồng.")


class CaseStateOut(BaseModel):
    """A case right after a command: where it stands and what is open."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "case_id": CASE_ID,
                    "status": "approved",
                    "current_step": "payment",
                    "amount": 3000000,
                    "amount_display": "3.000.000 ₫",
                    "approved_amount": 3000000,
                    "paid_amount": 0,
                    "reserved_amount": 3000000,
                    "flags": [],
                    "open_tasks": [],
                }
            ]
        }
    )
    case_id: str
    status: str
    current_step: str
    amount: int
    amount_display: str
    approved_amount: int | None
    paid_amount: int
    reserved_amount: int
    flags: list[str]
    open_tasks: list[TaskOut]


class InboxItemOut(_Out):
    """One open task in the caller's inbox, with the case it belongs to."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task": TASK_EXAMPLE,
                    "case_id": CASE_SUMMARY_EXAMPLE["id"],
                    "policy": "illness",
                    "subtype": "hospital",
                    "case_status": "in_review",
                    "case_unit_id": "LC-TANPHONG-CS1",
                    "member_name": "Nguyễn Mạnh Đông",
                    "amount": 1000000,
                    "flags": [],
                    "assigned_to_me": False,
                }
            ]
        }
    )
    task: TaskOut
    case_id: str
    policy: str
    subtype: str
    case_status: str
    case_unit_id: str
    member_name: str
    amount: int
    flags: list[str]
    assigned_to_me: bool


class InboxOut(BaseModel):
    """The caller's open tasks, sorted by due time; `overdue` counts those past due."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "task": TaskOut.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                            "case_id": CASE_ID,
                            "policy": "illness",
                            "subtype": "serious_illness",
                            "case_status": "in_review",
                            "case_unit_id": "CS-A",
                            "member_name": "Giàng A Pếnh",
                            "amount": 3000000,
                            "flags": [],
                            "assigned_to_me": False,
                        }
                    ],
                    "count": 1,
                    "overdue": 0,
                }
            ]
        }
    )
    items: list[InboxItemOut] = Field(description="Open tasks, soonest due first.")
    count: int
    overdue: int = Field(description="How many of them are past their due time.")


class PendingPaymentOut(_Out):
    """An approved case waiting for payment, with the tranche and amount due."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "case": CASE_SUMMARY_EXAMPLE,
                    "task_id": TASK_EXAMPLE["id"],
                    "tranche": 1,
                    "tranches": 1,
                    "amount_due": 1000000,
                    "due_at": "2026-11-27T17:00:00Z",
                    "overdue": False,
                }
            ]
        }
    )
    case: CaseSummaryOut
    task_id: str
    tranche: int = Field(description="The tranche due (1-based).")
    tranches: int = Field(description="How many tranches the payment step has.")
    amount_due: int = Field(description="What to record for this tranche, đồng.")
    due_at: datetime
    overdue: bool


class PendingPaymentsOut(BaseModel):
    """Approved cases awaiting payment in the treasurer's units, with the total due."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "count": 0, "total_due": 0}]}
    )
    items: list[PendingPaymentOut]
    count: int
    total_due: int = Field(description="Sum of amount_due, đồng.")
