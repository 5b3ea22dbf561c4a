"""The repository's prepared path (domain/adapters/prepared.py), on SQLite and PostgreSQL.

It skips SQLAlchemy's per-call machinery, so these tests pin down what it must still do as
`Connection.execute` does: the same values read back (aware UTC times, dates, JSON), driver
errors turned into SQLAlchemy's (so a unit of work reports a Conflict), row-count checks, and —
in a PostgreSQL pipeline — nothing read before it exists and nothing prefetched read twice.
"""

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from domain.adapters import repository as r
from domain.adapters.prepared import Prepared
from domain.adapters.repository import (
    ACCOUNT,
    CASE,
    CLAIM_KEY,
    HOUSEHOLD,
    MEMBER,
    Repository,
)
from domain.adapters.unit_of_work import UnitOfWork
from domain.errors import Conflict
from tests.support import World


@pytest.fixture
def case_id(world: World) -> str:
    member = world.member()
    event = world.clock.today() - timedelta(days=3)
    form = {"admission_date": event.isoformat(), "facility": "Bệnh viện Đa khoa tỉnh Lai Châu"}
    return world.submit(
        "illness", "hospital", member, event_date=event, form=form, amount=800_000
    ).case_id


class TestValuesAreThoseOfConnectionExecute:
    def test_a_case_and_its_tasks_read_the_same_through_both_paths(
        self, world: World, case_id: str
    ) -> None:
        with world.app.engine.connect() as conn:
            x = Prepared(conn)
            for stmt in (r._SEL_CASE, r._SEL_TASKS, r._SEL_DOCUMENTS):
                plain = [dict(m) for m in conn.execute(stmt, {"b_id": case_id}).mappings()]
                assert x.rows(stmt, {"b_id": case_id}) == plain
                assert plain  # the case has a row of each
        row = x.rows(r._SEL_CASE, {"b_id": case_id})[0]
        assert row["submitted_at"].utcoffset() == timedelta(0)  # aware UTC, not naive
        assert isinstance(row["form"], dict)
        assert row["form"]["facility"].startswith("Bệnh viện")

    def test_the_aggregate_loads_by_case_and_by_task_alike(
        self, world: World, case_id: str
    ) -> None:
        task_id = world.task(case_id)["id"]
        with UnitOfWork(world.app.engine) as uow:
            by_case = uow.repo.load_case(case_id)
            by_task = uow.repo.load_case_of_task(task_id)
        assert by_case.case == by_task.case
        assert [t.id for t in by_case.tasks] == [t.id for t in by_task.tasks]
        assert by_case.documents == by_task.documents


class TestSaveWritesOnlyWhatChanged:
    """`Repository.save` updates only the columns that differ from the row as read."""

    def test_the_stored_rows_are_the_aggregates_after_a_decision_and_a_payment(
        self, world: World, case_id: str
    ) -> None:
        decided = world.decide(case_id, "chair_a")
        paid = world.pay(case_id, 800_000, by="treasurer_a")
        with UnitOfWork(world.app.engine) as uow:
            stored = uow.repo.load_case(case_id)
        assert r.case_to_row(stored.case) == r.case_to_row(paid.case)
        assert stored.case.version == paid.case.version == decided.case.version + 1
        by_id = {t.id: t for t in paid.tasks}
        for task in stored.tasks:
            assert r.task_to_row(task) == r.task_to_row(by_id[task.id])

    def test_a_case_saved_without_having_been_read_here_is_written_whole(
        self, world: World, case_id: str
    ) -> None:
        with UnitOfWork(world.app.engine) as uow:
            agg = uow.repo.load_case(case_id)
        with UnitOfWork(world.app.engine) as uow:
            row = r.case_to_row(agg.case)
            assert uow.repo._changed("case", dict(row)) == {
                k: v for k, v in row.items() if k != "id"
            }
            uow.repo.load_case(case_id)
            assert uow.repo._changed("case", dict(row)) == {}  # read here: nothing differs

    def test_a_change_rolled_back_to_a_savepoint_is_written_again_after_forget_rows(
        self, world: World, case_id: str
    ) -> None:
        with UnitOfWork(world.app.engine) as uow:
            agg = uow.repo.load_case(case_id)
            savepoint = uow.conn.begin_nested()
            agg.case.current_step = "moved"
            uow.repo.save(agg)
            savepoint.rollback()  # the database holds the old step and version again
            uow.repo.forget_rows()
            agg.case.version -= 1  # as the aggregate would be rebuilt from the database
            uow.repo.save(agg)  # the same change: `save` must not think it is written
            uow.conn.commit()
        with UnitOfWork(world.app.engine) as uow:
            assert uow.repo.load_case(case_id).case.current_step == "moved"

    def test_a_stale_version_is_still_a_conflict(self, world: World, case_id: str) -> None:
        with UnitOfWork(world.app.engine) as uow:
            stale = uow.repo.load_case(case_id)
        world.decide(case_id, "chair_a")  # the case moves on meanwhile
        with UnitOfWork(world.app.engine) as uow:
            uow.repo.load_case(case_id)  # the current row, as a command would read it
            stale.case.current_step = "somewhere_else"
            with pytest.raises(Conflict):
                uow.repo.save(stale)


