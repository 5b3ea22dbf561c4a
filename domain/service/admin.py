"""Administration: the org tree, members, accounts and role grants, budgets, campaigns, complaints.

Configuration changes are audited like decisions (who granted which role, who set a budget),
but audit payloads hold ids, never names or CCCD numbers.

Who may administer: role `admin` held at a unit administers that unit and every unit below it
(the province admin administers everything). `Admin(service)` is the operator's object used by
the CLI and the seed (no account behind it); the API uses `admin.scoped()`, whose every command
first checks, inside its own transaction, that the acting account administers the target unit:
a target outside the admin's units is reported as not found, so existence does not leak.
Complaints are always checked: the member (through a member account) or an officer of the
case's grassroots unit files; an auditor whose units reach the case reads and resolves.
"""

import hashlib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from domain.adapters.db import READ_ONLY
from domain.adapters.repository import (
    ACCOUNT,
    BUDGET,
    CAMPAIGN,
    CASE,
    COMPLAINT,
    GRANT,
    HOUSEHOLD,
    LINK,
    MEMBER,
    MEMBERSHIP,
    ORG,
)
from domain.cccd import check_cccd
from domain.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from domain.events import CAMPAIGN_DECLARED, COMPLAINT_FILED, COMPLAINT_RESOLVED, Event
from domain.ids import new_id
from domain.model import AuditIntent, Complaint
from domain.roles import OrgLevel, Role
from domain.service.access import CASE_READERS
from domain.service.commands import DeclareCampaign
from domain.service.queries import UnitScope, role_scope
from domain.service.welfare import WelfareService
from domain.text import clean_person_name, name_key, nfc
from domain.workcalendar import VN_TZ


def _intent(
    action: str,
    entity: str,
    entity_id: str,
    actor: str,
    payload: dict[str, object],
    unit: str | None = None,
    role: str | None = None,
) -> AuditIntent:
    return AuditIntent(action, entity, entity_id, actor, role, unit, None, None, payload)


def _invalid(field: str, reason: str) -> InvalidRequest:
    return InvalidRequest("invalid_field", field=field, params={"field": field, "reason": reason})


@dataclass(frozen=True)
class NewMember:
    """A member's details after validation: NFC name, plausible CCCD, known sex."""

    cccd: str
    full_name: str
    dob: date
    sex: str
    joined_on: date
    household_key: str | None = None
    commune_code: str | None = None
    phone: str | None = None
    left_on: date | None = None


def validate_member(
    *,
    cccd: str,
    full_name: str,
    dob: date,
    sex: str,
    joined_on: date,
    household_key: str | None = None,
    commune_code: str | None = None,
    phone: str | None = None,
    left_on: date | None = None,
) -> NewMember:
    """Check a member's details without touching the database (C1 plausibility included)."""
    if sex not in ("male", "female"):
        raise _invalid("sex", "male or female")
    problems = check_cccd(cccd, dob, sex)  # type: ignore[arg-type]
    if problems:
        raise InvalidRequest(problems[0], field="cccd", rule="cccd_plausible")
    try:
        name = clean_person_name(full_name)
    except ValueError as exc:
        raise _invalid("full_name", str(exc)) from None
    if joined_on < dob:
        raise _invalid("joined_on", "before the date of birth")
    if left_on is not None and left_on < joined_on:
        raise _invalid("left_on", "before joined_on")
    if household_key is not None and not 1 <= len(household_key) <= 64:
        raise _invalid("household_key", "1–64 characters")
    if commune_code is not None and not 1 <= len(commune_code) <= 20:
        raise _invalid("commune_code", "1–20 characters")
    if phone is not None:
        phone = normalise_phone(phone)
    return NewMember(
        cccd, name, dob, sex, joined_on, household_key or None, commune_code, phone, left_on
    )


def normalise_phone(raw: str) -> str:
    """A Vietnamese phone number as 0 + 9 digits; '+84'/'84' prefixes, spaces, dots and dashes allowed."""
    digits = "".join(ch for ch in raw if ch not in " .-()")
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    if not (digits.isascii() and digits.isdigit() and len(digits) == 10 and digits[0] == "0"):
        raise _invalid("phone", "10 digits starting with 0")
    return digits


