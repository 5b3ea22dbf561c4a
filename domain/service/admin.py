"""Administration: the org tree, members, accounts and role grants, budgets, campaigns, complaints.

Configuration changes are audited like decisions (who granted which role, who set a budget),
but audit payloads hold ids, never names or CCCD numbers.
"""

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import insert, select, update

from domain.adapters.repository import (
    ACCOUNT,
    BUDGET,
    CAMPAIGN,
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
from domain.service.commands import DeclareCampaign
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


class Admin:
    def __init__(self, service: WelfareService) -> None:
        self.s = service

    def _today(self, now: datetime) -> date:
        return now.astimezone(VN_TZ).date()

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
        with self.s._uow() as uow:
            if uow.conn.execute(select(ORG.c.id).where(ORG.c.id == unit_id)).first():
                raise Conflict("duplicate", params={"what": unit_id})
            if parent_id is not None:
                parent = uow.repo.unit(parent_id)
                if OrgLevel(parent["level"]).rank >= level.rank:
                    raise InvalidRequest(
                        "invalid_field",
                        field="parent_id",
                        params={"field": "parent_id", "reason": "must be a higher level"},
                    )
            uow.conn.execute(
                insert(ORG).values(
                    id=unit_id,
                    name=nfc(name),
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
        if sex not in ("male", "female"):
            raise InvalidRequest(
                "invalid_field", field="sex", params={"field": "sex", "reason": "male or female"}
            )
        problems = check_cccd(cccd, dob, sex)  # type: ignore[arg-type]
        if problems:
            raise InvalidRequest(problems[0], field="cccd", rule="cccd_plausible")
        try:
            name = clean_person_name(full_name)
        except ValueError as exc:
            raise InvalidRequest(
                "invalid_field",
                field="full_name",
                params={"field": "full_name", "reason": str(exc)},
            ) from None
        now = self.s.clock()
        member_id = new_id()
        household = household_key or f"hh-{member_id}"
        with self.s._uow() as uow:
            if uow.conn.execute(select(MEMBER.c.id).where(MEMBER.c.cccd == cccd)).first():
                raise Conflict("duplicate", field="cccd", params={"what": "CCCD"})
            uow.repo.unit(unit_id)
            uow.conn.execute(
                insert(MEMBER).values(
                    id=member_id,
                    cccd=cccd,
                    full_name=name,
                    name_key=name_key(name),
                    dob=dob,
                    sex=sex,
                    household_key=household,
                    commune_code=commune_code,
                    phone=phone,
                    created_at=now,
                )
            )
            uow.conn.execute(
                insert(MEMBERSHIP).values(
                    member_id=member_id, unit_id=unit_id, joined_on=joined_on, left_on=left_on
                )
            )
            if not uow.conn.execute(
                select(HOUSEHOLD.c.key).where(HOUSEHOLD.c.key == household)
            ).first():
                uow.conn.execute(insert(HOUSEHOLD).values(key=household, version=0))
            uow.record(
                audit=[
                    _intent(
                        "member.added",
                        "member",
                        member_id,
                        actor_id,
                        {"unit": unit_id},
                        unit=unit_id,
                    )
                ]
            )
            uow.commit(now)
        return member_id

    def end_membership(self, actor_id: str, member_id: str, left_on: date) -> None:
        now = self.s.clock()
        with self.s._uow() as uow:
            res = uow.conn.execute(
                update(MEMBERSHIP)
                .where(MEMBERSHIP.c.member_id == member_id, MEMBERSHIP.c.left_on.is_(None))
                .values(left_on=left_on)
            )
            if res.rowcount == 0:
                raise NotFound("membership", member_id)
            uow.record(
                audit=[
                    _intent(
                        "member.left",
                        "member",
                        member_id,
                        actor_id,
                        {"left_on": left_on.isoformat()},
                    )
                ]
            )
            uow.commit(now)

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
    ) -> None:
        now = self.s.clock()
        with self.s._uow() as uow:
            uow.repo.account(account_id)
            uow.repo.unit(unit_id)
            uow.conn.execute(
                insert(GRANT).values(
                    account_id=account_id,
                    role=role.value,
                    org_unit_id=unit_id,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    granted_by=actor_id,
                )
            )
            uow.record(
                audit=[
                    _intent(
                        "role.granted",
                        "account",
                        account_id,
                        actor_id,
                        {
                            "role": role.value,
                            "unit": unit_id,
                            "from": valid_from.isoformat(),
                            "to": valid_to.isoformat() if valid_to else None,
                        },
                        unit=unit_id,
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
        if kind not in ("feedback", "complaint"):
            raise InvalidRequest(
                "invalid_field",
                field="kind",
                params={"field": "kind", "reason": "feedback or complaint"},
            )
        body = nfc(text)
        if not body or len(body) > 5000:
            raise InvalidRequest(
                "invalid_field",
                field="text",
                params={"field": "text", "reason": "1–5000 characters"},
            )
        now = self.s.clock()
        complaint_id = new_id()
        with self.s._uow() as uow:
            agg = uow.repo.load_case(case_id, lock=False)
            ancestry = uow.repo.ancestry(agg.case.unit_id, self._today(now))
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
                        {"case": case_id, "kind": kind, "handler": handler},
                        unit=handler,
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
        now = self.s.clock()
        text = nfc(resolution)
        if not text:
            raise InvalidRequest(
                "invalid_field",
                field="resolution",
                params={"field": "resolution", "reason": "required"},
            )
        with self.s._uow() as uow:
            actor = self.s.actor(uow.repo, actor_id, now)
            c = uow.repo.complaint(complaint_id)
            if c.status != "open":
                raise Conflict(
                    "transition_not_allowed", params={"action": "resolve", "status": c.status}
                )
            chain = set(uow.repo.ancestry(c.handling_unit_id, self._today(now)).values())
            if not actor.holds(Role.AUDITOR, chain):
                raise PermissionDenied("permission_denied")
            c.status, c.resolution, c.resolved_by, c.resolved_at = "resolved", text, actor_id, now
            uow.repo.update_complaint(c)
            uow.record(
                audit=[
                    _intent(
                        "complaint.resolved",
                        "complaint",
                        complaint_id,
                        actor_id,
                        {"case": c.case_id},
                        unit=c.handling_unit_id,
                        role=Role.AUDITOR.value,
                    )
                ],
                events=[Event(COMPLAINT_RESOLVED, now, c.case_id, {"complaint": complaint_id})],
            )
            uow.commit(now)


def members_in(service: WelfareService, unit_id: str) -> Sequence[str]:
    with service.engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                select(MEMBERSHIP.c.member_id).where(MEMBERSHIP.c.unit_id == unit_id)
            )
        ]
