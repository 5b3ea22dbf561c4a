"""A benchmark world: the union tree, one account per role, budgets, and many members.

Org units, accounts and budgets go through the Admin service (a handful of commands); the
members are bulk-inserted with plain SQL because their set-up is not what is measured.
Every member is eligible for one housing repair and one hospital-stay visit, so no rule
refuses or flags a benchmark case.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, insert

from bench.dbs import BenchDb
from domain.adapters import tables as t
from domain.bootstrap import App, bootstrap
from domain.cccd import make_cccd
from domain.config import PROJECT_ROOT, Settings
from domain.ids import new_id
from domain.roles import OrgLevel, Role
from domain.text import name_key
from domain.workcalendar import VN_TZ

GRASSROOTS = ("CS-A", "CS-B", "CS-C", "CS-D")
UPPER_OF = {"CS-A": "TP", "CS-B": "TP", "CS-C": "DK", "CS-D": "DK"}
BUDGET = 10**15  # đồng: never the limiting factor in a benchmark
ADMIN = "bench"


@dataclass
class WorldSpec:
    """Ids a benchmark needs to drive cases; plain data, so it can go to a child process."""

    accounts: dict[str, str] = field(default_factory=dict)  # name -> account id
    members: dict[str, list[str]] = field(default_factory=dict)  # grassroots unit -> member ids


def app_for(db: BenchDb, engine: Engine) -> App:
    settings = Settings(
        database_url=db.url, definitions_dir=PROJECT_ROOT / "workflow_defs", screening="inline"
    )
    return bootstrap(settings, migrate=False, engine=engine)


def build_world(app: App, members_per_unit: int) -> WorldSpec:
    a = app.admin
    spec = WorldSpec()
    a.add_org_unit(ADMIN, "VN", "Tổng Liên đoàn Lao động Việt Nam", OrgLevel.FEDERATION, None)
    a.add_org_unit(ADMIN, "LC", "Liên đoàn Lao động tỉnh Lai Châu", OrgLevel.PROVINCE, "VN")
    a.add_org_unit(ADMIN, "TP", "Công đoàn phường Tân Phong", OrgLevel.UPPER, "LC", "TP")
    a.add_org_unit(ADMIN, "DK", "Công đoàn phường Đoàn Kết", OrgLevel.UPPER, "LC", "DK")
    for unit in GRASSROOTS:
        upper = UPPER_OF[unit]
        a.add_org_unit(ADMIN, unit, f"CĐCS {unit}", OrgLevel.GRASSROOTS, upper, upper)
    roles: list[tuple[str, Role, str]] = [
        ("province_standing", Role.PROVINCE_STANDING, "LC"),
        ("treasurer_province", Role.TREASURER, "LC"),
        ("upper_TP", Role.UPPER_CHAIR, "TP"),
        ("upper_DK", Role.UPPER_CHAIR, "DK"),
    ]
    for unit in GRASSROOTS:
        roles += [
            (f"officer_{unit}", Role.GRASSROOTS_OFFICER, unit),
            (f"chair_{unit}", Role.GRASSROOTS_CHAIR, unit),
            (f"treasurer_{unit}", Role.TREASURER, unit),
        ]
    for name, role, unit in roles:
        acc = a.add_account(ADMIN, username=name, display_name=name, home_unit_id=unit)
        a.grant_role(ADMIN, acc, role, unit, date(2020, 1, 1))
        spec.accounts[name] = acc
    year = datetime.now(UTC).astimezone(VN_TZ).year
    for y in (year, year + 1):  # a run across New Year's Eve still finds its budget
        a.set_budget(ADMIN, "LC", y, "mai_am", BUDGET)
        a.set_budget(ADMIN, "LC", y, "xa_hoi", BUDGET)
        for unit in GRASSROOTS:
            a.set_budget(ADMIN, unit, y, "phuc_loi", BUDGET)
    for unit in GRASSROOTS:
        spec.members[unit] = add_members(app.engine, unit, members_per_unit)
    return spec


_serial = 0


def add_members(engine: Engine, unit: str, n: int) -> list[str]:
    """`n` members of `unit`, each their own household, joined in 2015 (tenure is no issue)."""
    global _serial
    now = datetime.now(UTC)
    members: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    households: list[dict[str, Any]] = []
    ids = []
    for _ in range(n):
        _serial += 1
        mid = new_id()
        # Distinct birthdays keep the possible-duplicate check (C2: same name and birthday) quiet.
        dob = date(1970, 1, 1) + timedelta(days=_serial % 12_000)
        sex: Literal["male", "female"] = "male" if _serial % 2 else "female"
        name = f"Đoàn viên {unit} {_serial:07d}"
        members.append(
            {
                "id": mid,
                "cccd": make_cccd("012", dob, sex, _serial % 1_000_000),
                "full_name": name,
                "name_key": name_key(name),
                "dob": dob,
                "sex": sex,
                "household_key": f"hh-{mid}",
                "commune_code": UPPER_OF[unit],
                "phone": None,
                "created_at": now,
            }
        )
        links.append({"member_id": mid, "unit_id": unit, "joined_on": date(2015, 1, 1)})
        households.append({"key": f"hh-{mid}", "version": 0})
        ids.append(mid)
    with engine.begin() as conn:
        conn.execute(insert(t.MemberRow.__table__), members)  # type: ignore[attr-defined]
        conn.execute(insert(t.MembershipRow.__table__), links)  # type: ignore[attr-defined]
        conn.execute(insert(t.HouseholdRow.__table__), households)  # type: ignore[attr-defined]
    return ids
