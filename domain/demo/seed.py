"""Seed a database with the Lai Châu demo world through the Admin service (so it is all audited)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from sqlalchemy import select

from domain.adapters.repository import ACCOUNT, AUDIT, GRANT, ORG
from domain.bootstrap import App
from domain.cccd import Sex
from domain.demo import laichau
from domain.roles import ROLE_TITLES, OrgLevel, Role
from domain.service.commands import DeclareCampaign
from domain.workcalendar import VN_TZ

__all__ = [
    "DemoAccount",
    "DemoAccounts",
    "campaign_codes",
    "load_accounts",
    "seed_demo",
    "seeded_at",
]

SEED_ACTOR: Final = "seed"
GRANTS_FROM: Final = date(2025, 7, 1)  # the two-level local government starts on 1/7/2025

# Yearly budgets in đồng by (level, fund) [A]: orders of magnitude from domain.md §1 (the
# province's Mái ấm fund builds a few dozen houses a year; a ward pays a few hundred Tết gifts).
_BUDGETS: Final[dict[tuple[str, str], int]] = {
    ("province", "mai_am"): 2_000_000_000,
    ("province", "xa_hoi"): 800_000_000,
    ("province", "thien_tai"): 1_500_000_000,
    ("province", "ho_tro_viec_lam"): 1_000_000_000,
    ("upper", "tet"): 60_000_000,
    ("grassroots", "phuc_loi"): 30_000_000,
}
_DEFAULT_BUDGET: Final = {"province": 500_000_000, "upper": 30_000_000, "grassroots": 20_000_000}

# Tết (first day of the lunar year); the campaign is for the next one after seeding.
_TET: Final = (
    date(2026, 2, 17),
    date(2027, 2, 6),
    date(2028, 1, 26),
    date(2029, 2, 13),
    date(2030, 2, 3),
    date(2031, 1, 23),
    date(2032, 2, 11),
)
_CAN: Final = ("Canh", "Tân", "Nhâm", "Quý", "Giáp", "Ất", "Bính", "Đinh", "Mậu", "Kỷ")
_CHI: Final = ("Thân", "Dậu", "Tuất", "Hợi", "Tý", "Sửu", "Dần", "Mão", "Thìn", "Tỵ", "Ngọ", "Mùi")

FLOOD_COMMUNES: Final = ("Mường Tè", "Thu Lũm", "Pa Ủ")


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: Role
    role_title: str  # Vietnamese, as shown to people
    unit_id: str
    unit_name: str
    account_id: str


@dataclass(frozen=True)
class DemoAccounts:
    """The demo's log-in names; `created` is False when the database was already seeded."""

    accounts: tuple[DemoAccount, ...]
    created: bool = True

    def get(self, username: str) -> DemoAccount:
        for a in self.accounts:
            if a.username == username:
                return a
        raise KeyError(username)

    def id_of(self, username: str) -> str:
        return self.get(username).account_id

    def __len__(self) -> int:
        return len(self.accounts)


def _today(app: App) -> date:
    return app.service.clock().astimezone(VN_TZ).date()


def _province_exists(app: App) -> bool:
    with app.engine.connect() as conn:
        return (
            conn.execute(select(ORG.c.id).where(ORG.c.id == laichau.PROVINCE_ID)).first()
            is not None
        )


def load_accounts(app: App, *, created: bool = False) -> DemoAccounts:
    """Every account holding a role, read back from the database (one row per grant)."""
    q = (
        select(
            ACCOUNT.c.id,
            ACCOUNT.c.username,
            ACCOUNT.c.display_name,
            GRANT.c.role,
            GRANT.c.org_unit_id,
            ORG.c.name,
        )
        .join(GRANT, GRANT.c.account_id == ACCOUNT.c.id)
        .join(ORG, ORG.c.id == GRANT.c.org_unit_id)
        .order_by(GRANT.c.id)
    )
    with app.engine.connect() as conn:
        rows = conn.execute(q).all()
    return DemoAccounts(
        tuple(
            DemoAccount(
                username, display, Role(role), ROLE_TITLES[Role(role)][0], unit, unit_name, acc
            )
            for acc, username, display, role, unit, unit_name in rows
        ),
        created,
    )


