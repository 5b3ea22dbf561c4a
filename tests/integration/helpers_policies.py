"""Small helpers for the per-policy behaviour tests (housing, illness, job_loss).

They read the database directly (counts, budgets, decisions, claim keys) so the tests can
assert what a command wrote, and what a refused command did not write.

`world` here is the world of tests/support.py, built once per database kind by `build_world`
and then copied for each test (an SQLite backup, or a PostgreSQL database created from a
template database): the same org tree, accounts and budgets, without paying for migrations
and ~60 setup commands in every test. Import it into a test module to use it there.
"""

import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, make_url, select
from sqlalchemy.exc import OperationalError

from domain.adapters.db import make_engine
from domain.adapters.repository import (
    AUDIT,
    BUDGET,
    CASE,
    CLAIM_KEY,
    DECISION,
    DOCUMENT,
    PAYMENT,
    TASK,
)
from domain.bootstrap import App
from domain.config import Settings
from domain.errors import DomainError
from domain.roles import Role
from domain.service.admin import Admin
from domain.service.commands import DocumentIn, ProvideInformation
from domain.service.queries import case_status, verify_audit
from domain.service.welfare import WelfareService
from tests.support import (
    DEFS,
    POSTGRES_URL,
    Clock,
    Database,
    World,
    build_world,
    sha,
    sqlite_database,
)

YEAR = 2026

# --- a world per test, copied from one built per database kind --------------------------------


@dataclass
class _Template:
    app: App
    accounts: dict[str, str]
    location: str  # the SQLite file, or the PostgreSQL template database's name


def _pg_url(name: str) -> Any:
    assert POSTGRES_URL
    return make_url(POSTGRES_URL).set(database=name)


SPARES = 3