class TestErrorsAndChecks:
    def test_a_unique_violation_is_sqlalchemys_and_the_unit_of_work_calls_it_a_conflict(
        self, world: World, case_id: str
    ) -> None:
        with world.app.engine.connect() as conn, conn.begin():
            x = Prepared(conn)
            x.execute_many(r._INS_CLAIM_KEY, [{"key": "k-1", "case_id": case_id}])
            with pytest.raises(IntegrityError):
                x.execute_many(r._INS_CLAIM_KEY, [{"key": "k-1", "case_id": case_id}])

        def insert_twice() -> None:
            with UnitOfWork(world.app.engine) as uow:
                rows = [{"key": "k-2", "case_id": case_id}] * 2
                uow.repo.x.execute_many(r._INS_CLAIM_KEY, rows)
                uow.tx.commit()

        with pytest.raises(Conflict):
            insert_twice()
        with world.app.engine.connect() as conn:
            keys = set(conn.execute(select(CLAIM_KEY.c.key)).scalars())
        assert "k-2" not in keys  # the unit of work rolled back

    def test_a_failed_check_in_a_batch_raises_its_error_and_the_batch_commits_nothing(
        self, world: World, case_id: str
    ) -> None:

        def save_stale() -> None:
            with UnitOfWork(world.app.engine) as uow:
                agg = uow.repo.load_case(case_id)
                agg.case.version += 7  # as if another command had saved it meanwhile
                agg.case.outcome_reason = "never written"
                uow.repo.save(agg)

        with pytest.raises(Conflict, match="changed by someone else"):
            save_stale()
        with world.app.engine.connect() as conn:
            stored = conn.execute(select(CASE.c.outcome_reason).where(CASE.c.id == case_id))
            assert stored.scalar() is None

    def test_a_statement_that_is_not_prepared_is_refused_inside_a_pipeline(
        self, world: World, case_id: str
    ) -> None:
        expanding = select(CASE.c.id).where(CASE.c.id.in_([case_id, "other"]))
        with world.app.engine.connect() as conn, conn.begin():
            x = Prepared(conn)
            assert x.rows(expanding, {}) == [{"id": case_id}]  # outside a batch: runs
            with x.batch():
                if conn.dialect.name == "postgresql":
                    with pytest.raises(RuntimeError, match="cannot run in a batch"):
                        x.rows(expanding, {})
                else:  # SQLite has no pipeline: a batch changes nothing
                    assert x.rows(expanding, {}) == [{"id": case_id}]


class TestPrefetchAndTheHouseholdLock:
    def test_a_prefetched_answer_is_handed_out_once_then_reads_are_fresh(
        self, world: World, case_id: str
    ) -> None:
        with world.app.engine.connect() as conn, conn.begin():
            x = Prepared(conn)
            key = {"b_id": case_id}
            x.prefetch([(r._SEL_CASE, key)])
            conn.execute(CASE.update().where(CASE.c.id == case_id).values(outcome_reason="now"))
            first = x.rows(r._SEL_CASE, key)[0]["outcome_reason"]
            # PostgreSQL answered before the update, SQLite (no prefetch) after it.
            assert first == (None if conn.dialect.name == "postgresql" else "now")
            assert x.rows(r._SEL_CASE, key)[0]["outcome_reason"] == "now"

    def test_the_member_and_the_actor_are_served_from_the_prefetch(
        self, world: World, case_id: str
    ) -> None:
        officer, on = world.accounts["officer_a"], world.clock.today()
        with world.app.engine.connect() as conn, conn.begin():
            repo = Repository(conn)
            member_id = repo.load_case(case_id).case.member_id
            with repo.prefetching(
                member_id=member_id,
                household_key=None,
                unit_on=("CS-A", on),
                account_on=(officer, on),
            ):
                conn.execute(MEMBER.update().values(name_key="changed"))
                conn.execute(ACCOUNT.update().values(display_name="changed"))
                member = repo.member_facts(member_id)
                account, _ = repo.account_and_grants(officer, on)
            # PostgreSQL answered both before the updates (one round trip for all of them);
            # SQLite prefetches nothing and reads them after.
            prefetched = conn.dialect.name == "postgresql"
            assert (member.name_key == "changed") is not prefetched
            assert (account["display_name"] == "changed") is not prefetched

    def test_unused_prefetched_answers_are_dropped_with_the_block(
        self, world: World, case_id: str
    ) -> None:
        with world.app.engine.connect() as conn, conn.begin():
            repo = Repository(conn)
            agg = repo.load_case(case_id)
            on = world.clock.today()
            with repo.prefetching(
                member_id=agg.case.member_id,
                household_key=agg.case.household_key,
                unit_on=("CS-A", on),
                account_on=None,
            ):
                repo.member_facts(agg.case.member_id)  # uses one answer, leaves the history
            assert not repo.x._prefetched

    def test_the_household_lock_creates_the_row_then_bumps_it(self, world: World) -> None:
        with world.app.engine.connect() as conn, conn.begin():
            repo = Repository(conn)
            repo.lock_household("hh-new")
            repo.lock_household("hh-new")
            version = conn.execute(select(HOUSEHOLD.c.version).where(HOUSEHOLD.c.key == "hh-new"))
            # SQLite's writers are serialised by BEGIN IMMEDIATE: no row is written there.
            assert version.scalar() == (2 if repo.postgres else None)
