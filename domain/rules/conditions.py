"""Routing predicates for decision steps: amount tiers, flags, subtypes."""

from pydantic import BaseModel, ConfigDict, Field

from domain.rules.facts import Facts
from domain.rules.registry import condition


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmountParams(_Params):
    amount: int = Field(gt=0)


@condition("amount_above", params=AmountParams)
def amount_above(facts: Facts, params: BaseModel) -> bool:
    assert isinstance(params, AmountParams)
    return facts.case.amount > params.amount


@condition("amount_at_most", params=AmountParams)
def amount_at_most(facts: Facts, params: BaseModel) -> bool:
    assert isinstance(params, AmountParams)
    return facts.case.amount <= params.amount


class FlagParams(_Params):
    codes: list[str] | None = Field(
        default=None, description="Only these check codes (e.g. C5); default: any flag."
    )


@condition("flagged", params=FlagParams)
def flagged(facts: Facts, params: BaseModel) -> bool:
    assert isinstance(params, FlagParams)
    if params.codes is None:
        return bool(facts.case.flags - {"SLA"})  # an SLA escalation is not a claim problem
    return bool(facts.case.flags & set(params.codes))


class SubtypeParams(_Params):
    subtypes: list[str] = Field(min_length=1)


@condition("subtype_in", params=SubtypeParams)
def subtype_in(facts: Facts, params: BaseModel) -> bool:
    assert isinstance(params, SubtypeParams)
    return facts.case.subtype in params.subtypes
