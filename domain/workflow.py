"""The schema of one welfare policy's workflow definition, and its whole-graph validation.

A definition is data: typed form fields, subtypes with amount rules and required documents,
named rules with typed parameters (never code), steps, routing and SLAs. `validate_definition`
returns every problem at once, each with its path, so an author fixes a file in one pass.
"""

import re
from collections.abc import Iterator, Mapping
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.errors import Problem
from domain.roles import OrgLevel, Role
from domain.workcalendar import Duration

OUTCOMES = ("paid", "rejected", "withdrawn")
"""Terminal outcomes every `next` may name besides a step id."""

Stage = Literal["intake", "screening", "approval", "payment"]
STAGES: tuple[Stage, ...] = ("intake", "screening", "approval", "payment")

_CODE = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Localized(_Strict):
    """A text in Vietnamese (shown by default) and English."""

    vi: str = Field(min_length=1)
    en: str = Field(min_length=1)


class FieldType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    MONEY = "money"
    DATE = "date"
    BOOLEAN = "boolean"
    CHOICE = "choice"


class FormField(_Strict):
    """One policy-specific field of the case form."""

    type: FieldType
    title: Localized
    required: bool = False
    choices: list[str] | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = Field(default=200, ge=1, le=2000)
    sensitive: bool = Field(
        default=False,
        description="Health or other sensitive data: never written to the audit log or logs.",
    )

    @model_validator(mode="after")
    def _choices_match_type(self) -> "FormField":
        if self.type is FieldType.CHOICE and not self.choices:
            raise ValueError("a choice field needs `choices`")
        if self.type is not FieldType.CHOICE and self.choices:
            raise ValueError("`choices` only fits a choice field")
        return self


class TopUp(_Strict):
    """An amount added when a boolean form field is true (e.g. Tết in a disaster area)."""

    field: str
    amount: int = Field(gt=0)


class AmountRule(_Strict):
    """How much a subtype grants, in whole đồng. Exactly one shape: fixed, range or per unit."""

    fixed: int | None = Field(default=None, gt=0)
    minimum: int | None = Field(default=None, gt=0)
    maximum: int | None = Field(default=None, gt=0)
    per_unit: int | None = Field(default=None, gt=0)
    units_field: str | None = None
    max_units: int | None = Field(default=None, gt=0)
    topups: list[TopUp] = Field(default_factory=list)
    difference_from_prior: bool = Field(
        default=False,
        description="Grant only the difference above what the member already got in the "
        "same campaign (one-time-per-policy with top-up to a higher level).",
    )

    @model_validator(mode="after")
    def _one_shape(self) -> "AmountRule":
        shapes = [
            self.fixed is not None,
            self.minimum is not None or self.maximum is not None,
            self.per_unit is not None,
        ]
        if sum(shapes) != 1:
            raise ValueError("give exactly one of `fixed`, `minimum`+`maximum`, `per_unit`")
        if shapes[1] and (self.minimum is None or self.maximum is None):
            raise ValueError("a range needs both `minimum` and `maximum`")
        if (
            shapes[1]
            and self.minimum is not None
            and self.maximum is not None
            and self.minimum > self.maximum
        ):
            raise ValueError("`minimum` is above `maximum`")
        if shapes[2] and (self.units_field is None or self.max_units is None):
            raise ValueError("`per_unit` needs `units_field` and `max_units`")
        return self

    @property
    def ceiling(self) -> int:
        """The most one case of this subtype can be granted."""
        base = self.fixed or self.maximum or (self.per_unit or 0) * (self.max_units or 0)
        return base + sum(t.amount for t in self.topups)


class Funding(_Strict):
    """Which unit's budget pays, and from which fund."""

    level: OrgLevel
    fund: str = Field(pattern=_CODE)


class Subtype(_Strict):
    title: Localized
    amount: AmountRule
    documents: list[str] = Field(default_factory=list)
    funding: Funding | None = None


class DocumentKind(_Strict):
    title: Localized
    sensitive: bool = False


