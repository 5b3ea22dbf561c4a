"""Checks, amounts and forms: turning a definition's rules into results for one case and stage."""

from collections.abc import Mapping
from dataclasses import replace
from datetime import date

from pydantic import BaseModel

from domain.engine.context import Ctx
from domain.errors import InvalidRequest, Problem, RuleViolation
from domain.model import CaseAggregate
from domain.rules.builtin import UniqueClaimParams, claim_key
from domain.rules.facts import ActorFacts, CaseFacts, Facts
from domain.rules.registry import CONDITIONS, GATHERED_FACTS, RULES, CheckResult, Outcome
from domain.text import nfc
from domain.workcalendar import VN_TZ
from domain.workflow import Condition, Definition, FieldType, RuleUse, Stage

_STAGE_ORDER: Mapping[str, int] = {"intake": 0, "screening": 1, "approval": 2, "payment": 3}

_PARAMS: dict[int, tuple[object, BaseModel]] = {}
"""Validated parameters per rule use or condition object, keyed by id() (the object is kept
alongside, so a recycled id can never return another use's parameters)."""


def _params(use: RuleUse | Condition, model: type[BaseModel]) -> BaseModel:
    """A use's typed parameters, validated once: definitions are frozen once loaded, and
    re-validating with pydantic on every check of every command was a measurable cost."""
    hit = _PARAMS.get(id(use))
    if hit is not None and hit[0] is use:
        return hit[1]
    params = model.model_validate(use.params)
    _PARAMS[id(use)] = (use, params)
    return params


def validate_form(
    defn: Definition, raw: Mapping[str, object], *, partial: bool = False
) -> dict[str, object]:
    """The form as stored: known fields only, typed, NFC text. Lists every problem at once."""
    problems: list[Problem] = []
    out: dict[str, object] = {}
    for name in raw:
        if name not in defn.form:
            problems.append(Problem(f"form.{name}", "unknown field"))
    for name, spec in defn.form.items():
        value = raw.get(name)
        # Whitespace-only text is empty once normalised: it must not satisfy `required`.
        if value is None or (isinstance(value, str) and not value.strip()):
            if spec.required and not partial:
                problems.append(Problem(f"form.{name}", "required"))
            continue
        try:
            out[name] = _coerce(
                spec.type, value, spec.choices, spec.minimum, spec.maximum, spec.max_length
            )
        except ValueError as exc:
            problems.append(Problem(f"form.{name}", str(exc)))
    if problems:
        raise InvalidRequest(
            "invalid_field",
            field=problems[0].location,
            params={"field": problems[0].location, "reason": problems[0].message},
            problems=problems,
        )
    return out


def _coerce(
    kind: FieldType,
    value: object,
    choices: list[str] | None,
    minimum: int | None,
    maximum: int | None,
    max_length: int,
) -> object:
    if kind in (FieldType.INTEGER, FieldType.MONEY):
        # bool is an int in Python; a checkbox value must never become 1 đồng.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        if value < 0:
            raise ValueError("must not be negative")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum}")
        return value
    if kind is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if kind is FieldType.DATE:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                raise ValueError("must be a date YYYY-MM-DD") from None
        raise ValueError("must be a date YYYY-MM-DD")
    if not isinstance(value, str):
        raise ValueError("must be text")
    text = nfc(value)
    if kind is FieldType.CHOICE:
        if text not in (choices or []):
            raise ValueError(f"must be one of: {', '.join(choices or [])}")
        return text
    if len(text) > max_length:
        raise ValueError(f"longer than {max_length} characters")
    if any(ord(ch) < 32 for ch in text):
        raise ValueError("contains control characters")
    return text


