"""The built-in checks of the anti-abuse catalogue (research/domain.md §3.4), as pure rules.

Each rule states its catalogue code, the stages it may run at, and whether a failure refuses
the command or flags the case by default; a definition may override the latter per use.
"""

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.cccd import check_cccd
from domain.money import format_vnd
from domain.rules.facts import Facts, PriorCase
from domain.rules.registry import PASS, NoParams, Verdict, fail, rule

if TYPE_CHECKING:
    from domain.workflow import Definition, RuleUse


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_WITHIN = re.compile(r"^(calendar_year|lifetime|[1-9][0-9]{0,3}[dy])$")


def _check_within(v: str) -> str:
    if not _WITHIN.match(v):
        raise ValueError("use calendar_year, lifetime, <n>d or <n>y")
    return v


def window_start(within: str, anchor: date) -> date | None:
    """First day of the counting window ending at `anchor`; None means no lower bound."""
    if within == "lifetime":
        return None
    if within == "calendar_year":
        return date(anchor.year, 1, 1)
    n = int(within[:-1])
    if within.endswith("d"):
        return anchor - timedelta(days=n - 1)
    try:
        return anchor.replace(year=anchor.year - n) + timedelta(days=1)
    except ValueError:  # 29 February
        return anchor.replace(year=anchor.year - n, day=28) + timedelta(days=1)


def _period_label(within: str) -> str:
    return within.replace("calendar_year", "năm dương lịch").replace("lifetime", "trọn đời")


# --- C1, C2: identity -----------------------------------------------------------------


@rule("cccd_plausible", code="C1", stages=("intake",), facts=())
def cccd_plausible(facts: Facts, _: BaseModel) -> Verdict:
    problems = check_cccd(facts.member.cccd, facts.member.dob, facts.member.sex)  # type: ignore[arg-type]
    return fail(problems[0]) if problems else PASS


@rule(
    "possible_duplicate_person",
    code="C2",
    stages=("intake",),
    on_fail="flag",
    facts=("duplicate_persons",),
)
def possible_duplicate_person(facts: Facts, _: BaseModel) -> Verdict:
    return fail("possible_duplicate_person") if facts.duplicate_persons else PASS


# --- C3, C7, C8: membership, tenure, filing window --------------------------------------


@rule("member_on_event_date", code="C3", facts=())
def member_on_event_date(facts: Facts, _: BaseModel) -> Verdict:
    # A member of the filing grassroots union on that day: without the unit an officer could
    # file for any member whose id they know. A member who moved is filed by the union they
    # belonged to on the event date.
    day = facts.case.event_date
    if facts.member.active_on(day, facts.case.unit_id):
        return PASS
    if facts.member.active_on(day):
        return fail("not_member_of_filing_unit", date=day.strftime("%d/%m/%Y"))
    return fail("not_member_on_event_date", date=day.strftime("%d/%m/%Y"))


@rule(
    "dues_before_cutoff",
    code="C3",
    stages=("intake", "screening"),
    needs_campaign=True,
    facts=(),
)
def dues_before_cutoff(facts: Facts, _: BaseModel) -> Verdict:
    cutoff = facts.campaign.dues_cutoff if facts.campaign else None
    if cutoff is None:
        return PASS
    joined = facts.member.first_joined()
    if joined is not None and joined <= cutoff and facts.member.active_on(cutoff):
        return PASS
    return fail("joined_after_cutoff", cutoff=cutoff.strftime("%d/%m/%Y"))


class TenureParams(_Params):
    months: int = Field(ge=1, le=600)


@rule("min_tenure", code="C7", params=TenureParams, stages=("intake", "screening"), facts=())
def min_tenure(facts: Facts, params: BaseModel) -> Verdict:
    assert isinstance(params, TenureParams)
    days = facts.member.tenure_days(facts.case.event_date)
    # A month is counted as 30 days: simple, predictable, and what members are told.
    months = days // 30
    if months >= params.months:
        return PASS
    return fail("tenure_too_short", months=months, required=params.months)


class WindowParams(_Params):
    days: int = Field(ge=1, le=3650)


