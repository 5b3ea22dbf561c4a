"""What the engine needs besides the aggregate: definition, calendar, time, org chain, actor."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from domain.model import BudgetKey
from domain.roles import OrgLevel, Role
from domain.rules.facts import ActorFacts, Facts
from domain.workcalendar import VN_TZ, WorkCalendar
from domain.workflow import Definition


@dataclass(frozen=True)
class Actor:
    """An authenticated person and the roles they hold now, each at an org unit."""

    account_id: str
    person_key: str  # the member id when the account is linked to a member, else the account id
    member_id: str | None = None
    home_unit_id: str | None = None
    household_key: str | None = None
    grants: tuple[tuple[Role, str], ...] = ()

    def holds(self, role: Role, units: Iterable[str]) -> bool:
        wanted = set(units)
        return any(r is role and u in wanted for r, u in self.grants)

    def holds_any(self, units: Iterable[str], roles: Iterable[Role] | None = None) -> bool:
        wanted = set(units)
        allowed = set(roles) if roles is not None else None
        return any(u in wanted and (allowed is None or r in allowed) for r, u in self.grants)

    def facts(self, function: str) -> ActorFacts:
        return ActorFacts(
            account_id=self.account_id,
            person_key=self.person_key,
            member_id=self.member_id,
            home_unit_id=self.home_unit_id,
            household_key=self.household_key,
            function=function,
        )


SYSTEM = Actor(account_id="system", person_key="system")
"""The engine itself (screening, SLA sweep). It never holds an approving role."""


@dataclass(frozen=True)
class Ctx:
    defn: Definition
    calendar: WorkCalendar
    now: datetime
    ancestry: Mapping[OrgLevel, str]  # the case unit's chain by level, grassroots included
    facts: Facts  # snapshot gathered by the service; case/stage/actor are filled in per check
    budget_key: BudgetKey | None = None

    @property
    def today(self) -> date:
        return self.now.astimezone(VN_TZ).date()

    def chain_at_or_above(self, level: OrgLevel) -> list[str]:
        """Units a role may be held at to reach a task routed to `level`."""
        return [u for lvl, u in self.ancestry.items() if lvl.rank <= level.rank]