def seeded_at(app: App) -> datetime | None:
    """When the province unit was added (the start of the seed), or None if not seeded."""
    with app.engine.connect() as conn:
        return conn.execute(
            select(AUDIT.c.at).where(
                AUDIT.c.action == "org.unit_added", AUDIT.c.entity_id == laichau.PROVINCE_ID
            )
        ).scalar()


def _account_plan(
    units: list[laichau.OrgUnit], rng: random.Random
) -> list[tuple[str, str, Role, str]]:
    """(username, display name, role, unit) for the province and the featured communes."""

    def person(ethnicity: str | None = None) -> str:
        sex: Sex = "male" if rng.random() < 0.6 else "female"
        return laichau.make_name(rng, ethnicity or laichau.pick_ethnicity(rng, "city"), sex)

    lc = laichau.PROVINCE_ID
    plan: list[tuple[str, str, Role, str]] = [
        ("chutich.ldld", person(), Role.PROVINCE_PRESIDENT, lc),
        ("thuongtruc.ldld", person(), Role.PROVINCE_STANDING, lc),
        ("phochutich.ldld", person(), Role.PROVINCE_STANDING, lc),
        ("banchinhsach.ldld", person(), Role.PROVINCE_POLICY, lc),
        ("bantv1", person(), Role.PROVINCE_BOARD, lc),
        ("bantv2", person(), Role.PROVINCE_BOARD, lc),
        ("bantv3", person(), Role.PROVINCE_BOARD, lc),
        ("ketoan.ldld", person(), Role.TREASURER, lc),
        ("ubkt.ldld", person(), Role.AUDITOR, lc),
        ("quantri", "Quản trị hệ thống", Role.ADMIN, lc),
    ]
    for place in laichau.FEATURED:
        s, cid = laichau.slug(place), laichau.commune_id(place)
        plan += [
            (f"chutich.cd.{s}", person(), Role.UPPER_CHAIR, cid),
            (f"phochutich.cd.{s}", person(), Role.UPPER_CHAIR, cid),
            (f"ketoan.cd.{s}", person(), Role.TREASURER, cid),
            (f"ubkt.cd.{s}", person(), Role.AUDITOR, cid),
        ]
        for u in units:
            if u.level is not OrgLevel.GRASSROOTS or u.parent_id != cid:
                continue
            tag = f"{s}{u.index}"
            plan += [
                (f"canbo.{tag}", person(), Role.GRASSROOTS_OFFICER, u.id),
                (f"chutich.{tag}", person(), Role.GRASSROOTS_CHAIR, u.id),
            ]
            if u.index == 1:
                # A deputy chair: flagged cases need a second approver at each step.
                plan += [
                    (f"phochutich.{tag}", person(), Role.GRASSROOTS_CHAIR, u.id),
                    (f"ketoan.{tag}", person(), Role.TREASURER, u.id),
                ]
    return plan


def _next_tet(today: date) -> date:
    for tet in _TET:
        if tet - timedelta(days=30) > today:
            return tet
    return date(today.year + 1, 2, 1)  # beyond the table: a plausible mid-season date


def _can_chi(year: int) -> str:
    return f"{_CAN[year % 10]} {_CHI[year % 12]}"


def campaign_codes(today: date) -> dict[str, str]:
    """The campaign codes seed_demo declares when seeding on `today` (policy → code)."""
    flood = today - timedelta(days=2)
    return {
        "tet": f"TET-{_next_tet(today).year}",
        "job_loss": f"VIECLAM-{today.year}",
        "disaster": f"LUQUET-{flood:%Y%m%d}",
    }