def entitled_amount(
    defn: Definition,
    subtype: str,
    form: Mapping[str, object],
    requested: int | None,
    prior_in_campaign: int = 0,
) -> int:
    """What the rules grant for this case, in đồng; refuses a requested amount that does not fit."""
    rule = defn.subtypes[subtype].amount
    if requested is not None and (isinstance(requested, bool) or requested <= 0):
        raise InvalidRequest(
            "invalid_field",
            field="requested_amount",
            params={
                "field": "requested_amount",
                "reason": "must be a positive whole number of đồng",
            },
        )
    topups = sum(t.amount for t in rule.topups if form.get(t.field) is True)
    if rule.fixed is not None:
        total = rule.fixed + topups
    elif rule.per_unit is not None:
        units = form.get(rule.units_field or "")
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise InvalidRequest(
                "invalid_field",
                field=f"form.{rule.units_field}",
                params={"field": f"form.{rule.units_field}", "reason": "required for this amount"},
            )
        total = rule.per_unit * min(units, rule.max_units or units) + topups
    else:
        if rule.minimum is None or rule.maximum is None:  # guaranteed by the schema
            raise RuntimeError("range amount rule without bounds")
        if requested is None:
            raise InvalidRequest(
                "invalid_field",
                field="requested_amount",
                params={"field": "requested_amount", "reason": "required for this subtype"},
            )
        if not rule.minimum <= requested - topups <= rule.maximum:
            raise RuleViolation(
                "amount_rule",
                field="requested_amount",
                rule="amount_rule",
                params={"reason": f"{rule.minimum}–{rule.maximum} đồng"},
            )
        total = requested
    if rule.difference_from_prior:
        total -= prior_in_campaign
        if total <= 0:
            raise RuleViolation("no_higher_level", rule="amount_rule")
    if requested is not None and rule.minimum is None and requested != total:
        raise RuleViolation(
            "amount_rule",
            field="requested_amount",
            rule="amount_rule",
            params={"reason": f"{total} đồng"},
        )
    return total


def case_facts(ctx: Ctx, agg: CaseAggregate) -> CaseFacts:
    c = agg.case
    return CaseFacts(
        id=c.id,
        policy=c.policy,
        subtype=c.subtype,
        event_date=c.event_date,
        submitted_on=c.submitted_at.astimezone(VN_TZ).date(),
        form=c.form,
        amount=c.amount,
        flags=frozenset(c.flags),
        unit_id=c.unit_id,
        unit_commune=ctx.facts.case.unit_commune,
        campaign_id=c.campaign_id,
        documents=tuple((d.kind, d.sha256) for d in agg.documents),
    )


def person_functions(agg: CaseAggregate) -> dict[str, str]:
    """Each person's function on the case so far; nobody may hold two (separation of duties)."""
    functions = {agg.case.submitter_person: "submit"}
    for d in agg.decisions:
        functions.setdefault(d.person_key, "pay" if d.action == "pay" else f"step:{d.step}")
    return functions


def facts_for(
    ctx: Ctx,
    agg: CaseAggregate,
    stage: Stage,
    actor: ActorFacts | None = None,
    *,
    task_approvers: frozenset[str] = frozenset(),
    forbid_own_unit: bool = False,
) -> Facts:
    return replace(
        ctx.facts,
        stage=stage,
        now=ctx.now,
        today=ctx.today,
        case=case_facts(ctx, agg),
        actor=actor,
        functions=person_functions(agg),
        approvers_of_task=task_approvers,
        forbid_own_unit=forbid_own_unit,
    )


def missing_documents(defn: Definition, agg: CaseAggregate) -> list[str]:
    present = {d.kind for d in agg.documents}
    return [k for k in defn.subtypes[agg.case.subtype].documents if k not in present]


_NEEDED: dict[tuple[int, str, frozenset[Stage]], tuple[Definition, frozenset[str]]] = {}
"""Per definition (keyed by id(), the object kept alongside as in `_PARAMS`), subtype, stages."""