@rule("filing_window", code="C8", params=WindowParams, stages=("intake",), facts=())
def filing_window(facts: Facts, params: BaseModel) -> Verdict:
    assert isinstance(params, WindowParams)
    if facts.case.event_date > facts.case.submitted_on:
        return fail("event_in_future")
    if (facts.case.submitted_on - facts.case.event_date).days > params.days:
        return fail("outside_filing_window", days=params.days)
    return PASS


@rule("campaign_window", code="C8", stages=("intake",), needs_campaign=True, facts=())
def campaign_window(facts: Facts, _: BaseModel) -> Verdict:
    c = facts.campaign
    if c is None:
        return fail("campaign_required")
    if not (c.opens_on <= facts.case.submitted_on <= c.closes_on):
        return fail("campaign_closed", campaign=c.code)
    if not (c.event_from <= facts.case.event_date <= c.event_to):
        return fail("event_outside_campaign")
    return PASS


@rule("affected_area", code="C8", stages=("intake",), needs_campaign=True, facts=())
def affected_area(facts: Facts, _: BaseModel) -> Verdict:
    c = facts.campaign
    if c is None:
        return fail("campaign_required")
    communes = {facts.member.commune_code, facts.case.unit_commune} - {None}
    return PASS if communes & c.affected_communes else fail("outside_affected_area")


# --- C6: one claim per event ------------------------------------------------------------

KeyPart = str  # "campaign" | "subtype" | "event_date" | "form:<field>"


class UniqueClaimParams(_Params):
    scope: Literal["member", "household"]
    on: list[KeyPart] = Field(min_length=1)
    label: str = Field(default="sự việc", description="What is duplicated, for the message.")

    @field_validator("on")
    @classmethod
    def _parts(cls, v: list[str]) -> list[str]:
        for part in v:
            if part not in ("campaign", "subtype", "event_date") and not part.startswith("form:"):
                raise ValueError(f"unknown key part '{part}'")
        return v


def _unique_claim_fields(defn: "Definition", use: "RuleUse") -> Iterator[str]:
    params = UniqueClaimParams.model_validate(use.params)
    for part in params.on:
        if part.startswith("form:") and part[5:] not in defn.form:
            yield f"unknown form field '{part[5:]}'"
        if part == "campaign" and defn.campaign is None:
            yield "'campaign' needs a campaign policy"


def claim_key(facts: Facts, params: UniqueClaimParams) -> str:
    """The dedup key of this case under one unique_claim use; the database keeps it unique."""
    who = facts.member.id if params.scope == "member" else facts.member.household_key
    parts = [facts.case.policy, f"{params.scope}:{who}"]
    for part in params.on:
        if part == "campaign":
            parts.append(f"campaign:{facts.case.campaign_id}")
        elif part == "subtype":
            parts.append(f"subtype:{facts.case.subtype}")
        elif part == "event_date":
            parts.append(f"event:{facts.case.event_date.isoformat()}")
        else:
            value = facts.case.form.get(part[5:])
            parts.append(f"{part}={str(value).strip().casefold()}")
    return "|".join(parts)


@rule(
    "unique_claim",
    code="C6",
    params=UniqueClaimParams,
    stages=("intake", "screening", "approval"),
    validator=_unique_claim_fields,
    facts=("taken_claim_keys",),
)
def unique_claim(facts: Facts, params: BaseModel) -> Verdict:
    assert isinstance(params, UniqueClaimParams)
    other = facts.taken_claim_keys.get(claim_key(facts, params))
    if other is not None and other != facts.case.id:
        return fail("duplicate_claim", key_kind=params.label)
    return PASS


# --- C4, C5: frequency and amount caps --------------------------------------------------


class CapScope(_Params):
    scope: Literal["member", "household"]
    within: str
    count_subtypes: list[str] | None = Field(
        default=None, description="Which prior cases count (default: every subtype)."
    )

    _w = field_validator("within")(_check_within)


def _cap_subtypes(defn: "Definition", use: "RuleUse") -> Iterator[str]:
    subtypes = use.params.get("count_subtypes") or []
    for s in subtypes:
        if s not in defn.subtypes:
            yield f"count_subtypes: unknown subtype '{s}'"