def insert_member(conn: Connection, m: NewMember, unit_id: str, now: datetime) -> str:
    """Write a validated member, their membership and household row; the caller's transaction."""
    member_id = new_id()
    household = m.household_key or f"hh-{member_id}"
    conn.execute(
        insert(MEMBER).values(
            id=member_id,
            cccd=m.cccd,
            full_name=m.full_name,
            name_key=name_key(m.full_name),
            dob=m.dob,
            sex=m.sex,
            household_key=household,
            commune_code=m.commune_code,
            phone=m.phone,
            created_at=now,
        )
    )
    conn.execute(
        insert(MEMBERSHIP).values(
            member_id=member_id, unit_id=unit_id, joined_on=m.joined_on, left_on=m.left_on
        )
    )
    if not conn.execute(select(HOUSEHOLD.c.key).where(HOUSEHOLD.c.key == household)).first():
        conn.execute(insert(HOUSEHOLD).values(key=household, version=0))
    return member_id


def insert_membership(conn: Connection, member_id: str, unit_id: str, joined_on: date) -> None:
    conn.execute(
        insert(MEMBERSHIP).values(member_id=member_id, unit_id=unit_id, joined_on=joined_on)
    )


def admin_scope(conn: Connection, account_id: str, now: datetime) -> UnitScope:
    """Where an account's `admin` grants reach; PermissionDenied when it holds none."""
    scope = role_scope(conn, account_id, [Role.ADMIN], now.astimezone(VN_TZ).date())
    if scope.empty:
        raise PermissionDenied("permission_denied")
    return scope


def text_digest(text: str) -> str:
    """Free text may hold personal data: the audit log keeps only its hash."""
    return hashlib.sha256(text.encode()).hexdigest()


