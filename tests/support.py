"""Test support: databases on SQLite and PostgreSQL, a controllable clock, and a small world.

`World` builds a realistic slice of the union tree (province → ward union → two grassroots
unions), one account per role, budgets, and helpers to drive cases through the service.
"""

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select

from domain.adapters.db import make_engine
from domain.adapters.repository import MEMBER
from domain.bootstrap import App, bootstrap
from domain.cccd import make_cccd
from domain.config import PROJECT_ROOT, Settings
from domain.model import CaseAggregate
from domain.roles import OrgLevel, Role
from domain.service.admin import Admin
from domain.service.commands import Decide, DeclareCampaign, DocumentIn, RecordPayment, SubmitCase
from domain.service.queries import open_tasks
from domain.service.welfare import Submitted, WelfareService

POSTGRES_URL = os.environ.get("WELFARE_TEST_POSTGRES_URL")
DEFS = PROJECT_ROOT / "workflow_defs"


class Clock:
    """A clock tests move by hand; starts on a Monday morning in Lai Châu (UTC+7)."""

    def __init__(self, start: datetime = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now

    def today(self) -> date:
        return (self.now + timedelta(hours=7)).date()


@dataclass
class Database:
    kind: str
    url: str
    engine: Engine
    _drop: Any = None

    def close(self) -> None:
        self.engine.dispose()
        if self._drop:
            self._drop()


def query_plan(db: Database, sql: str, params: Any = None) -> str:
    """The database's plan for `sql`, as one line: SQLite's EXPLAIN QUERY PLAN, PostgreSQL's
    EXPLAIN with sequential scans off (a test's tables are too small for a planner to prefer
    an index it can use)."""
    with db.engine.begin() as conn:
        if db.kind == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
            return " ".join(str(r[-1]) for r in rows)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return " ".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {sql}", params))


def sqlite_database(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'welfare.db'}"
    return Database("sqlite", url, make_engine(url))


def postgres_database() -> Database:
    """A fresh schema per test on the shared server: isolated, and dropped afterwards."""
    assert POSTGRES_URL
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine = create_engine(
        POSTGRES_URL,
        connect_args={"options": f"-csearch_path={schema}"},
        pool_size=5,
        max_overflow=10,
    )

    def drop() -> None:
        with admin.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()

    return Database("postgres", POSTGRES_URL, engine, drop)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class World:
    app: App
    clock: Clock
    accounts: dict[str, str] = field(default_factory=dict)
    serial: int = 0

    @property
    def service(self) -> WelfareService:
        return self.app.service

    @property
    def admin(self) -> Admin:
        return self.app.admin

    def account(self, name: str, role: Role | None, unit: str, member_id: str | None = None) -> str:
        acc = self.admin.add_account(
            "test", username=name, display_name=name, home_unit_id=unit, member_id=member_id
        )
        if role is not None:
            self.admin.grant_role("test", acc, role, unit, date(2020, 1, 1))
        self.accounts[name] = acc
        return acc

    def member(
        self,
        unit: str = "CS-A",
        *,
        joined: date = date(2015, 1, 1),
        dob: date = date(1990, 5, 17),
        sex: str = "male",
        name: str = "Giàng A Pếnh",
        household: str | None = None,
        commune: str | None = "TP",
    ) -> str:
        self.serial += 1
        return self.admin.add_member(
            "test",
            cccd=make_cccd("012", dob, "male" if sex == "male" else "female", self.serial),
            full_name=name,
            dob=dob,
            sex=sex,
            unit_id=unit,
            joined_on=joined,
            household_key=household,
            commune_code=commune,
        )

    def card(self, member_id: str) -> dict[str, Any]:
        """The CCCD and date of birth on a member's card (how a union finds a registered
        person who joins it)."""
        with self.app.engine.connect() as conn:
            row = conn.execute(
                select(MEMBER.c.cccd, MEMBER.c.dob).where(MEMBER.c.id == member_id)
            ).one()
        return {"cccd": row.cccd, "dob": row.dob}

    def docs(self, policy: str, subtype: str, salt: str = "") -> list[DocumentIn]:
        defn = self.app.definitions.current(policy)
        return [
            DocumentIn(
                kind=k,
                filename=f"{k}.pdf",
                sha256=sha(f"{k}{salt}{self.serial}{uuid.uuid4()}"),
                size=1000,
            )
            for k in defn.subtypes[subtype].documents
        ]

    def submit(
        self,
        policy: str,
        subtype: str,
        member_id: str,
        *,
        unit: str = "CS-A",
        by: str = "officer_a",
        event_date: date | None = None,
        form: dict[str, Any] | None = None,
        amount: int | None = None,
        campaign_id: str | None = None,
        documents: list[DocumentIn] | None = None,
    ) -> Submitted:
        return self.service.submit(
            self.accounts[by],
            SubmitCase(
                policy=policy,
                unit_id=unit,
                member_id=member_id,
                subtype=subtype,
                event_date=event_date or self.clock.today(),
                form=form or {},
                requested_amount=amount,
                campaign_id=campaign_id,
                documents=documents if documents is not None else self.docs(policy, subtype),
            ),
        )

    def task(self, case_id: str) -> dict[str, Any]:
        tasks = open_tasks(self.app.engine, case_id)
        assert len(tasks) == 1, tasks
        return tasks[0]

    def decide(self, case_id: str, by: str, action: str = "approve", **kw: Any) -> CaseAggregate:
        return self.service.decide(
            self.accounts[by], Decide(task_id=self.task(case_id)["id"], action=action, **kw)
        )

    def pay(
        self, case_id: str, amount: int, by: str = "treasurer_province", ref: str = "UNC-1"
    ) -> CaseAggregate:
        return self.service.record_payment(
            self.accounts[by],
            RecordPayment(case_id=case_id, amount=amount, method="bank_transfer", reference=ref),
        )

    def campaign(self, policy: str, code: str, **kw: Any) -> str:
        today = self.clock.today()
        args: dict[str, Any] = {
            "opens_on": today - timedelta(days=10),
            "closes_on": today + timedelta(days=60),
            "event_from": today - timedelta(days=60),
            "event_to": today + timedelta(days=60),
            "title": code,
        }
        args.update(kw)
        return self.admin.declare_campaign(
            self.accounts["province_standing"], DeclareCampaign(policy=policy, code=code, **args)
        )


def build_world(
    db: Database, tmp_path: Path, clock: Clock | None = None, definitions_dir: Path = DEFS
) -> World:
    clock = clock or Clock()
    settings = Settings(database_url=db.url, definitions_dir=definitions_dir, data_dir=tmp_path)
    app = bootstrap(settings, engine=db.engine, clock=clock)
    w = World(app, clock)
    a = app.admin
    a.add_org_unit("test", "VN", "Tổng Liên đoàn Lao động Việt Nam", OrgLevel.FEDERATION, None)
    a.add_org_unit("test", "LC", "Liên đoàn Lao động tỉnh Lai Châu", OrgLevel.PROVINCE, "VN")
    a.add_org_unit("test", "TP", "Công đoàn phường Tân Phong", OrgLevel.UPPER, "LC", "TP")
    a.add_org_unit("test", "DK", "Công đoàn phường Đoàn Kết", OrgLevel.UPPER, "LC", "DK")
    a.add_org_unit(
        "test", "CS-A", "CĐCS Công ty CP Thủy điện Nậm Na", OrgLevel.GRASSROOTS, "TP", "TP"
    )
    a.add_org_unit("test", "CS-B", "CĐCS Hợp tác xã Chè Tân Uyên", OrgLevel.GRASSROOTS, "TP", "TP")
    a.add_org_unit(
        "test", "CS-C", "CĐCS Công ty TNHH Xây dựng Đoàn Kết", OrgLevel.GRASSROOTS, "DK", "DK"
    )
    for name, role, unit in [
        ("officer_a", Role.GRASSROOTS_OFFICER, "CS-A"),
        ("officer_a2", Role.GRASSROOTS_OFFICER, "CS-A"),
        ("chair_a", Role.GRASSROOTS_CHAIR, "CS-A"),
        ("chair_a2", Role.GRASSROOTS_CHAIR, "CS-A"),
        ("officer_b", Role.GRASSROOTS_OFFICER, "CS-B"),
        ("chair_b", Role.GRASSROOTS_CHAIR, "CS-B"),
        ("officer_c", Role.GRASSROOTS_OFFICER, "CS-C"),
        ("chair_c", Role.GRASSROOTS_CHAIR, "CS-C"),
        ("upper_tp", Role.UPPER_CHAIR, "TP"),
        ("upper_tp2", Role.UPPER_CHAIR, "TP"),
        ("upper_dk", Role.UPPER_CHAIR, "DK"),
        ("province_standing", Role.PROVINCE_STANDING, "LC"),
        ("province_standing2", Role.PROVINCE_STANDING, "LC"),
        ("province_policy", Role.PROVINCE_POLICY, "LC"),
        ("president", Role.PROVINCE_PRESIDENT, "LC"),
        ("board1", Role.PROVINCE_BOARD, "LC"),
        ("board2", Role.PROVINCE_BOARD, "LC"),
        ("board3", Role.PROVINCE_BOARD, "LC"),
        ("treasurer_province", Role.TREASURER, "LC"),
        ("treasurer_tp", Role.TREASURER, "TP"),
        ("treasurer_a", Role.TREASURER, "CS-A"),
        ("treasurer_c", Role.TREASURER, "CS-C"),
        ("auditor", Role.AUDITOR, "LC"),
        ("auditor_tp", Role.AUDITOR, "TP"),
    ]:
        w.account(name, role, unit)
    year = clock.today().year
    funds: set[tuple[str, str]] = set()
    for defn in app.definitions.versions.values():
        for f in [defn.funding, *(s.funding for s in defn.subtypes.values() if s.funding)]:
            assert f is not None
            funds.add((f.level.value, f.fund))
    units = {"province": ["LC"], "upper": ["TP", "DK"], "grassroots": ["CS-A", "CS-B", "CS-C"]}
    for level, fund in funds:
        for unit in units.get(level, []):
            a.set_budget("test", unit, year, fund, 2_000_000_000)
    return w


def iter_databases() -> Iterator[str]:
    yield "sqlite"
    if POSTGRES_URL:
        yield "postgres"
