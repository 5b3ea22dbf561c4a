"""Small helpers shared by the disaster, Tết, list, SLA, task and invariant tests.

They read the database directly (counts, outbox, budgets) so a test can assert what a command
wrote, or that a refused command wrote nothing at all.
"""

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from domain.adapters.repository import (
    AUDIT,
    BUDGET,
    CASE,
    CASE_LIST,
    CLAIM_KEY,
    DECISION,
    DOCUMENT,
    OUTBOX,
    PAYMENT,
    TASK,
)
from domain.errors import DomainError
from domain.service.commands import DocumentIn, ProvideInformation
from domain.workcalendar import VN_TZ
from tests.support import (
    POSTGRES_URL,
    Clock,
    World,
    build_world,
    postgres_database,
    sha,
    sqlite_database,
)

WRITTEN_TABLES = {
    "case": CASE,
    "case_list": CASE_LIST,
    "task": TASK,
    "decision": DECISION,
    "document": DOCUMENT,
    "payment": PAYMENT,
    "claim_key": CLAIM_KEY,
    "audit": AUDIT,
    "outbox": OUTBOX,
}

_dob_serial = [0]


@pytest.fixture(scope="class", params=["sqlite", "postgres"])
def shared(request: Any, tmp_path_factory: Any) -> Iterator[World]:
    """One world per test class (SQLite and PostgreSQL), for tests that only add their own
    members, campaigns and cases and never move the clock: the setup is paid once per class."""
    if request.param == "postgres" and not POSTGRES_URL:
        pytest.skip("WELFARE_TEST_POSTGRES_URL is not set")
    tmp = tmp_path_factory.mktemp("shared")
    database = sqlite_database(tmp) if request.param == "sqlite" else postgres_database()
    try:
        yield build_world(database, tmp, Clock())
    finally:
        database.close()


class SharedWorld:
    """Base for test classes whose `world` is the class's shared one."""

    @pytest.fixture
    def world(self, shared: World) -> World:
        return shared


def code(prefix: str) -> str:
    """A campaign code no other test in a shared world uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def person(world: World, unit: str = "CS-A", **kw: Any) -> str:
    """A member with a date of birth of their own, so C2 (same name and birth date) stays quiet."""
    _dob_serial[0] += 1
    n = _dob_serial[0]
    kw.setdefault("dob", date(1965, 1, 1) + timedelta(days=(n * 37) % 12_000))
    kw.setdefault("commune", "DK" if unit == "CS-C" else "TP")
    return world.member(unit, **kw)


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A Lai Châu wall-clock time as an aware UTC datetime."""
    return datetime.combine(date(y, m, d), time(hh, mm), tzinfo=VN_TZ).astimezone(UTC)


def counts(world: World) -> dict[str, int]:
    """Row counts of every table a command writes, plus budget totals, in one query."""
    columns = [
        select(func.count()).select_from(table).scalar_subquery().label(name)
        for name, table in WRITTEN_TABLES.items()
    ]
    columns.append(
        select(func.coalesce(func.sum(BUDGET.c.reserved), 0))
        .scalar_subquery()
        .label("budget_reserved")
    )
    columns.append(
        select(func.coalesce(func.sum(BUDGET.c.spent), 0)).scalar_subquery().label("budget_spent")
    )
    with world.app.engine.connect() as conn:
        row = conn.execute(select(*columns)).mappings().one()
    return {k: int(v) for k, v in row.items()}


E = TypeVar("E", bound=DomainError)


def refused(world: World, exc_type: type[E], call: Callable[[], object]) -> E:
    """Run a command that must be refused, and check that it wrote nothing at all."""
    before = counts(world)
    with pytest.raises(exc_type) as info:
        call()
    assert counts(world) == before
    return info.value


def outbox(
    world: World, case_id: str | None = None, type_: str | None = None
) -> list[dict[str, Any]]:
    q = select(OUTBOX).order_by(OUTBOX.c.seq)
    if case_id is not None:
        q = q.where(OUTBOX.c.case_id == case_id)
    if type_ is not None:
        q = q.where(OUTBOX.c.type == type_)
    with world.app.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def audit_actions(world: World, action: str | None = None) -> list[dict[str, Any]]:
    q = select(AUDIT).order_by(AUDIT.c.seq)
    if action is not None:
        q = q.where(AUDIT.c.action == action)
    with world.app.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def tasks_of(world: World, case_id: str) -> list[dict[str, Any]]:
    with world.app.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(TASK).where(TASK.c.case_id == case_id).order_by(TASK.c.opened_at)
            ).mappings()
        ]


def claim_keys_of(world: World, case_id: str) -> list[str]:
    with world.app.engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(select(CLAIM_KEY.c.key).where(CLAIM_KEY.c.case_id == case_id))
        ]


def cases_of_member(world: World, member_id: str) -> list[dict[str, Any]]:
    with world.app.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(select(CASE).where(CASE.c.member_id == member_id)).mappings()
        ]


def budget(world: World, unit: str, fund: str, year: int = 2026) -> dict[str, int]:
    with world.app.engine.connect() as conn:
        r = conn.execute(
            select(BUDGET.c.amount, BUDGET.c.reserved, BUDGET.c.spent).where(
                BUDGET.c.org_unit_id == unit, BUDGET.c.year == year, BUDGET.c.fund == fund
            )
        ).one()
    return {"amount": int(r[0]), "reserved": int(r[1]), "spent": int(r[2])}


def doc(kind: str, salt: str = "") -> DocumentIn:
    return DocumentIn(kind=kind, filename=f"{kind}.pdf", sha256=sha(f"{kind}/{salt}"), size=2048)


def provide(world: World, case_id: str, by: str = "officer_a", **kw: Any) -> Any:
    return world.service.provide_information(
        world.accounts[by], ProvideInformation(case_id=case_id, **kw)
    )


def race(*calls: Callable[[], Any]) -> list[tuple[str, Any]]:
    """Run the calls at the same moment, one thread each; ("ok", result) or ("err", exception)."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[str, Any]] = [("err", None)] * len(calls)

    def run(i: int, fn: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = ("ok", fn())
        except BaseException as exc:  # collected and asserted on by the test
            results[i] = ("err", exc)

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing command hung"
    return results