def _in_window(within: str, anchor: date, other: date) -> bool:
    """Whether two events fall in one counting window. Symmetric, so a back-dated case cannot
    slip under a cap by placing its event before the cases that already used it."""
    if within == "lifetime":
        return True
    if within == "calendar_year":
        return other.year == anchor.year
    start = window_start(within, anchor)
    assert start is not None
    span = anchor - start
    return anchor - span <= other <= anchor + span


def _counted(facts: Facts, p: CapScope) -> list[PriorCase]:
    who_member = p.scope == "member"
    out = []
    for prior in facts.history:
        if prior.id == facts.case.id or prior.policy != facts.case.policy:
            continue
        if who_member and prior.member_id != facts.member.id:
            continue
        if not who_member and prior.household_key != facts.member.household_key:
            continue
        if p.count_subtypes is not None and prior.subtype not in p.count_subtypes:
            continue
        if not _in_window(p.within, facts.case.event_date, prior.event_date):
            continue
        out.append(prior)
    return out


class FrequencyParams(CapScope):
    max_count: int = Field(ge=1, le=100)


@rule(
    "frequency_cap",
    code="C4",
    params=FrequencyParams,
    stages=("intake", "screening", "approval"),
    validator=_cap_subtypes,
    facts=("history",),
)
def frequency_cap(facts: Facts, params: BaseModel) -> Verdict:
    assert isinstance(params, FrequencyParams)
    count = len(_counted(facts, params)) + 1
    if count <= params.max_count:
        return PASS
    return fail(
        "frequency_cap",
        count=count,
        max_count=params.max_count,
        period=_period_label(params.within),
    )


class AmountCapParams(CapScope):
    max_amount: int = Field(gt=0)


@rule(
    "amount_cap",
    code="C5",
    params=AmountCapParams,
    stages=("intake", "screening", "approval"),
    validator=_cap_subtypes,
    facts=("history",),
)
def amount_cap(facts: Facts, params: BaseModel) -> Verdict:
    assert isinstance(params, AmountCapParams)
    used = sum(p.amount for p in _counted(facts, params))
    if used + facts.case.amount <= params.max_amount:
        return PASS
    return fail(
        "amount_cap",
        cap=format_vnd(params.max_amount),
        used=format_vnd(used),
        amount=format_vnd(facts.case.amount),
    )


# --- C17: documents ---------------------------------------------------------------------


@rule(
    "document_reuse",
    code="C17",
    stages=("intake", "screening", "approval"),
    on_fail="flag",
    facts=("reused_documents",),
)
def document_reuse(facts: Facts, _: BaseModel) -> Verdict:
    for _kind, sha in facts.case.documents:
        if any(other != facts.case.id for other in facts.reused_documents.get(sha, ())):
            return fail("document_reused")
    return PASS


# --- quotas (Tết) -------------------------------------------------------------------------


@rule(
    "unit_quota",
    code="C13",
    stages=("intake", "screening"),
    needs_campaign=True,
    facts=("quota_used",),
)
def unit_quota(facts: Facts, _: BaseModel) -> Verdict:
    c = facts.campaign
    if c is None:
        return fail("campaign_required")
    quota = c.quotas.get(facts.case.unit_id)
    if quota is None:
        return PASS  # no quota declared for the unit: the campaign does not limit it
    if (facts.quota_used or 0) < quota:
        return PASS
    return fail("quota_exhausted", quota=quota)


# --- always-on checks: the engine runs these on every path; definitions cannot drop them ---


@rule("separation_of_duties", code="C10", params=NoParams, stages=("approval", "payment"), facts=())
def separation_of_duties(facts: Facts, _: BaseModel) -> Verdict:
    actor = facts.actor
    if actor is None:
        return PASS
    if actor.member_id is not None and actor.member_id == facts.member.id:
        return fail("actor_is_beneficiary")
    if actor.household_key is not None and actor.household_key == facts.member.household_key:
        return fail("actor_is_beneficiary")
    held = facts.functions.get(actor.person_key)
    if held is not None and held != actor.function:
        return fail("acts_twice")
    if actor.person_key in facts.approvers_of_task:
        return fail("same_approver_twice")
    if facts.forbid_own_unit and actor.home_unit_id == facts.case.unit_id:
        return fail("own_unit")
    return PASS