class Admin:
    def __init__(self, service: WelfareService, *, enforce_scope: bool = False) -> None:
        self.s = service
        self.enforce_scope = enforce_scope

    def scoped(self) -> "Admin":
        """The same commands, each checking that the acting account administers its target."""
        return Admin(self.s, enforce_scope=True)

    def _today(self, now: datetime) -> date:
        return now.astimezone(VN_TZ).date()

    def _scope(self, conn: Connection, actor_id: str, now: datetime) -> UnitScope | None:
        """The acting admin's units, or None for the operator (CLI, seed)."""
        return admin_scope(conn, actor_id, now) if self.enforce_scope else None

    def _require_unit(
        self, conn: Connection, actor_id: str, unit_id: str | None, now: datetime
    ) -> None:
        scope = self._scope(conn, actor_id, now)
        if scope is not None and not scope.covers(unit_id):
            if unit_id is None:
                raise PermissionDenied("permission_denied")
            raise NotFound("org unit", unit_id)

    def _member_unit(self, conn: Connection, member_id: str) -> str | None:
        """The member's current unit (open membership), else their last one."""
        row = conn.execute(
            select(MEMBERSHIP.c.unit_id)
            .where(MEMBERSHIP.c.member_id == member_id)
            .order_by(MEMBERSHIP.c.left_on.is_(None).desc(), MEMBERSHIP.c.joined_on.desc())
        ).first()
        return None if row is None else str(row[0])

    def _account_visible(self, conn: Connection, scope: UnitScope | None, account_id: str) -> None:
        """NotFound unless the account lives in, or holds a role in, the admin's units."""
        acc = (
            conn.execute(
                select(ACCOUNT.c.id, ACCOUNT.c.home_unit_id).where(ACCOUNT.c.id == account_id)
            )
            .mappings()
            .first()
        )
        if acc is None:
            raise NotFound("account", account_id)
        if scope is None or scope.covers(acc["home_unit_id"]):
            return
        units = {
            r[0]
            for r in conn.execute(
                select(GRANT.c.org_unit_id).where(GRANT.c.account_id == account_id)
            )
        }
        if not units & scope.units:
            raise NotFound("account", account_id)

    def add_org_unit(
        self,
        actor_id: str,
        unit_id: str,
        name: str,
        level: OrgLevel,
        parent_id: str | None,
        commune_code: str | None = None,
        valid_from: date = date(2025, 7, 1),
    ) -> None:
        now = self.s.clock()
        if not unit_id or len(unit_id) > 64:
            raise _invalid("id", "1–64 characters")
        clean_name = nfc(name)
        if not clean_name or len(clean_name) > 200:
            raise _invalid("name", "1–200 characters")
        with self.s._uow() as uow:
            self._require_unit(uow.conn, actor_id, parent_id, now)
            if uow.conn.execute(select(ORG.c.id).where(ORG.c.id == unit_id)).first():
                raise Conflict("duplicate", field="id", params={"what": unit_id})
            if parent_id is not None:
                parent = uow.repo.unit(parent_id)
                if OrgLevel(parent["level"]).rank >= level.rank:
                    raise _invalid("parent_id", "must be a higher level")
            uow.conn.execute(
                insert(ORG).values(
                    id=unit_id,
                    name=clean_name,
                    level=level.value,
                    commune_code=commune_code,
                    valid_from=valid_from,
                )
            )
            if parent_id is not None:
                uow.conn.execute(
                    insert(LINK).values(
                        child_id=unit_id, parent_id=parent_id, valid_from=valid_from
                    )
                )
            uow.record(
                audit=[
                    _intent(
                        "org.unit_added",
                        "org_unit",
                        unit_id,
                        actor_id,
                        {"level": level.value, "parent": parent_id},
                        unit=parent_id,
                        role=Role.ADMIN.value if self.enforce_scope else None,
                    )
                ]
            )
            uow.commit(now)

    def add_member(
        self,
        actor_id: str,
        *,
        cccd: str,
        full_name: str,
        dob: date,
        sex: str,
        unit_id: str,
        joined_on: date,
        household_key: str | None = None,
        commune_code: str | None = None,
        phone: str | None = None,
        left_on: date | None = None,
    ) -> str:
        """Register a member; one person per CCCD, and the CCCD must be plausible (C1)."""
        m = validate_member(
            cccd=cccd,
            full_name=full_name,
            dob=dob,
            sex=sex,
            joined_on=joined_on,
            household_key=household_key,
            commune_code=commune_code,
            phone=phone,
            left_on=left_on,
        )
        now = self.s.clock()
        with self.s._uow() as uow:
            self._require_unit(uow.conn, actor_id, unit_id, now)
            if uow.conn.execute(select(MEMBER.c.id).where(MEMBER.c.cccd == m.cccd)).first():
                raise Conflict("duplicate", field="cccd", params={"what": "CCCD"})
            uow.repo.unit(unit_id)
            member_id = insert_member(uow.conn, m, unit_id, now)
            uow.record(
                audit=[
                    _intent(
                        "member.added",
                        "member",
                        member_id,
                        actor_id,
                        {"unit": unit_id},
                        unit=unit_id,
                        role=Role.ADMIN.value if self.enforce_scope else None,
                    )
                ]
            )
            uow.commit(now)
        return member_id

    def end_membership(self, actor_id: str, member_id: str, left_on: date) -> None:
        now = self.s.clock()
        with self.s._uow() as uow:
            unit = self._member_unit(uow.conn, member_id)
            if unit is None:
                raise NotFound("member", member_id)
            scope = self._scope(uow.conn, actor_id, now)
            if scope is not None and not scope.covers(unit):
                raise NotFound("member", member_id)
            open_row = uow.conn.execute(
                select(MEMBERSHIP.c.id, MEMBERSHIP.c.joined_on).where(
                    MEMBERSHIP.c.member_id == member_id, MEMBERSHIP.c.left_on.is_(None)
                )
            ).first()
            if open_row is None:
                raise Conflict(
                    "transition_not_allowed",
                    params={"action": "end membership", "status": "ended"},
                )
            if left_on < open_row[1]:
                raise _invalid("left_on", "before joined_on")
            uow.conn.execute(
                update(MEMBERSHIP).where(MEMBERSHIP.c.id == open_row[0]).values(left_on=left_on)
            )
            uow.record(
                audit=[
                    _intent(
                        "member.left",
                        "member",
                        member_id,
                        actor_id,
                        {"left_on": left_on.isoformat()},
                        unit=unit,
                        role=Role.ADMIN.value if self.enforce_scope else None,
                    )
                ]
            )
            uow.commit(now)

    def add_membership(
        self, actor_id: str, *, cccd: str, dob: date, unit_id: str, joined_on: date
    ) -> str:
        """A registered person joins a grassroots union again: on a transfer, after a merger
        of unions, or returning after they left. Returns the member id.

        The union's admin finds them by the CCCD and date of birth on their card (the member
        lives in another union's records, which this admin cannot list). A membership still
        open elsewhere must be ended first by its own union: with two open memberships two
        unions could file for one person (C3 checks the filing union)."""
        now = self.s.clock()
        with self.s._uow() as uow:
            self._require_unit(uow.conn, actor_id, unit_id, now)
            if uow.repo.unit(unit_id)["level"] != OrgLevel.GRASSROOTS.value:
                raise _invalid("unit_id", "a grassroots union")
            member = uow.conn.execute(
                select(MEMBER.c.id)
                .where(MEMBER.c.cccd == cccd.strip(), MEMBER.c.dob == dob)
                .with_for_update()  # PostgreSQL: one join at a time (SQLite: BEGIN IMMEDIATE)
            ).first()
            if member is None:
                raise NotFound("member", "CCCD …" + cccd.strip()[-4:])
            member_id = str(member[0])
            periods = uow.conn.execute(
                select(MEMBERSHIP.c.joined_on, MEMBERSHIP.c.left_on).where(
                    MEMBERSHIP.c.member_id == member_id
                )
            ).all()
            if any(left is None for _, left in periods):
                raise Conflict("membership_open")
            last_left = max((left for _, left in periods if left is not None), default=None)
            if joined_on < dob:
                raise _invalid("joined_on", "before the date of birth")
            if last_left is not None and joined_on <= last_left:
                raise _invalid(
                    "joined_on", f"after {last_left:%d/%m/%Y}, the last membership's end"
                )
            insert_membership(uow.conn, member_id, unit_id, joined_on)
            uow.record(
                audit=[
                    _intent(
                        "member.joined",
                        "member",
                        member_id,
                        actor_id,
                        {"unit": unit_id, "joined_on": joined_on.isoformat()},
                        unit=unit_id,
                        role=Role.ADMIN.value if self.enforce_scope else None,
                    )
                ]
            )
            uow.commit(now)
        return member_id

    def add_account(
        self,
        actor_id: str,
        *,
        username: str,
        display_name: str,
        email: str | None = None,
        member_id: str | None = None,
        home_unit_id: str | None = None,
        password_hash: str | None = None,
    ) -> str:
        now = self.s.clock()
        account_id = new_id()
        with self.s._uow() as uow:
            scope = self._scope(uow.conn, actor_id, now)
            if scope is not None:
                if home_unit_id is None:
                    raise _invalid("home_unit_id", "required")
                if not scope.covers(home_unit_id):
                    raise NotFound("org unit", home_unit_id)
                if member_id is not None:
                    unit = self._member_unit(uow.conn, member_id)
                    if unit is None or not scope.covers(unit):
                        raise NotFound("member", member_id)
            if home_unit_id is not None:
                uow.repo.unit(home_unit_id)
            if (
                member_id is not None
                and not uow.conn.execute(
                    select(MEMBER.c.id).where(MEMBER.c.id == member_id)
                ).first()
            ):
                raise NotFound("member", member_id)
            if uow.conn.execute(select(ACCOUNT.c.id).where(ACCOUNT.c.username == username)).first():
                raise Conflict("duplicate", field="username", params={"what": username})
            uow.conn.execute(
                insert(ACCOUNT).values(
                    id=account_id,
                    username=username,
                    display_name=nfc(display_name),
                    email=email,
                    member_id=member_id,
                    home_unit_id=home_unit_id,
                    password_hash=password_hash,
                    active=True,
                    created_at=now,
                )
            )
            uow.record(
                audit=[
                    _intent(
                        "account.added",
                        "account",
                        account_id,
                        actor_id,
                        {"member": member_id, "home_unit": home_unit_id},
                        unit=home_unit_id,
                        role=Role.ADMIN.value if self.enforce_scope else None,
                    )
                ]
            )
            uow.commit(now)
        return account_id

    def grant_role(
        self,
        actor_id: str,
        account_id: str,
        role: Role,
        unit_id: str,
        valid_from: date,
        valid_to: date | None = None,
    ) -> int:
        """Grant `role` at `unit_id`; returns the grant's id."""
        if valid_to is not None and valid_to < valid_from:
            raise _invalid("valid_to", "before valid_from")
        now = self.s.clock()
        with self.s._uow() as uow:
            scope = self._scope(uow.conn, actor_id, now)
            if scope is not None and not scope.covers(unit_id):
                raise NotFound("org unit", unit_id)
            self._account_visible(uow.conn, scope, account_id)
            uow.repo.account(account_id)
            uow.repo.unit(unit_id)
            grant_id = uow.conn.execute(
                insert(GRANT)
                .values(
                    account_id=account_id,
                    role=role.value,
                    org_unit_id=unit_id,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    granted_by=actor_id,
                )
                .returning(GRANT.c.id)
            ).scalar_one()
            uow.record(
                audit=[
                    _intent(
                        "role.granted",
                        "account",
                        account_id,
                        actor_id,
                        {
                            "grant": grant_id,
                            "role": role.value,
                            "unit": unit_id,
                            "from": valid_from.isoformat(),
                            "to": valid_to.isoformat() if valid_to else None,
                        },
                        unit=unit_id,
                        role=Role.ADMIN.value if self.enforce_scope else None,
                    )
                ]
            )
            uow.commit(now)
        return int(grant_id)

    def revoke_grant(self, actor_id: str, grant_id: int, valid_to: date | None = None) -> date:
        """End a role grant: it holds up to and including `valid_to` (default: yesterday, so
        it stops now). A grant is never deleted: who held what, when, stays readable."""
        now = self.s.clock()
        end = valid_to if valid_to is not None else self._today(now) - timedelta(days=1)
        with self.s._uow() as uow:
            row = uow.conn.execute(select(GRANT).where(GRANT.c.id == grant_id)).mappings().first()
            if row is None:
                raise NotFound("grant", str(grant_id))
            scope = self._scope(uow.conn, actor_id, now)
            if scope is not None and not scope.covers(row["org_unit_id"]):
                raise NotFound("grant", str(grant_id))
            if end < row["valid_from"] - timedelta(days=1):
                raise _invalid("valid_to", "before the grant starts")
            if row["valid_to"] is not None and row["valid_to"] <= end:
                raise Conflict(
                    "transition_not_allowed",
                    params={"action": "revoke", "status": f"ends {row['valid_to'].isoformat()}"},
                )
            uow.conn.execute(update(GRANT).where(GRANT.c.id == grant_id).values(valid_to=end))
            uow.record(
                audit=[
                    _intent(
                        "role.revoked",
                        "account",
                        row["account_id"],
                        actor_id,
                        {
                            "grant": grant_id,
                            "role": row["role"],
                            "unit": row["org_unit_id"],
                            "to": end.isoformat(),
                        },
                        unit=row["org_unit_id"],
                        role=Role.ADMIN.value if self.enforce_scope else None,
                    )
                ]
            )
            uow.commit(now)
        return end

    def deactivate_account(self, actor_id: str, account_id: str) -> None:
        """Deactivate an account: its tokens stop working at once (every request re-reads it).
        An admin may not deactivate themself (the last admin would lock everyone out)."""
        now = self.s.clock()
        if actor_id == account_id:
            raise _invalid("account_id", "you cannot deactivate your own account")
        with self.s._uow() as uow:
            self._account_visible(uow.conn, self._scope(uow.conn, actor_id, now), account_id)
            res = uow.conn.execute(
                update(ACCOUNT)
                .where(ACCOUNT.c.id == account_id, ACCOUNT.c.active.is_(True))
                .values(active=False)
            )
            if res.rowcount == 0:
                raise Conflict(
                    "transition_not_allowed",
                    params={"action": "deactivate", "status": "inactive"},
                )
            uow.record(
                audit=[
                    _intent(
                        "account.deactivated",
                        "account",
                        account_id,
                        actor_id,
                        {},
                        role=Role.ADMIN.value if self.enforce_scope else None,
                    )
                ]
            )
            uow.commit(now)

    def reset_password(self, actor_id: str, account_id: str, password: str) -> None:
        """Set a new password for an account the admin reaches (audited, ids only)."""
        from domain.service.accounts import hash_password  # accounts builds on Admin

        hashed = hash_password(password)
        now = self.s.clock()
        with self.s._uow() as uow:
            self._account_visible(uow.conn, self._scope(uow.conn, actor_id, now), account_id)
            uow.repo.account(account_id)  # active accounts only
            uow.conn.execute(
                update(ACCOUNT).where(ACCOUNT.c.id == account_id).values(password_hash=hashed)
            )
            uow.record(
                audit=[
                    _intent(
                        "account.password_set",
                        "account",
                        account_id,
                        actor_id,
                        {},
                        role=Role.ADMIN.value if self.enforce_scope else None,
                    )
                ]
            )
            uow.commit(now)

    def set_budget(self, actor_id: str, unit_id: str, year: int, fund: str, amount: int) -> None:
        """Set a fund's yearly budget; it may not fall below what is already reserved or spent."""
        if isinstance(amount, bool) or amount < 0:
            raise InvalidRequest(
                "invalid_field", field="amount", params={"field": "amount", "reason": ">= 0"}
            )
        now = self.s.clock()
        with self.s._uow() as uow:
            uow.repo.unit(unit_id)
            b = BUDGET.c
            row = uow.conn.execute(
                select(b.id, b.reserved, b.spent).where(
                    b.org_unit_id == unit_id, b.year == year, b.fund == fund
                )
            ).first()
            if row is None:
                uow.conn.execute(
                    insert(BUDGET).values(org_unit_id=unit_id, year=year, fund=fund, amount=amount)
                )
            else:
                if amount < row[1] + row[2]:
                    raise Conflict("budget_insufficient", params={"fund": fund, "year": year})
                uow.conn.execute(update(BUDGET).where(b.id == row[0]).values(amount=amount))
            uow.record(
                audit=[
                    _intent(
                        "budget.set",
                        "budget",
                        f"{unit_id}/{year}/{fund}",
                        actor_id,
                        {"amount": amount},
                        unit=unit_id,
                    )
                ]
            )
            uow.commit(now)

    def declare_campaign(self, actor_id: str, cmd: DeclareCampaign) -> str:
        defn = self.s.definitions.current(cmd.policy)
        if defn.campaign is None:
            raise InvalidRequest(
                "invalid_field",
                field="policy",
                params={"field": "policy", "reason": "this policy has no campaigns"},
            )
        if cmd.closes_on < cmd.opens_on or cmd.event_to < cmd.event_from:
            raise InvalidRequest(
                "invalid_field",
                field="closes_on",
                params={"field": "closes_on", "reason": "ends before it starts"},
            )
        now = self.s.clock()
        campaign_id = new_id()
        with self.s._uow() as uow:
            actor = self.s.actor(uow.repo, actor_id, now)
            if not any(
                r in (Role.PROVINCE_STANDING, Role.PROVINCE_PRESIDENT, Role.ADMIN)
                for r, _ in actor.grants
            ):
                raise PermissionDenied("permission_denied")
            if uow.conn.execute(select(CAMPAIGN.c.id).where(CAMPAIGN.c.code == cmd.code)).first():
                raise Conflict("duplicate", field="code", params={"what": cmd.code})
            params = {
                "affected_communes": cmd.affected_communes,
                "dues_cutoff": cmd.dues_cutoff.isoformat() if cmd.dues_cutoff else None,
                "quotas": cmd.quotas,
            }
            uow.conn.execute(
                insert(CAMPAIGN).values(
                    id=campaign_id,
                    policy=cmd.policy,
                    code=cmd.code,
                    title=nfc(cmd.title),
                    opens_on=cmd.opens_on,
                    closes_on=cmd.closes_on,
                    event_from=cmd.event_from,
                    event_to=cmd.event_to,
                    params=params,
                    declared_by=actor_id,
                    declared_at=now,
                )
            )
            uow.record(
                audit=[
                    _intent(
                        "campaign.declared",
                        "campaign",
                        campaign_id,
                        actor_id,
                        {
                            "policy": cmd.policy,
                            "code": cmd.code,
                            **params,
                            "opens_on": cmd.opens_on.isoformat(),
                            "closes_on": cmd.closes_on.isoformat(),
                        },
                    )
                ],
                events=[
                    Event(
                        CAMPAIGN_DECLARED,
                        now,
                        None,
                        {"campaign": campaign_id, "policy": cmd.policy},
                    )
                ],
            )
            uow.commit(now)
        return campaign_id

    # --- complaints (handled by the inspection committee of the level above the decider) ----

    def file_complaint(self, actor_id: str, case_id: str, kind: str, text: str) -> str:
        """File feedback or a complaint on a case: the member themself (a member account
        linked to the case's member) or an officer of the case's grassroots unit. Others who
        may read the case are refused (403); to anyone else it does not exist (404). The text stays in the complaint row; the audit entry
        keeps its SHA-256."""
        if kind not in ("feedback", "complaint"):
            raise _invalid("kind", "feedback or complaint")
        body = text.strip()
        if not body or len(body) > 5000:
            raise _invalid("text", "1–5000 characters")
        body = nfc_text(body)
        now = self.s.clock()
        complaint_id = new_id()
        with self.s._uow() as uow:
            agg = uow.repo.load_case(case_id, lock=False)
            actor = self.s.actor(uow.repo, actor_id, now)
            is_member = actor.member_id is not None and actor.member_id == agg.case.member_id
            is_officer = actor.holds(Role.GRASSROOTS_OFFICER, [agg.case.unit_id])
            ancestry = uow.repo.ancestry(agg.case.unit_id, self._today(now))
            if not (is_member or is_officer):
                # 403 only to someone who may read the case anyway; to others it does not exist.
                if actor.holds_any(ancestry.values(), CASE_READERS):
                    raise PermissionDenied("permission_denied")
                raise NotFound("case", case_id)
            deciders = [d for d in agg.decisions if d.action != "pay"]
            decider_level = OrgLevel.GRASSROOTS
            for d in deciders:
                for lvl, unit in ancestry.items():
                    if unit == d.org_unit_id and lvl.rank < decider_level.rank:
                        decider_level = lvl
            above = [lvl for lvl in ancestry if lvl.rank == decider_level.rank - 1]
            handler = ancestry[above[0]] if above else ancestry[decider_level]
            uow.repo.insert_complaint(
                Complaint(complaint_id, case_id, kind, actor_id, now, handler, body)
            )
            uow.record(
                audit=[
                    _intent(
                        "complaint.filed",
                        "complaint",
                        complaint_id,
                        actor_id,
                        {
                            "case": case_id,
                            "kind": kind,
                            "handler": handler,
                            "text_sha256": text_digest(body),
                        },
                        unit=handler,
                        role=(Role.MEMBER if is_member else Role.GRASSROOTS_OFFICER).value,
                    )
                ],
                events=[
                    Event(
                        COMPLAINT_FILED, now, case_id, {"complaint": complaint_id, "unit": handler}
                    )
                ],
            )
            uow.commit(now)
        return complaint_id

    def resolve_complaint(self, actor_id: str, complaint_id: str, resolution: str) -> None:
        """Resolve an open complaint: an auditor at its handling unit or above. An auditor who
        may read the complaint but not resolve it is refused; others are told it does not exist."""
        now = self.s.clock()
        text = resolution.strip()
        if not text or len(text) > 5000:
            raise _invalid("resolution", "1–5000 characters")
        text = nfc_text(text)
        with self.s._uow() as uow:
            actor = self.s.actor(uow.repo, actor_id, now)
            c = uow.repo.complaint(complaint_id)
            if not complaint_visible(
                uow.conn, actor_id, c.filed_by, c.case_id, c.handling_unit_id, now
            ):
                raise NotFound("complaint", complaint_id)
            chain = set(uow.repo.ancestry(c.handling_unit_id, self._today(now)).values())
            if not actor.holds(Role.AUDITOR, chain):
                raise PermissionDenied("permission_denied")
            if c.status != "open":
                raise Conflict(
                    "transition_not_allowed", params={"action": "resolve", "status": c.status}
                )
            c.status, c.resolution, c.resolved_by, c.resolved_at = "resolved", text, actor_id, now
            uow.repo.update_complaint(c)
            uow.record(
                audit=[
                    _intent(
                        "complaint.resolved",
                        "complaint",
                        complaint_id,
                        actor_id,
                        {"case": c.case_id, "resolution_sha256": text_digest(text)},
                        unit=c.handling_unit_id,
                        role=Role.AUDITOR.value,
                    )
                ],
                events=[Event(COMPLAINT_RESOLVED, now, c.case_id, {"complaint": complaint_id})],
            )
            uow.commit(now)