def _declare_campaigns(app: App, actor: str, today: date, sizes: dict[str, int]) -> None:
    codes = campaign_codes(today)
    tet = _next_tet(today)
    opens = today - timedelta(days=7)
    closes = max(tet - timedelta(days=21), today + timedelta(days=60))
    # C13: each grassroots union may list about a third of its members.
    quotas = {unit: max(1, round(n * 0.3)) for unit, n in sorted(sizes.items())}
    app.admin.declare_campaign(
        actor,
        DeclareCampaign(
            policy="tet",
            code=codes["tet"],
            title=f"Chương trình Tết Sum vầy – Xuân {_can_chi(tet.year)} {tet.year}",
            opens_on=opens,
            closes_on=closes,
            event_from=opens,
            event_to=closes,
            quotas=quotas,
        ),
    )
    app.admin.declare_campaign(
        actor,
        DeclareCampaign(
            policy="job_loss",
            code=codes["job_loss"],
            title=f"Hỗ trợ đoàn viên bị giảm giờ làm, mất việc làm năm {today.year}",
            opens_on=today - timedelta(days=14),
            closes_on=today + timedelta(days=76),
            event_from=today - timedelta(days=180),
            event_to=today + timedelta(days=76),
            dues_cutoff=today - timedelta(days=90),
        ),
    )
    flood = today - timedelta(days=2)
    names = ", ".join(FLOOD_COMMUNES)
    app.admin.declare_campaign(
        actor,
        DeclareCampaign(
            policy="disaster",
            code=codes["disaster"],
            title=f"Lũ quét, sạt lở đất ngày {flood:%d/%m/%Y} tại các xã {names}",
            opens_on=flood,
            closes_on=flood + timedelta(days=30),  # default claim window, §5.5
            event_from=flood - timedelta(days=1),
            event_to=flood,
            affected_communes=[laichau.commune_id(p) for p in FLOOD_COMMUNES],
        ),
    )


def seed_demo(app: App, *, members: int = 300, seed: int = 7) -> DemoAccounts:
    """Write the Lai Châu demo world through `app.admin` and return the demo accounts.

    Idempotent: when the province unit "LC" already exists nothing is written and the
    accounts already in the database are returned (with `created=False`). A seed that was
    interrupted half-way is not repaired; start again from an empty database.
    """
    if _province_exists(app):
        return load_accounts(app, created=False)
    admin, actor = app.admin, SEED_ACTOR
    today = _today(app)
    units = laichau.org_tree(seed)
    for u in units:
        admin.add_org_unit(actor, u.id, u.name, u.level, u.parent_id, u.commune_code)
    people = laichau.generate_people(units, members, seed, today)
    sizes: dict[str, int] = {}
    for p in people:
        admin.add_member(
            actor,
            cccd=p.cccd,
            full_name=p.full_name,
            dob=p.dob,
            sex=p.sex,
            unit_id=p.unit_id,
            joined_on=p.joined_on,
            household_key=p.household_key,
            commune_code=p.commune_code,
            phone=p.phone,
            left_on=p.left_on,
        )
        if p.left_on is None:
            sizes[p.unit_id] = sizes.get(p.unit_id, 0) + 1

    names = {u.id: u.name for u in units}
    valid_from = min(GRANTS_FROM, today)
    accounts: list[DemoAccount] = []
    for username, display, role, unit in _account_plan(units, random.Random(f"accounts-{seed}")):
        acc = admin.add_account(actor, username=username, display_name=display, home_unit_id=unit)
        admin.grant_role(actor, acc, role, unit, valid_from)
        accounts.append(
            DemoAccount(username, display, role, ROLE_TITLES[role][0], unit, names[unit], acc)
        )

    funds: set[tuple[str, str]] = set()
    for defn in app.definitions.versions.values():
        for f in [defn.funding, *(s.funding for s in defn.subtypes.values() if s.funding)]:
            if f is not None:
                funds.add((f.level.value, f.fund))
    # The next year's estimate is known by late autumn, and cases opened then (the demo story
    # runs about five weeks) may be decided after New Year, against next year's budget.
    years = [today.year, today.year + 1] if today.month >= 11 else [today.year]
    for level, fund in sorted(funds):
        amount = _BUDGETS.get((level, fund), _DEFAULT_BUDGET.get(level, 0))
        for u in units:
            if u.level.value != level:
                continue
            scaled = amount * 2 if u.place in ("Tân Phong", "Đoàn Kết") else amount
            for year in years:
                admin.set_budget(actor, u.id, year, fund, scaled)

    standing = next(a.account_id for a in accounts if a.username == "thuongtruc.ldld")
    _declare_campaigns(app, standing, today, sizes)
    return DemoAccounts(tuple(accounts), created=True)
