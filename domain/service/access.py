"""Who is asking, and which org units they reach: the scope every API read and write is checked in.

Usage (the API resolves this once per request; services and queries take it as an argument):

    access = resolve_access(engine, account_id, now)   # NotFound if unknown or deactivated
    access.units(Role.AUDITOR)        # units where the account is an auditor, and all below
    access.case_units                 # units whose cases the account may read
    access.has(Role.TREASURER)        # holds the role anywhere
    can_read_case(access, unit_id, ...)

A role held at a unit reaches that unit and every unit below it (effective-dated `org_link`
rows valid today, Asia/Ho_Chi_Minh). Administrators and members do not read cases by their
role: a member account reads only the cases about its own member record.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from domain.adapters.db import READ_ONLY
from domain.adapters.repository import ACCOUNT, Repository
from domain.roles import Role
from domain.workcalendar import VN_TZ

CASE_READERS: frozenset[Role] = frozenset(Role) - {Role.ADMIN, Role.MEMBER}
"""Roles that read the cases of the units they reach (officers, approvers, treasurers, auditors)."""

APPROVER_ROLES: frozenset[Role] = frozenset(
    {
        Role.GRASSROOTS_CHAIR,
        Role.UPPER_CHAIR,
        Role.PROVINCE_POLICY,
        Role.PROVINCE_STANDING,
        Role.PROVINCE_BOARD,
        Role.PROVINCE_PRESIDENT,
    }
)


@dataclass(frozen=True)
class Access:
    """An authenticated account, its role grants today, and the units each role reaches."""

    account_id: str
    username: str
    display_name: str
    lang: str
    member_id: str | None
    home_unit_id: str | None
    grants: tuple[tuple[Role, str], ...]
    reach: Mapping[Role, frozenset[str]] = field(default_factory=dict)

    def has(self, *roles: Role) -> bool:
        """Holds at least one of `roles` (any role when none is given) somewhere."""
        wanted = set(roles) or set(Role)
        return any(r in wanted for r, _ in self.grants)

    def units(self, *roles: Role) -> frozenset[str]:
        """Units reached through any of `roles` (through every role when none is given)."""
        wanted = set(roles) or set(Role)
        out: set[str] = set()
        for role, units in self.reach.items():
            if role in wanted:
                out |= units
        return frozenset(out)

    @property
    def case_units(self) -> frozenset[str]:
        return self.units(*CASE_READERS)

    def reaches(self, unit_id: str, *roles: Role) -> bool:
        return unit_id in self.units(*roles)


def today_vn(now: datetime) -> date:
    return now.astimezone(VN_TZ).date()


def descendants(conn: Connection, roots: Iterable[str], on: date) -> frozenset[str]:
    """`roots` and every unit below them on `on` (`Repository.subtree` of each)."""
    repo = Repository(conn)
    return frozenset().union(*(repo.subtree(unit, on) for unit in set(roots)))


def resolve_access(engine: Engine, account_id: str, now: datetime) -> Access:
    """The account (active only, else NotFound), its grants valid today and their reach."""
    on = today_vn(now)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        repo = Repository(conn)
        acc, grants = repo.account_and_grants(account_id, on)
        below = {unit: repo.subtree(unit, on) for unit in {u for _, u in grants}}
    by_role: dict[Role, set[str]] = {}
    for role, unit in grants:
        by_role.setdefault(role, set()).update(below[unit])
    reach = {role: frozenset(units) for role, units in by_role.items()}
    return Access(
        account_id=acc["id"],
        username=acc["username"],
        display_name=acc["display_name"],
        lang=acc["lang"] or "vi",
        member_id=acc["member_id"],
        home_unit_id=acc["home_unit_id"],
        grants=grants,
        reach=reach,
    )


def account_id_by_username(engine: Engine, username: str) -> str | None:
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return conn.execute(select(ACCOUNT.c.id).where(ACCOUNT.c.username == username)).scalar()