def nfc_text(text: str) -> str:
    """NFC, keeping line breaks (a complaint is prose, not a name)."""
    return unicodedata.normalize("NFC", text)


def complaint_visible(
    conn: Connection,
    account_id: str,
    filed_by: str,
    case_id: str,
    handling_unit_id: str,
    now: datetime,
) -> bool:
    """The filer sees their own; an auditor sees those on cases, or handled at units, they reach."""
    if filed_by == account_id:
        return True
    scope = role_scope(conn, account_id, [Role.AUDITOR], now.astimezone(VN_TZ).date())
    if scope.empty:
        return False
    unit = conn.execute(select(CASE.c.unit_id).where(CASE.c.id == case_id)).scalar()
    return scope.covers(handling_unit_id) or (unit is not None and scope.covers(str(unit)))


def members_in(service: WelfareService, unit_id: str) -> Sequence[str]:
    with service.engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                select(MEMBERSHIP.c.member_id).where(MEMBERSHIP.c.unit_id == unit_id)
            )
        ]


# --- complaint reads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplaintView:
    id: str
    case_id: str
    kind: str
    status: str
    filed_by: str
    filed_at: datetime
    handling_unit_id: str
    text: str
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class ComplaintPage:
    items: list[ComplaintView]
    next_cursor: str | None


