"""Refused requests. Business outcomes (ineligible, rejected) are states and events, not errors.

Each error has a stable `code` (the problem-details `type`), a message key with parameters
for a Vietnamese or English title, and, where one is at fault, the field or the rule.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from domain.i18n import Lang, translate


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request or definition: where, and why."""

    location: str
    message: str


class DomainError(Exception):
    """Base of every refused request; the API maps `kind` to an HTTP status in one place."""

    kind: ClassVar[str] = "invalid"

    def __init__(
        self,
        code: str,
        *,
        message_key: str | None = None,
        field: str | None = None,
        rule: str | None = None,
        params: Mapping[str, object] | None = None,
        problems: Sequence[Problem] = (),
        checks: Sequence[Mapping[str, object]] = (),
    ) -> None:
        self.code = code
        self.message_key = message_key or code
        self.field = field
        self.rule = rule
        self.params: dict[str, object] = dict(params or {})
        self.problems = list(problems)
        self.checks = [dict(c) for c in checks]
        super().__init__(self.title("en"))

    def title(self, lang: Lang = "vi") -> str:
        return translate(self.message_key, lang, **self.params)


class NotFound(DomainError):
    kind = "not_found"

    def __init__(self, entity: str, ident: str) -> None:
        super().__init__("not_found", params={"entity": entity, "id": ident})


class Conflict(DomainError):
    """Lost a race or acted on stale state: retry after reloading."""

    kind = "conflict"


class PermissionDenied(DomainError):
    kind = "forbidden"


class InvalidRequest(DomainError):
    kind = "invalid"


class RuleViolation(DomainError):
    """A hard anti-abuse or eligibility check failed; `checks` carries every result."""

    kind = "rule"


class DefinitionError(DomainError):
    """A workflow definition is wrong; `problems` lists every problem with file and path."""

    kind = "definition"

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("invalid_definition", problems=problems)

    def __str__(self) -> str:
        return "\n".join(f"{p.location}: {p.message}" for p in self.problems)


@dataclass
class ProblemCollector:
    """Collects problems so validation reports all of them at once, not the first."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, location: str, message: str) -> None:
        self.problems.append(Problem(location, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DefinitionError(self.problems)