class RuleUse(_Strict):
    """A registered rule applied to this policy, with its typed parameters."""

    rule: str
    params: dict[str, Any] = Field(default_factory=dict, alias="with")
    on_fail: Literal["refuse", "flag"] | None = None
    stages: list[Stage] | None = None
    subtypes: list[str] | None = Field(
        default=None, description="Apply only to cases of these subtypes (default: all)."
    )


class Condition(_Strict):
    rule: str
    params: dict[str, Any] = Field(default_factory=dict, alias="with")


class Branch(_Strict):
    when: Condition = Field(alias="if")
    then: str


class Target(_Strict):
    """A role at a level relative to the case's grassroots unit."""

    role: Role
    level: OrgLevel


class CampaignSpec(_Strict):
    """Cases of this policy belong to a declared campaign or event (Tết, disaster, job loss)."""

    kind: Literal["campaign", "event"]
    title: Localized


def _duration(value: str) -> str:
    Duration.parse(value)  # raises ValueError with the accepted forms
    return value


DurationText = Annotated[str, Field(description="<n>wd working days, <n>d days, <n>h hours")]


class _HumanStep(_Strict):
    title: Localized
    sla: DurationText

    _check_sla = field_validator("sla")(_duration)


class ApprovalNext(_Strict):
    approved: str
    rejected: str = "rejected"
    returned: str | None = None


class ApprovalStep(_HumanStep):
    """A human decision by a role at a level: approve (maybe lower), reject, return for info."""

    type: Literal["approval"]
    role: Role
    level: OrgLevel
    escalate_to: Target
    approvals_needed: int = Field(default=1, ge=1, le=9)
    committee: bool = Field(
        default=False,
        description="Each member votes; at `approvals_needed` votes the majority decides, "
        "a tie rejects. Without it, `approvals_needed` distinct approvals are needed.",
    )
    allow_lower: bool = True
    forbid_own_unit: bool = Field(
        default=False,
        description="The actor's home grassroots unit must differ from the case's unit.",
    )
    next: ApprovalNext


class MemberInputStep(_HumanStep):
    """Waiting for the submitter to provide information; the approver's SLA clock is paused."""

    type: Literal["member_input"]
    expire_after: DurationText | None = Field(
        default=None, description="Withdraw the case when no answer comes within this time."
    )

    _check_expiry = field_validator("expire_after")(
        lambda v: _duration(v) if v is not None else None
    )


class AutomaticStep(_Strict):
    """Screening: the checks that need history or cross-case data, and the amount."""

    type: Literal["automatic"]
    title: Localized
    next: str


class DecisionStep(_Strict):
    """Routing by registered conditions (amount tiers, flags); the first true branch wins."""

    type: Literal["decision"]
    title: Localized
    branches: list[Branch] = Field(min_length=1)
    otherwise: str = Field(alias="else")


class PaymentStep(_HumanStep):
    """A treasurer pays the approved amount, in tranches of the given percentages."""

    type: Literal["payment"]
    role: Role = Role.TREASURER
    level: OrgLevel
    escalate_to: Target
    tranches: list[int] = Field(default_factory=lambda: [100])

    @field_validator("tranches")
    @classmethod
    def _sum_to_hundred(cls, v: list[int]) -> list[int]:
        if not v or any(p <= 0 for p in v) or sum(v) != 100:
            raise ValueError("tranches are positive percentages adding up to 100")
        return v


Step = Annotated[
    ApprovalStep | MemberInputStep | AutomaticStep | DecisionStep | PaymentStep,
    Field(discriminator="type"),
]