def _complaint_view(r: RowMapping) -> ComplaintView:
    return ComplaintView(
        r["id"],
        r["case_id"],
        r["kind"],
        r["status"],
        r["filed_by"],
        r["filed_at"],
        r["handling_unit_id"],
        r["text"],
        r["resolution"],
        r["resolved_by"],
        r["resolved_at"],
    )


def list_complaints(
    engine: Engine,
    account_id: str,
    now: datetime,
    *,
    status: str | None = None,
    case_id: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> ComplaintPage:
    """The caller's own complaints, and, for an auditor, those on cases or handled at units
    the auditor reaches. Newest id last (ids are random: the order is stable, not by time)."""
    if not 1 <= limit <= 500:
        raise _invalid("limit", "1–500")
    if status is not None and status not in ("open", "resolved"):
        raise _invalid("status", "open or resolved")
    with engine.connect().execution_options(**READ_ONLY) as conn:
        scope = role_scope(conn, account_id, [Role.AUDITOR], now.astimezone(VN_TZ).date())
        visible = [COMPLAINT.c.filed_by == account_id]
        if not scope.empty:
            units = sorted(scope.units)
            visible.append(COMPLAINT.c.handling_unit_id.in_(units))
            visible.append(
                COMPLAINT.c.case_id.in_(select(CASE.c.id).where(CASE.c.unit_id.in_(units)))
            )
        query = select(COMPLAINT).where(or_(*visible)).order_by(COMPLAINT.c.id)
        if status is not None:
            query = query.where(COMPLAINT.c.status == status)
        if case_id is not None:
            query = query.where(COMPLAINT.c.case_id == case_id)
        if cursor:
            query = query.where(COMPLAINT.c.id > cursor)
        rows = list(conn.execute(query.limit(limit + 1)).mappings())
    more = len(rows) > limit
    items = [_complaint_view(r) for r in rows[:limit]]
    return ComplaintPage(items, items[-1].id if more else None)


def read_complaint(
    engine: Engine, account_id: str, complaint_id: str, now: datetime
) -> ComplaintView:
    with engine.connect().execution_options(**READ_ONLY) as conn:
        r = conn.execute(select(COMPLAINT).where(COMPLAINT.c.id == complaint_id)).mappings().first()
        if r is None or not complaint_visible(
            conn, account_id, r["filed_by"], r["case_id"], r["handling_unit_id"], now
        ):
            raise NotFound("complaint", complaint_id)
        return _complaint_view(r)
