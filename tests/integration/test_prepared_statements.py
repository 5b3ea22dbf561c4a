"""The repository's prepared path (domain/adapters/prepared.py), on SQLite and PostgreSQL.

It skips SQLAlchemy's per-call machinery, so these tests pin down what it must still do as
`Connection.execute` does: the same values read back (aware UTC times, dates, JSON), driver
errors turned into SQLAlchemy's (so a unit of work reports a Conflict), row-count checks, and —
in a PostgreSQL pipeline — nothing read before it exists and nothing prefetched read twice.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

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
from domain.model import BudgetKey
from domain.roles import Role
from domain.rules.facts import MembershipPeriod
from tests.integration.helpers_policies import copy_of, person
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

    def test_a_statement_that_is_not_prepared_runs_after_what_the_batch_queued(
        self, world: World, case_id: str
    ) -> None:
        expanding = select(CASE.c.id).where(CASE.c.id.in_([case_id, "other"]))
        with world.app.engine.connect() as conn, conn.begin():
            x = Prepared(conn)
            assert x.rows(expanding, {}) == [{"id": case_id}]  # outside a batch: runs
            with x.batch():
                x.execute_many(r._INS_CLAIM_KEY, [{"key": "k-q", "case_id": case_id}])
                # SQLAlchemy's path cannot read a pipelined cursor: the queue is sent first,
                # so the statement runs after the insert and sees it.
                seen = select(CLAIM_KEY.c.key).where(CLAIM_KEY.c.key.in_(["k-q", "other"]))
                assert x.rows(seen, {}) == [{"key": "k-q"}]
                assert x.rows(expanding, {}) == [{"id": case_id}]


class RoundTrips:
    """Records psycopg's waits: the generator's name, and whether it waited for the server —
    a Sync (leaving a pipeline, or inside one), a statement or COMMIT run on its own. A
    statement queued into a pipeline, or a COMMIT with no transaction open, waits for nothing.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import psycopg
        from psycopg.pq import TransactionStatus

        self.kinds: list[str] = []
        self.trips = 0
        wait = psycopg.Connection.wait

        def counting(conn: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
            name = getattr(gen, "__name__", "?")
            self.kinds.append(name)
            if name in ("_exit_gen", "_sync_gen"):
                self.trips += 1
            elif name in ("_execute_gen", "_executemany_gen_no_pipeline"):
                self.trips += conn._pipeline is None
            elif name == "_commit_gen":
                self.trips += conn.pgconn.transaction_status != TransactionStatus.IDLE
            return wait(conn, gen, *args, **kwargs)

        monkeypatch.setattr(psycopg.Connection, "wait", counting)


@contextmanager
def _begun_on_postgres(world: World, case_id: str) -> Iterator[Prepared]:
    """A prepared path in a transaction that has begun (a read done), on PostgreSQL only."""
    if world.app.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no round trips: a batch changes nothing there")
    with world.app.engine.connect() as conn, conn.begin():
        x = Prepared(conn)
        x.rows(r._SEL_CASE, {"b_id": case_id})
        yield x


class TestOneRoundTripPerAnswer:
    """On PostgreSQL a batch costs one round trip per answer something waits for."""

    def test_writes_then_a_read_then_the_end_of_the_batch_is_one_round_trip(
        self, world: World, case_id: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with _begun_on_postgres(world, case_id) as x:
            trips = RoundTrips(monkeypatch)
            with x.batch():
                x.execute_many(r._INS_CLAIM_KEY, [{"key": "k-a", "case_id": case_id}])
                x.execute_many(r._INS_CLAIM_KEY, [{"key": "k-b", "case_id": case_id}])
                keys = x.rows(r._SEL_CASE, {"b_id": case_id})
            assert keys
            assert trips.trips == 1, trips.kinds
            assert "_sync_gen" not in trips.kinds  # the read did not sync inside the pipeline

    def test_reads_together_are_one_round_trip_and_a_lone_read_uses_no_pipeline(
        self, world: World, case_id: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with _begun_on_postgres(world, case_id) as x:
            trips = RoundTrips(monkeypatch)
            both = x.rows_many(
                [(r._SEL_CASE, {"b_id": case_id}), (r._SEL_TASKS, {"b_id": case_id})]
            )
            assert both[0]
            assert both[1]
            assert trips.kinds == ["_enter_gen", "_execute_gen", "_execute_gen", "_exit_gen"]
            assert trips.trips == 1
            trips.kinds.clear()
            with x.batch():
                x.rows(r._SEL_CASE, {"b_id": case_id})
            assert trips.kinds == ["_execute_gen"]  # nothing queued: a plain statement

    def test_the_commit_goes_with_the_batchs_writes(
        self, world: World, case_id: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with world.app.engine.connect() as conn:
            tx = conn.begin()
            x = Prepared(conn)
            x.rows(r._SEL_CASE, {"b_id": case_id})
            trips = RoundTrips(monkeypatch)
            with x.batch():
                x.execute_many(r._INS_CLAIM_KEY, [{"key": "k-c", "case_id": case_id}])
                # SQLite: nothing to send it with; the transaction's commit does it.
                assert x.queue_commit() is x._can_pipeline
            tx.commit()
            if x._can_pipeline:
                assert trips.trips == 1, trips.kinds  # the insert and the COMMIT together
        with world.app.engine.connect() as conn:
            stored = conn.execute(select(CLAIM_KEY.c.key).where(CLAIM_KEY.c.key == "k-c"))
            assert stored.scalar() == "k-c"

    def test_a_failed_statement_before_the_queued_commit_commits_nothing(
        self, world: World, case_id: str
    ) -> None:
        with world.app.engine.connect() as conn:
            tx = conn.begin()
            x = Prepared(conn)
            x.execute_many(r._INS_CLAIM_KEY, [{"key": "k-d", "case_id": case_id}])

            def duplicate_then_commit() -> None:
                with x.batch():
                    x.execute_many(r._INS_CLAIM_KEY, [{"key": "k-e", "case_id": case_id}])
                    x.execute_many(r._INS_CLAIM_KEY, [{"key": "k-d", "case_id": case_id}])
                    x.queue_commit()

            with pytest.raises(IntegrityError):
                duplicate_then_commit()
            tx.rollback()
        with world.app.engine.connect() as conn:
            stored = conn.execute(
                select(CLAIM_KEY.c.key).where(CLAIM_KEY.c.key.in_(["k-d", "k-e"]))
            )
            assert stored.scalars().all() == []


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

    def test_facts_read_together_are_those_read_one_by_one_and_the_outer_block_keeps_its_own(
        self, world: World, case_id: str
    ) -> None:
        officer, on = world.accounts["officer_a"], world.clock.today()
        with world.app.engine.connect() as conn, conn.begin():
            repo = Repository(conn)
            agg = repo.load_case(case_id)
            c = agg.case
            member = repo.member_facts(c.member_id)
            docs = [d.sha256 for d in agg.documents]
            key = BudgetKey("CS-A", on.year, "grassroots")
            claim = [f"illness|{c.member_id}|x", "never-taken"]

            def read_facts() -> tuple[Any, ...]:
                return (
                    repo.history(c.member_id, c.household_key),
                    repo.taken_claim_keys(claim),
                    repo.reused_documents(docs, "another-case"),
                    repo.duplicate_persons(member),
                    repo.budget_available(key),
                    repo.quota_used("no-campaign", "CS-A", None),
                )

            one_by_one = read_facts()
            with repo.prefetching(
                member_id=c.member_id,
                household_key=None,
                unit_on=("CS-A", on),
                account_on=(officer, on),
            ):
                outer = dict(repo.x._prefetched)
                with repo.prefetching_facts(
                    history=(c.member_id, c.household_key),
                    claim_keys=claim,
                    documents=(docs, "another-case"),
                    duplicates_of=member,
                    budget=key,
                    quota=("no-campaign", "CS-A", None),
                ):
                    if repo.postgres:  # one answer a read: the history, 2 keys, the files
                        assert len(docs) > 1  # (one read for all), 3 more
                        assert len(repo.x._prefetched) == len(outer) + 7
                    together = read_facts()
                    # All six were answered from the prefetch: only the outer answers are left.
                    assert repo.x._prefetched == outer
                assert repo.x._prefetched == outer
                assert together == one_by_one
                assert one_by_one[0]  # the case itself is in the household's history
                assert one_by_one[2]  # its files are "reused" by another case
                # The account prefetched by the enclosing block is still served from it.
                conn.execute(ACCOUNT.update().values(display_name="changed"))
                account, _ = repo.account_and_grants(officer, on)
                assert (account["display_name"] == "changed") is not repo.postgres

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


def test_reused_documents_names_every_other_case_holding_each_file(world: World) -> None:
    """On SQLite every file goes in one statement (a JSON array parameter), on PostgreSQL one
    read per file: either way each file maps to the other cases that hold it."""
    docs = world.docs("housing", "repair")
    survey = next(d for d in docs if d.kind == "survey_record")
    first = world.submit("housing", "repair", person(world), documents=docs).case_id
    others = []
    for n in range(2):
        mine = [d for d in world.docs("housing", "repair") if d.kind != "survey_record"]
        filed = world.submit(
            "housing", "repair", person(world), documents=[*mine, copy_of(survey, f"{n}.pdf")]
        )
        others.append(filed.case_id)
    hashes = [d.sha256 for d in docs]
    with world.app.engine.connect() as conn, conn.begin():
        repo = Repository(conn)
        found = repo.reused_documents([*hashes, survey.sha256, "0" * 64], str(first))
        again = repo.reused_documents([survey.sha256], str(others[0]))
        none = repo.reused_documents([], str(first))
    assert {h: set(ids) for h, ids in found.items()} == {survey.sha256: set(others)}
    assert {h: set(ids) for h, ids in again.items()} == {survey.sha256: {first, others[1]}}
    assert none == {}


def test_a_member_and_an_account_are_read_with_all_their_periods_and_roles(world: World) -> None:
    """One statement each (a row per membership or role): every period and every role valid
    on the day comes back, and an account with no role has none."""
    today = world.clock.today()
    member_id = world.member("CS-A", joined=date(2015, 1, 1))
    with world.app.engine.begin() as conn:
        conn.execute(
            r.MEMBERSHIP.insert().values(
                member_id=member_id,
                unit_id="TP",
                joined_on=date(2010, 1, 1),
                left_on=date(2014, 12, 31),
            )
        )
    plain = world.account("no_roles", None, "CS-A")
    several = world.account("several_roles", Role.GRASSROOTS_CHAIR, "CS-A")
    world.admin.grant_role("test", several, Role.UPPER_CHAIR, "TP", date(2020, 1, 1))
    world.admin.grant_role("test", several, Role.TREASURER, "TP", today + timedelta(days=1))
    with world.app.engine.connect() as conn, conn.begin():
        repo = Repository(conn)
        periods = repo.member_facts(member_id).memberships
        none = repo.account_and_grants(plain, today)
        account, grants = repo.account_and_grants(several, today)
    assert periods == (
        MembershipPeriod("TP", date(2010, 1, 1), date(2014, 12, 31)),
        MembershipPeriod("CS-A", date(2015, 1, 1), None),
    )
    assert (none[0]["username"], none[1]) == ("no_roles", ())
    assert account["username"] == "several_roles"
    assert set(grants) == {(Role.GRASSROOTS_CHAIR, "CS-A"), (Role.UPPER_CHAIR, "TP")}
