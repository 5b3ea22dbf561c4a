"""The administrators' read side: org units, members (CCCD masked) and accounts with their grants.

Every read is limited to the units the acting account administers (role `admin` at a unit
reaches it and every unit below); an account without the role is refused, and a single record
outside those units is reported as not found. Lists are keyset-paginated on the id.
"""

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, Engine, or_, select
from sqlalchemy.engine import Connection, RowMapping

from domain.adapters.db import READ_ONLY
from domain.adapters.definitions import DefinitionStore
from domain.adapters.repository import (
    ACCOUNT,
    CAMPAIGN,
    GRANT,
    LINK,
    MEMBER,
    MEMBERSHIP,
    ORG,
    SNAPSHOT,
)
from domain.cccd import mask_cccd
from domain.errors import InvalidRequest, NotFound, PermissionDenied
from domain.roles import Role
from domain.service.access import descendants
from domain.service.admin import admin_scope
from domain.service.queries import UnitScope, role_scope
from domain.text import name_key
from domain.workcalendar import VN_TZ

MAX_LIMIT = 500


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(
            "invalid_field", field="limit", params={"field": "limit", "reason": f"1–{MAX_LIMIT}"}
        )


# Who may look members up: administrators, and the grassroots officers and chairs who file
# cases and lists for them (a case names its member by id: they must be able to find it).
MEMBER_READERS = (Role.ADMIN, Role.GRASSROOTS_OFFICER, Role.GRASSROOTS_CHAIR)


def member_reader_scope(conn: Connection, actor_id: str, on: date) -> UnitScope:
    """The units whose members the caller may list; PermissionDenied when none."""
    scope = role_scope(conn, actor_id, MEMBER_READERS, on)
    if scope.empty:
        raise PermissionDenied("permission_denied")
    return scope


def _narrow(scope: UnitScope, unit_id: str | None, conn: Connection, on: date) -> frozenset[str]:
    """The admin's units, or the subtree of `unit_id` inside them (empty if outside)."""
    if unit_id is None:
        return scope.units
    return descendants(conn, [unit_id], on) & scope.units


# --- org units --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitView:
    id: str
    name: str
    level: str
    parent_id: str | None
    commune_code: str | None
    valid_from: date
    valid_to: date | None


def list_units(engine: Engine, actor_id: str, now: datetime) -> list[UnitView]:
    """The units the admin administers, parents before children (a tree in list form)."""
    on = now.astimezone(VN_TZ).date()
    with engine.connect().execution_options(**READ_ONLY) as conn:
        scope = admin_scope(conn, actor_id, now)
        parents = {
            str(c): str(p)
            for c, p in conn.execute(
                select(LINK.c.child_id, LINK.c.parent_id).where(
                    LINK.c.child_id.in_(sorted(scope.units)),
                    LINK.c.valid_from <= on,
                    or_(LINK.c.valid_to.is_(None), LINK.c.valid_to >= on),
                )
            )
        }
        rows = list(conn.execute(select(ORG).where(ORG.c.id.in_(sorted(scope.units)))).mappings())
    by_id = {
        r["id"]: UnitView(
            r["id"],
            r["name"],
            r["level"],
            parents.get(r["id"]),
            r["commune_code"],
            r["valid_from"],
            r["valid_to"],
        )
        for r in rows
    }
    out: list[UnitView] = []
    placed: set[str] = set()

    def place(u: UnitView) -> None:
        if u.id in placed:
            return
        if u.parent_id in by_id:
            place(by_id[u.parent_id])
        placed.add(u.id)
        out.append(u)

    for u in sorted(by_id.values(), key=lambda v: (v.level != "province", v.id)):
        place(u)
    return out


# --- members ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberView:
    id: str
    full_name: str
    cccd_masked: str
    dob: date
    sex: str
    household_key: str
    phone: str | None
    commune_code: str | None
    unit_id: str
    joined_on: date
    left_on: date | None


def _member_view(r: RowMapping) -> MemberView:
    return MemberView(
        r["id"],
        r["full_name"],
        mask_cccd(r["cccd"]),
        r["dob"],
        r["sex"],
        r["household_key"],
        r["phone"],
        r["commune_code"],
        r["unit_id"],
        r["joined_on"],
        r["left_on"],
    )


@dataclass(frozen=True)
class MemberPage:
    items: list[MemberView]
    next_cursor: str | None