class Definition(_Strict):
    """One welfare policy, one version. A case keeps (policy, version) for its whole life."""

    schema_version: Literal[1] = Field(alias="schema")
    policy: str = Field(pattern=_CODE)
    version: int = Field(ge=1)
    title: Localized
    description: Localized | None = None
    legal_basis: list[str] = Field(default_factory=list)
    effective_from: date | None = None
    campaign: CampaignSpec | None = None
    funding: Funding
    form: dict[str, FormField] = Field(default_factory=dict)
    documents: dict[str, DocumentKind] = Field(default_factory=dict)
    documents_due: Stage = Field(
        default="intake",
        description="The first stage at which the required documents must all be present.",
    )
    subtypes: dict[str, Subtype] = Field(min_length=1)
    eligibility: list[RuleUse] = Field(default_factory=list)
    limits: list[RuleUse] = Field(default_factory=list)
    checks: list[RuleUse] = Field(default_factory=list)
    start: str
    steps: dict[str, Step] = Field(min_length=1)

    def rule_uses(self) -> Iterator[tuple[str, int, RuleUse]]:
        """Every rule use with the section and index it came from."""
        for section in ("eligibility", "limits", "checks"):
            for i, use in enumerate(getattr(self, section)):
                yield section, i, use

    def funding_for(self, subtype: str) -> Funding:
        return self.subtypes[subtype].funding or self.funding


def _targets(step: object) -> Iterator[tuple[str, str]]:
    """(path suffix, target) for every transition leaving a step."""
    if isinstance(step, ApprovalStep):
        yield "next.approved", step.next.approved
        yield "next.rejected", step.next.rejected
        if step.next.returned is not None:
            yield "next.returned", step.next.returned
    elif isinstance(step, AutomaticStep):
        yield "next", step.next
    elif isinstance(step, DecisionStep):
        for i, b in enumerate(step.branches):
            yield f"branches[{i}].then", b.then
        yield "else", step.otherwise
    elif isinstance(step, PaymentStep):
        yield "(paid)", "paid"
    elif isinstance(step, MemberInputStep):
        yield "(expiry)", "withdrawn"


def successors(defn: Definition, step_id: str) -> list[str]:
    return [t for _, t in _targets(defn.steps[step_id])]