def needed_facts(defn: Definition, subtype: str, stages: frozenset[Stage]) -> frozenset[str]:
    """The gathered facts the rules `evaluate` runs at `stages` for `subtype` read (cached).

    The same selection as `evaluate` (a use's own stages, else the rule's; its subtypes), so a
    command that only runs approval-stage checks reads no intake-only fact from the database.
    """
    key = (id(defn), subtype, stages)
    hit = _NEEDED.get(key)
    if hit is not None and hit[0] is defn:
        return hit[1]
    needed: set[str] = set()
    for _section, _i, use in defn.rule_uses():
        spec = RULES[use.rule]
        allowed = use.stages or spec.stages
        if not any(stage in allowed for stage in stages):
            continue
        if use.subtypes is not None and subtype not in use.subtypes:
            continue
        needed |= GATHERED_FACTS if spec.facts is None else spec.facts
    found = frozenset(needed)
    _NEEDED[key] = (defn, found)
    return found


def evaluate(
    ctx: Ctx, agg: CaseAggregate, facts: Facts, *, only_duties: bool = False
) -> list[CheckResult]:
    """Every applicable check's result at `facts.stage`, in definition order, always-on last."""
    defn = ctx.defn
    stage = facts.stage
    results: list[CheckResult] = []
    if not only_duties:
        for _section, _i, use in defn.rule_uses():
            spec = RULES[use.rule]
            if stage not in (use.stages or spec.stages):
                continue
            if use.subtypes is not None and agg.case.subtype not in use.subtypes:
                continue
            verdict = spec.fn(facts, _params(use, spec.params_model))
            if verdict.ok:
                outcome = Outcome.PASSED
            else:
                outcome = (
                    Outcome.FAILED if (use.on_fail or spec.on_fail) == "refuse" else Outcome.FLAGGED
                )
            results.append(
                CheckResult(use.rule, spec.code, outcome, verdict.reason, verdict.params)
            )
        if _STAGE_ORDER[stage] >= _STAGE_ORDER[defn.documents_due]:
            missing = missing_documents(defn, agg)
            results.append(
                CheckResult(
                    "documents_complete",
                    "DOC",
                    Outcome.FAILED if missing else Outcome.PASSED,
                    "documents_missing" if missing else "ok",
                    {"kinds": ", ".join(missing)} if missing else {},
                )
            )
    if facts.actor is not None and stage in ("intake", "approval", "payment"):
        sod = RULES["separation_of_duties"]
        verdict = sod.fn(facts, sod.params_model())
        results.append(
            CheckResult(
                sod.name,
                sod.code,
                Outcome.PASSED if verdict.ok else Outcome.FAILED,
                verdict.reason,
                verdict.params,
            )
        )
    return results


def refuse_on_failure(results: list[CheckResult]) -> None:
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    if failed:
        first = failed[0]
        raise RuleViolation(
            first.reason,
            rule=first.rule,
            params=dict(first.params),
            checks=[r.to_json() for r in results],
        )


def new_flags(agg: CaseAggregate, results: list[CheckResult]) -> list[str]:
    """Flag codes raised by these results that the case did not carry yet (recorded on it)."""
    added = []
    for r in results:
        if r.outcome is Outcome.FLAGGED and r.code not in agg.case.flags:
            agg.case.flags.append(r.code)
            added.append(r.code)
    return added


def condition_holds(cond: Condition, facts: Facts) -> bool:
    spec = CONDITIONS[cond.rule]
    return spec.fn(facts, _params(cond, spec.params_model))


def claim_keys(defn: Definition, facts: Facts) -> list[str]:
    """Dedup keys of this case under every unique_claim use that applies to its subtype."""
    keys = []
    for _section, _i, use in defn.rule_uses():
        if use.rule != "unique_claim":
            continue
        if use.subtypes is not None and facts.case.subtype not in use.subtypes:
            continue
        params = _params(use, UniqueClaimParams)
        assert isinstance(params, UniqueClaimParams)
        keys.append(claim_key(facts, params))
    return keys
