"""Registries of named rules (checks) and conditions (routing), each with a typed parameter model.

Definitions name rules and pass parameters; nothing in a definition is ever evaluated as code.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from domain.rules.facts import Facts
from domain.workflow import STAGES, Stage

if TYPE_CHECKING:
    from domain.workflow import Definition, RuleUse


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # hard: the command is refused
    FLAGGED = "flagged"  # soft: the case is flagged and needs a second approver
    SKIPPED = "skipped"  # not applicable to this case or stage


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = "ok"
    params: Mapping[str, str | int] = field(default_factory=dict)


PASS = Verdict(True)


def fail(reason: str, **params: str | int) -> Verdict:
    return Verdict(False, reason, params)


@dataclass(frozen=True)
class CheckResult:
    """One rule's result, as written into the audit entry of the command it guarded."""

    rule: str
    code: str
    outcome: Outcome
    reason: str
    params: Mapping[str, str | int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "code": self.code,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "params": dict(self.params),
        }


RuleFn = Callable[[Facts, BaseModel], Verdict]
Validator = Callable[["Definition", "RuleUse"], Iterable[str]]


@dataclass(frozen=True)
class RuleSpec:
    name: str
    code: str  # anti-abuse catalogue number (C1…C18) or a short tag
    params_model: type[BaseModel]
    fn: RuleFn
    stages: frozenset[Stage]
    on_fail: Literal["refuse", "flag"]
    needs_campaign: bool = False
    validator: Validator | None = None
    # The gathered facts (`GATHERED_FACTS`) the rule reads: the service layer reads from the
    # database only what the rules of a command's stage need. None: unknown, gather them all.
    facts: frozenset[str] | None = None

    def check_against(self, defn: "Definition", use: "RuleUse") -> list[str]:
        """Extra cross-checks of a rule use against its definition (field names etc.)."""
        return list(self.validator(defn, use)) if self.validator else []


RULES: dict[str, RuleSpec] = {}

GATHERED_FACTS = frozenset(
    {"history", "taken_claim_keys", "reused_documents", "duplicate_persons", "quota_used"}
)
"""The `Facts` fields that cost a database query each; everything else is always there."""


def rule(
    name: str,
    *,
    code: str,
    params: type[BaseModel] = NoParams,
    stages: Iterable[Stage] = STAGES,
    on_fail: Literal["refuse", "flag"] = "refuse",
    needs_campaign: bool = False,
    validator: Validator | None = None,
    facts: Iterable[str] | None = None,
) -> Callable[[RuleFn], RuleFn]:
    """Register a pure check under `name`; definitions refer to it by that name only.

    `facts` names the gathered facts the rule reads (see `GATHERED_FACTS`); leave it out and
    every one is gathered whenever the rule runs.
    """
    declared = None if facts is None else frozenset(facts)
    if declared is not None and not declared <= GATHERED_FACTS:
        raise RuntimeError(
            f"rule {name!r} declares unknown facts {sorted(declared - GATHERED_FACTS)}"
        )

    def register(fn: RuleFn) -> RuleFn:
        if name in RULES:
            raise RuntimeError(f"rule {name!r} registered twice")
        RULES[name] = RuleSpec(
            name, code, params, fn, frozenset(stages), on_fail, needs_campaign, validator, declared
        )
        return fn

    return register


ConditionFn = Callable[[Facts, BaseModel], bool]


@dataclass(frozen=True)
class ConditionSpec:
    name: str
    params_model: type[BaseModel]
    fn: ConditionFn


CONDITIONS: dict[str, ConditionSpec] = {}


def condition(
    name: str, *, params: type[BaseModel] = NoParams
) -> Callable[[ConditionFn], ConditionFn]:
    """Register a pure routing predicate for decision steps."""

    def register(fn: ConditionFn) -> ConditionFn:
        if name in CONDITIONS:
            raise RuntimeError(f"condition {name!r} registered twice")
        CONDITIONS[name] = ConditionSpec(name, params, fn)
        return fn

    return register