def validate_definition(
    raw: Mapping[str, Any], source: str
) -> tuple[Definition | None, list[Problem]]:
    """Parse and check one definition; returns it (if the schema passed) and every problem."""
    # Imported here, not at module top, because the rules package imports this module's types.
    from domain.rules.registry import CONDITIONS, RULES

    problems: list[Problem] = []
    try:
        defn = Definition.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"])
            problems.append(Problem(f"{source}: {path}", err["msg"]))
        return None, problems

    def problem(path: str, msg: str) -> None:
        problems.append(Problem(f"{source}: {path}", msg))

    # Documents and form fields referenced by subtypes and amount rules must exist.
    for code, sub in defn.subtypes.items():
        if not re.match(_CODE, code):
            problem(f"subtypes.{code}", "subtype codes are snake_case")
        for i, kind in enumerate(sub.documents):
            if kind not in defn.documents:
                problem(f"subtypes.{code}.documents[{i}]", f"unknown document kind '{kind}'")
        amt = sub.amount
        if amt.units_field is not None:
            f = defn.form.get(amt.units_field)
            if f is None or f.type is not FieldType.INTEGER:
                problem(
                    f"subtypes.{code}.amount.units_field",
                    f"'{amt.units_field}' is not an integer field",
                )
        for i, t in enumerate(amt.topups):
            f = defn.form.get(t.field)
            if f is None or f.type is not FieldType.BOOLEAN:
                problem(
                    f"subtypes.{code}.amount.topups[{i}].field",
                    f"'{t.field}' is not a boolean field",
                )
        if amt.difference_from_prior and defn.campaign is None:
            problem(f"subtypes.{code}.amount.difference_from_prior", "needs a campaign policy")

    # Rules: registered, parameters valid, stages allowed, subtypes known.
    for section, i, use in defn.rule_uses():
        path = f"{section}[{i}]"
        spec = RULES.get(use.rule)
        if spec is None:
            problem(
                f"{path}.rule", f"unknown rule '{use.rule}' (known: {', '.join(sorted(RULES))})"
            )
            continue
        try:
            spec.params_model.model_validate(use.params)
        except ValidationError as exc:
            for err in exc.errors():
                sub_path = ".".join(str(p) for p in err["loc"])
                problem(f"{path}.with.{sub_path}", err["msg"])
        for stage in use.stages or ():
            if stage not in spec.stages:
                problem(f"{path}.stages", f"rule '{use.rule}' cannot run at stage '{stage}'")
        for sub_code in use.subtypes or ():
            if sub_code not in defn.subtypes:
                problem(f"{path}.subtypes", f"unknown subtype '{sub_code}'")
        if spec.needs_campaign and defn.campaign is None:
            problem(f"{path}.rule", f"rule '{use.rule}' needs a campaign policy")
        problems.extend(Problem(f"{source}: {path}.with", m) for m in spec.check_against(defn, use))

    # Graph: targets exist, everything reachable, every step can reach an outcome.
    if defn.start not in defn.steps:
        problem("start", f"unknown step '{defn.start}'")
    for step_id, step in defn.steps.items():
        if step_id in OUTCOMES:
            problem(f"steps.{step_id}", "a step may not be named like an outcome")
        for suffix, target in _targets(step):
            if target not in defn.steps and target not in OUTCOMES:
                problem(f"steps.{step_id}.{suffix}", f"unknown step '{target}'")
            if target == "paid" and not isinstance(step, PaymentStep):
                problem(f"steps.{step_id}.{suffix}", "only a payment step may lead to 'paid'")
        if isinstance(step, ApprovalStep) and step.next.returned is not None:
            ret = defn.steps.get(step.next.returned)
            if ret is not None and not isinstance(ret, MemberInputStep):
                problem(f"steps.{step_id}.next.returned", "must name a member_input step")
        if isinstance(step, DecisionStep):
            for j, b in enumerate(step.branches):
                cond = CONDITIONS.get(b.when.rule)
                if cond is None:
                    problem(
                        f"steps.{step_id}.branches[{j}].if.rule",
                        f"unknown condition '{b.when.rule}' (known: {', '.join(sorted(CONDITIONS))})",
                    )
                    continue
                try:
                    cond.params_model.model_validate(b.when.params)
                except ValidationError as exc:
                    for err in exc.errors():
                        sub_path = ".".join(str(p) for p in err["loc"])
                        problem(f"steps.{step_id}.branches[{j}].if.with.{sub_path}", err["msg"])
        if isinstance(step, PaymentStep) and step.role is not Role.TREASURER:
            problem(f"steps.{step_id}.role", "payments are recorded by the treasurer role")
        if isinstance(step, ApprovalStep) and step.role in (
            Role.TREASURER,
            Role.MEMBER,
            Role.AUDITOR,
        ):
            problem(f"steps.{step_id}.role", f"role '{step.role}' cannot approve")

    if defn.start in defn.steps:
        reachable = _reach(defn, [defn.start])
        for step_id in defn.steps:
            if step_id not in reachable:
                problem(f"steps.{step_id}", "unreachable from `start`")
        # A dead end is a step from which no outcome can be reached.
        for step_id in defn.steps:
            if not (_reach(defn, [step_id]) & set(OUTCOMES)):
                problem(f"steps.{step_id}", "dead end: no path to an outcome")
        if not any(isinstance(s, PaymentStep) for s in defn.steps.values()):
            problem("steps", "no payment step: an approved case could never be paid")
        if not isinstance(defn.steps.get(defn.start), AutomaticStep):
            problem("start", "the first step must be the automatic screening step")
    return (defn if not problems else None), problems


def _reach(defn: Definition, frontier: list[str]) -> set[str]:
    seen: set[str] = set()
    while frontier:
        node = frontier.pop()
        if node in seen:
            continue
        seen.add(node)
        if node in defn.steps:
            step = defn.steps[node]
            frontier.extend(t for _, t in _targets(step))
            if isinstance(step, MemberInputStep):
                # "provided" goes back to whichever approval step returned the case.
                frontier.extend(
                    sid
                    for sid, s in defn.steps.items()
                    if isinstance(s, ApprovalStep) and s.next.returned == node
                )
    return seen


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors use (`# yaml-language-server: $schema=./_schema.json`)."""
    schema = Definition.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "union-welfare policy definition"
    return schema
