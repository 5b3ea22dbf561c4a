"""Command inputs of the service layer: validated, frozen, ids and values only."""

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_AMOUNT = 100_000_000_000
"""100 billion đồng: far above any support, far below BIGINT; bigger numbers are typos or attacks."""


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DocumentIn(_Command):
    kind: str = Field(max_length=60)
    filename: str = Field(min_length=1, max_length=255)
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    size: int = Field(ge=0, le=200_000_000)
    content_type: str = Field(default="application/pdf", max_length=100)

    def as_tuple(self) -> tuple[str, str, str, int, str]:
        return (self.kind, self.filename, self.sha256, self.size, self.content_type)


class CaseItem(_Command):
    """One member's request inside a submission (single or list)."""

    member_id: str
    subtype: str
    event_date: date
    form: dict[str, Any] = Field(default_factory=dict)
    requested_amount: int | None = Field(default=None, gt=0, le=MAX_AMOUNT)
    documents: list[DocumentIn] = Field(default_factory=list, max_length=50)


class AttachDocuments(_Command):
    case_id: str
    documents: list[DocumentIn] = Field(min_length=1, max_length=50)


class SubmitCase(CaseItem):
    policy: str
    unit_id: str
    campaign_id: str | None = None


class SubmitList(_Command):
    policy: str
    unit_id: str
    campaign_id: str | None = None
    items: list[CaseItem] = Field(min_length=1, max_length=20_000)


class Decide(_Command):
    task_id: str
    action: Literal["approve", "reject", "return"]
    amount: int | None = Field(default=None, gt=0, le=MAX_AMOUNT)
    reason: str | None = Field(default=None, max_length=2000)


class ProvideInformation(_Command):
    case_id: str
    form: dict[str, Any] = Field(default_factory=dict)
    documents: list[DocumentIn] = Field(default_factory=list, max_length=50)
    note: str | None = Field(default=None, max_length=2000)


class RecordPayment(_Command):
    case_id: str
    amount: int = Field(gt=0, le=MAX_AMOUNT)
    method: Literal["bank_transfer", "cash"]
    reference: str = Field(min_length=1, max_length=100)


class DeclareCampaign(_Command):
    policy: str
    code: str = Field(pattern=r"^[A-Za-z0-9_.-]{3,60}$")
    title: str = Field(min_length=1, max_length=200)
    opens_on: date
    closes_on: date
    event_from: date
    event_to: date
    affected_communes: list[str] = Field(default_factory=list)
    dues_cutoff: date | None = None
    quotas: dict[str, int] = Field(default_factory=dict)


class Delegate(_Command):
    task_id: str
    to_account_id: str
    until: datetime
