"""What a rule may look at: a frozen snapshot the service layer gathers before a command.

Rules are pure functions of these facts, so the same checks run identically at intake, in
screening, before each approval and before payment, and are testable without a database.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from domain.workflow import Stage

LIVE_STATUSES = frozenset({"screening", "in_review", "awaiting_info", "approved", "paid"})
"""Cases that count towards caps and duplicates: everything but rejected and withdrawn."""


@dataclass(frozen=True)
class MembershipPeriod:
    unit_id: str
    joined_on: date
    left_on: date | None = None

    def covers(self, day: date) -> bool:
        return self.joined_on <= day and (self.left_on is None or day <= self.left_on)


@dataclass(frozen=True)
class MemberFacts:
    id: str
    cccd: str
    dob: date
    sex: str
    name_key: str
    household_key: str
    commune_code: str | None
    memberships: tuple[MembershipPeriod, ...]

    def active_on(self, day: date, unit_id: str | None = None) -> bool:
        """A member on `day` — at `unit_id` if one is given."""
        return any(p.covers(day) and unit_id in (None, p.unit_id) for p in self.memberships)

    def tenure_days(self, until: date) -> int:
        """Days of membership up to `until`, summing every period (re-joining counts)."""
        total = 0
        for p in self.memberships:
            end = min(p.left_on or until, until)
            if end >= p.joined_on:
                total += (end - p.joined_on).days + 1
        return total

    def first_joined(self) -> date | None:
        return min((p.joined_on for p in self.memberships), default=None)


@dataclass(frozen=True)
class PriorCase:
    """Another live case of the same member or household."""

    id: str
    policy: str
    subtype: str
    status: str
    amount: int
    event_date: date
    campaign_id: str | None
    member_id: str
    household_key: str


@dataclass(frozen=True)
class CampaignFacts:
    id: str
    policy: str
    code: str
    opens_on: date
    closes_on: date
    event_from: date
    event_to: date
    affected_communes: frozenset[str] = frozenset()
    dues_cutoff: date | None = None
    quotas: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseFacts:
    id: str
    policy: str
    subtype: str
    event_date: date
    submitted_on: date
    form: Mapping[str, object]
    amount: int
    flags: frozenset[str]
    unit_id: str
    unit_commune: str | None
    campaign_id: str | None
    documents: tuple[tuple[str, str], ...]  # (kind, sha256)


@dataclass(frozen=True)
class ActorFacts:
    """Who is acting, in which function on this case (e.g. 'submit', 'step:upper_review', 'pay')."""

    account_id: str
    person_key: str
    member_id: str | None
    home_unit_id: str | None
    household_key: str | None
    function: str


@dataclass(frozen=True)
class Facts:
    stage: Stage
    now: datetime
    today: date
    case: CaseFacts
    member: MemberFacts
    history: tuple[PriorCase, ...] = ()
    campaign: CampaignFacts | None = None
    taken_claim_keys: Mapping[str, str] = field(default_factory=dict)
    reused_documents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    duplicate_persons: int = 0
    actor: ActorFacts | None = None
    functions: Mapping[str, str] = field(default_factory=dict)
    approvers_of_task: frozenset[str] = frozenset()
    forbid_own_unit: bool = False
    budget_available: int | None = None
    quota_used: int | None = None