def list_members(
    engine: Engine,
    actor_id: str,
    now: datetime,
    *,
    unit_id: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> MemberPage:
    """Members whose membership is at a unit the caller administers or files cases for; `q`
    matches names without diacritics (\"nguyen thi\") or the last digits of the CCCD."""
    _check_limit(limit)
    on = now.astimezone(VN_TZ).date()
    with engine.connect().execution_options(**READ_ONLY) as conn:
        scope = member_reader_scope(conn, actor_id, on)
        units = _narrow(scope, unit_id, conn, on)
        query = (
            select(MEMBER, MEMBERSHIP.c.unit_id, MEMBERSHIP.c.joined_on, MEMBERSHIP.c.left_on)
            .join(MEMBERSHIP, MEMBERSHIP.c.member_id == MEMBER.c.id)
            .where(MEMBERSHIP.c.unit_id.in_(sorted(units)))
            .order_by(MEMBER.c.id, MEMBERSHIP.c.joined_on.desc())
        )
        if q:
            term = q.strip()
            if term.isdigit() and len(term) <= 4:
                query = query.where(MEMBER.c.cccd.endswith(term))
            else:
                key = name_key(term).replace("\\", "").replace("%", "").replace("_", "")
                query = query.where(MEMBER.c.name_key.contains(key))
        if cursor:
            query = query.where(MEMBER.c.id > cursor)
        rows = list(conn.execute(query.limit(4 * limit + 1)).mappings())
    items: list[MemberView] = []
    seen: set[str] = set()
    more = False
    for r in rows:
        if r["id"] in seen:
            continue  # a member who moved between two of the admin's units: newest membership
        if len(items) == limit:
            more = True
            break
        seen.add(r["id"])
        items.append(_member_view(r))
    if not more and len(rows) == 4 * limit + 1:
        more = True
    return MemberPage(items, items[-1].id if more and items else None)


# --- accounts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantView:
    id: int
    role: str
    org_unit_id: str
    valid_from: date
    valid_to: date | None
    granted_by: str | None


@dataclass(frozen=True)
class AccountView:
    id: str
    username: str
    display_name: str
    email: str | None
    home_unit_id: str | None
    member_id: str | None
    active: bool
    created_at: datetime
    grants: list[GrantView]


@dataclass(frozen=True)
class AccountPage:
    items: list[AccountView]
    next_cursor: str | None


def _grants(conn: Connection, account_ids: list[str]) -> dict[str, list[GrantView]]:
    out: dict[str, list[GrantView]] = {a: [] for a in account_ids}
    if not account_ids:
        return out
    for r in conn.execute(
        select(GRANT).where(GRANT.c.account_id.in_(account_ids)).order_by(GRANT.c.id)
    ).mappings():
        out[r["account_id"]].append(
            GrantView(
                r["id"],
                r["role"],
                r["org_unit_id"],
                r["valid_from"],
                r["valid_to"],
                r["granted_by"],
            )
        )
    return out


def _visible_accounts(units: frozenset[str]) -> ColumnElement[bool]:
    ordered = sorted(units)
    return or_(
        ACCOUNT.c.home_unit_id.in_(ordered),
        ACCOUNT.c.id.in_(select(GRANT.c.account_id).where(GRANT.c.org_unit_id.in_(ordered))),
    )


def list_accounts(
    engine: Engine,
    actor_id: str,
    now: datetime,
    *,
    unit_id: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> AccountPage:
    """Accounts living in, or holding a role in, the units the admin administers."""
    _check_limit(limit)
    on = now.astimezone(VN_TZ).date()
    with engine.connect().execution_options(**READ_ONLY) as conn:
        scope = admin_scope(conn, actor_id, now)
        units = _narrow(scope, unit_id, conn, on)
        query = select(ACCOUNT).where(_visible_accounts(units)).order_by(ACCOUNT.c.id)
        if cursor:
            query = query.where(ACCOUNT.c.id > cursor)
        rows = list(conn.execute(query.limit(limit + 1)).mappings())
        more = len(rows) > limit
        rows = rows[:limit]
        grants = _grants(conn, [r["id"] for r in rows])
    items = [_account_view(r, grants[r["id"]]) for r in rows]
    return AccountPage(items, items[-1].id if more else None)


def _account_view(r: RowMapping, grants: list[GrantView]) -> AccountView:
    return AccountView(
        r["id"],
        r["username"],
        r["display_name"],
        r["email"],
        r["home_unit_id"],
        r["member_id"],
        bool(r["active"]),
        r["created_at"],
        grants,
    )


def read_account(engine: Engine, actor_id: str, account_id: str, now: datetime) -> AccountView:
    with engine.connect().execution_options(**READ_ONLY) as conn:
        scope = admin_scope(conn, actor_id, now)
        row = (
            conn.execute(
                select(ACCOUNT).where(
                    ACCOUNT.c.id == account_id,
                    _visible_accounts(scope.units),
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("account", account_id)
        grants = _grants(conn, [account_id])
    return _account_view(row, grants[account_id])


# --- policy definitions -------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyVersionView:
    policy: str
    version: int
    sha256: str
    published_at: datetime
    current: bool
    loaded: bool


def policy_versions(
    engine: Engine, definitions: DefinitionStore, policy: str
) -> list[PolicyVersionView]:
    """Every published version of a policy with its content hash; a published version never
    changes, so the hash proves which rules a case filed under it was judged by."""
    current = definitions.current(policy).version  # NotFound for an unknown policy
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(
            select(SNAPSHOT.c.version, SNAPSHOT.c.sha256, SNAPSHOT.c.published_at)
            .where(SNAPSHOT.c.policy == policy)
            .order_by(SNAPSHOT.c.version)
        ).all()
    return [
        PolicyVersionView(
            policy, int(v), str(h), at, int(v) == current, (policy, int(v)) in definitions.versions
        )
        for v, h, at in rows
    ]


def read_member(engine: Engine, actor_id: str, member_id: str, now: datetime) -> MemberView:
    """One member (their newest membership at a unit the admin administers), else NotFound."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        scope = admin_scope(conn, actor_id, now)
        r = (
            conn.execute(
                select(MEMBER, MEMBERSHIP.c.unit_id, MEMBERSHIP.c.joined_on, MEMBERSHIP.c.left_on)
                .join(MEMBERSHIP, MEMBERSHIP.c.member_id == MEMBER.c.id)
                .where(MEMBER.c.id == member_id, MEMBERSHIP.c.unit_id.in_(sorted(scope.units)))
                .order_by(MEMBERSHIP.c.joined_on.desc())
            )
            .mappings()
            .first()
        )
    if r is None:
        raise NotFound("member", member_id)
    return _member_view(r)


def read_grant(engine: Engine, actor_id: str, grant_id: int, now: datetime) -> GrantView:
    with engine.connect().execution_options(**READ_ONLY) as conn:
        scope = admin_scope(conn, actor_id, now)
        r = conn.execute(select(GRANT).where(GRANT.c.id == grant_id)).mappings().first()
    if r is None or not scope.covers(r["org_unit_id"]):
        raise NotFound("grant", str(grant_id))
    return GrantView(
        r["id"], r["role"], r["org_unit_id"], r["valid_from"], r["valid_to"], r["granted_by"]
    )


# --- campaigns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignView:
    id: str
    policy: str
    code: str
    title: str
    opens_on: date
    closes_on: date
    event_from: date
    event_to: date
    affected_communes: list[str]
    quotas: dict[str, int]  # only the caller's units: another unit's quota is not theirs to know
    open: bool


def list_campaigns(
    engine: Engine,
    units: frozenset[str],
    now: datetime,
    *,
    policy: str | None = None,
    open_only: bool = False,
) -> list[CampaignView]:
    """Declared campaigns, newest first: the ids officers put on a campaign list.

    `units` is the caller's scope; quotas of units outside it are left out.
    """
    today = now.astimezone(VN_TZ).date()
    c = CAMPAIGN.c
    query = select(CAMPAIGN).order_by(c.opens_on.desc(), c.id)
    if policy is not None:
        query = query.where(c.policy == policy)
    if open_only:
        query = query.where(c.opens_on <= today, c.closes_on >= today)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = list(conn.execute(query).mappings())
    out: list[CampaignView] = []
    for r in rows:
        params = r["params"] or {}
        quotas = params.get("quotas") or {}
        out.append(
            CampaignView(
                id=r["id"],
                policy=r["policy"],
                code=r["code"],
                title=r["title"],
                opens_on=r["opens_on"],
                closes_on=r["closes_on"],
                event_from=r["event_from"],
                event_to=r["event_to"],
                affected_communes=list(params.get("affected_communes") or []),
                quotas={u: int(q) for u, q in sorted(quotas.items()) if u in units},
                open=r["opens_on"] <= today <= r["closes_on"],
            )
        )
    return out