class _PostgresCopies:
    """Databases created from the template one test ahead, and dropped, on a worker thread.

    CREATE DATABASE … TEMPLATE costs 0.1–0.3 s on a busy server; doing it while the previous
    test runs keeps that off the critical path.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self.admin = create_engine(
            POSTGRES_URL or "", isolation_level="AUTOCOMMIT", pool_size=SPARES
        )
        self.worker = ThreadPoolExecutor(max_workers=SPARES, thread_name_prefix="pg-copies")
        self.spares: deque[Future[str]] = deque()

    def _create(self) -> str:
        name = f"welfare_t_{uuid.uuid4().hex[:12]}"
        for attempt in range(50):
            try:
                with self.admin.connect() as c:
                    c.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                return name
            except OperationalError as exc:  # e.g. autovacuum is visiting the template
                if "being accessed by other users" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def _drop(self, name: str) -> None:
        with self.admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self) -> str:
        while len(self.spares) <= SPARES:
            self.spares.append(self.worker.submit(self._create))
        return self.spares.popleft().result()

    def give_back(self, name: str) -> None:
        self.worker.submit(self._drop, name)

    def close(self) -> None:
        while self.spares:
            self.give_back(self.spares.popleft().result())
        self.worker.submit(self._drop, self.template)
        self.worker.shutdown(wait=True)
        self.admin.dispose()


class _Templates:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.made: dict[str, _Template] = {}
        self.pg: _PostgresCopies | None = None

    def get(self, kind: str) -> _Template:
        if kind not in self.made:
            self.made[kind] = self._sqlite() if kind == "sqlite" else self._postgres()
        return self.made[kind]

    def _sqlite(self) -> _Template:
        db = sqlite_database(self.tmp)
        w = build_world(db, self.tmp, Clock())
        db.engine.dispose()
        return _Template(w.app, dict(w.accounts), str(self.tmp / "welfare.db"))

    def _postgres(self) -> _Template:
        name = f"welfare_tmpl_{uuid.uuid4().hex[:12]}"
        self.pg = _PostgresCopies(name)
        with self.pg.admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = _pg_url(name)
        engine = create_engine(url)
        w = build_world(
            Database("postgres", url.render_as_string(False), engine), self.tmp, Clock()
        )
        engine.dispose()
        return _Template(w.app, dict(w.accounts), name)

    def close(self) -> None:
        if self.pg is not None:
            self.pg.close()


_templates: _Templates | None = None


def _session_templates(request: pytest.FixtureRequest) -> _Templates:
    """One set of templates per test session, dropped when the session ends."""
    global _templates
    if _templates is None:
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        _templates = _Templates(factory.mktemp("policy-world"))
        request.config.add_cleanup(_templates.close)
    return _templates


@pytest.fixture(params=["sqlite", "postgres"], name="world")
def copied_world(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: Clock,
) -> Iterator[World]:
    """The `world` of tests/conftest.py (same tree, accounts, budgets, clock), copied."""
    kind = request.param
    if kind == "postgres" and not POSTGRES_URL:
        pytest.skip("WELFARE_TEST_POSTGRES_URL is not set")
    templates = _session_templates(request)
    template = templates.get(kind)
    name = None
    if kind == "sqlite":
        path = tmp_path / "welfare.db"
        src, dst = sqlite3.connect(template.location), sqlite3.connect(path)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        url = f"sqlite:///{path}"
        engine = make_engine(url)
    else:
        assert templates.pg is not None
        name = templates.pg.take()
        url = _pg_url(name).render_as_string(False)
        engine = create_engine(url, pool_size=5, max_overflow=10)
    base = template.app.service
    service = WelfareService(
        engine, base.definitions, base.calendar, clock=clock, screen_inline=base.screen_inline
    )
    settings = Settings(database_url=url, definitions_dir=DEFS, data_dir=tmp_path)
    app = App(settings, engine, base.definitions, service, Admin(service))
    try:
        yield World(app, clock, dict(template.accounts))
    finally:
        engine.dispose()
        if name is not None:
            assert templates.pg is not None
            templates.pg.give_back(name)


def person(world: World, unit: str = "CS-A", **kw: Any) -> str:
    """A member with a date of birth of their own, so no two look like one person (C2)."""
    kw.setdefault("dob", date(1975, 1, 1) + timedelta(days=97 * (world.serial + 1)))
    return world.member(unit, **kw)


def account(
    world: World,
    name: str,
    roles: Sequence[tuple[Role, str]],
    *,
    home: str,
    member_id: str | None = None,
) -> str:
    """An account holding several roles, with a home unit of its own."""
    acc = world.admin.add_account(
        "test", username=name, display_name=name, home_unit_id=home, member_id=member_id
    )
    for role, unit in roles:
        world.admin.grant_role("test", acc, role, unit, date(2020, 1, 1))
    world.accounts[name] = acc
    return acc


def status(world: World, case_id: str) -> dict[str, Any]:
    row = case_status(world.app.engine, case_id)
    assert row is not None
    return row


def budget(world: World, unit: str, fund: str, year: int = YEAR) -> dict[str, int]:
    b = BUDGET.c
    with world.app.engine.connect() as conn:
        row = conn.execute(
            select(b.amount, b.reserved, b.spent).where(
                b.org_unit_id == unit, b.year == year, b.fund == fund
            )
        ).one()
    return {"amount": row[0], "reserved": row[1], "spent": row[2]}


def counts(world: World) -> dict[str, int]:
    """Row counts of everything a case command may write."""
    with world.app.engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (CASE, TASK, DECISION, DOCUMENT, PAYMENT, CLAIM_KEY, AUDIT)
        }


def budgets(world: World) -> list[tuple[str, str, int, int]]:
    b = BUDGET.c
    with world.app.engine.connect() as conn:
        return [
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                select(b.org_unit_id, b.fund, b.reserved, b.spent).order_by(b.org_unit_id, b.fund)
            )
        ]


def claim_keys(world: World, case_id: str) -> list[str]:
    with world.app.engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(select(CLAIM_KEY.c.key).where(CLAIM_KEY.c.case_id == case_id))
        ]


def decisions(world: World, case_id: str) -> list[tuple[str, str, str, int | None]]:
    """(username, step, action, amount) of every decision on the case, in order."""
    names = {v: k for k, v in world.accounts.items()}
    d = DECISION.c
    with world.app.engine.connect() as conn:
        rows = conn.execute(
            select(d.actor_id, d.step, d.action, d.amount)
            .where(d.case_id == case_id)
            .order_by(d.at, d.id)
        ).all()
    return [(names.get(r[0], r[0]), r[1], r[2], r[3]) for r in rows]


def votes(world: World, case_id: str, step: str) -> dict[str, str]:
    return {who: action for who, s, action, _ in decisions(world, case_id) if s == step}


def audit_ok(world: World) -> bool:
    return verify_audit(world.app.engine).ok


def assert_task(
    world: World,
    case_id: str,
    step: str,
    role: str,
    unit: str,
    *,
    approvals_needed: int | None = None,
    tranche: int | None = None,
) -> dict[str, Any]:
    task = world.task(case_id)
    assert (task["step"], task["role"], task["org_unit_id"]) == (step, role, unit)
    if approvals_needed is not None:
        assert task["approvals_needed"] == approvals_needed
    if tranche is not None:
        assert task["tranche"] == tranche
    return task


def approve_all(world: World, case_id: str, *approvers: str) -> None:
    for who in approvers:
        world.decide(case_id, who)


@contextmanager
def refused(world: World, error: type[DomainError], **expected: Any) -> Iterator[Any]:
    """The block raises `error` with the expected attributes and writes nothing at all."""
    before = counts(world)
    spent = budgets(world)
    with pytest.raises(error) as info:
        yield info
    for attr, value in expected.items():
        assert getattr(info.value, attr) == value, (attr, getattr(info.value, attr))
    assert counts(world) == before
    assert budgets(world) == spent
    assert audit_ok(world)


def failed_rules(err: DomainError) -> list[str]:
    return [str(c["rule"]) for c in err.checks if c["outcome"] == "failed"]


def copy_of(doc: DocumentIn, filename: str = "copy.pdf") -> DocumentIn:
    """The same file (same sha256) uploaded again under another name."""
    return DocumentIn(kind=doc.kind, filename=filename, sha256=doc.sha256, size=doc.size)


def new_doc(kind: str, salt: str) -> DocumentIn:
    return DocumentIn(
        kind=kind, filename=f"{kind}-{salt}.pdf", sha256=sha(f"{kind}:{salt}"), size=10
    )


def provide(
    world: World,
    case_id: str,
    *,
    by: str = "officer_a",
    form: dict[str, Any] | None = None,
    documents: list[DocumentIn] | None = None,
    note: str | None = "bổ sung",
) -> Any:
    return world.service.provide_information(
        world.accounts[by],
        ProvideInformation(case_id=case_id, form=form or {}, documents=documents or [], note=note),
    )


def withdraw(world: World, case_id: str, by: str = "officer_a", reason: str = "rút hồ sơ") -> Any:
    return world.service.withdraw(world.accounts[by], case_id, reason)
