"""The SLA sweep: reminder at 75 %, overdue at the due time, reassignment at twice the SLA.

Working-day clocks skip weekends and Tết; the disaster fast track counts calendar days; a
return for information pauses the approver's clock; an unanswered return expires the case.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Text, cast, select, update
from sqlalchemy import event as sa_event

from domain.adapters.repository import CASE, Repository
from domain.errors import Conflict, PermissionDenied
from domain.model import CaseAggregate
from domain.service.queries import case_status, open_tasks, verify_audit
from tests.integration.helpers_flow import (
    audit_actions,
    claim_keys_of,
    counts,
    doc,
    local,
    outbox,
    person,
    provide,
    tasks_of,
)
from tests.support import Clock, Database, World, build_world, query_plan

SECOND = timedelta(seconds=1)


@pytest.fixture
def event(world: World) -> str:
    return world.campaign("disaster", "SLA-FLOOD", affected_communes=["TP"])


def sweep(world: World, at):  # type: ignore[no-untyped-def]
    world.clock.now = at
    return world.service.escalate_due(at)


def _stored_form(world: World, case_id: str) -> str:
    """The case's form as the database holds it (the JSON text, not the parsed value)."""
    with world.app.engine.connect() as conn:
        return str(
            conn.execute(select(cast(CASE.c.form, Text)).where(CASE.c.id == case_id)).scalar_one()
        )


def events_of(world: World, case_id: str) -> list[str]:
    return [e["type"] for e in outbox(world, case_id)]


class TestTheLadderOnADisasterReview:
    """house_damaged: grassroots review, 2 calendar days, opened Monday 2 March 09:00."""

    REMIND = local(2026, 3, 3, 21)  # 1.5 days
    DUE = local(2026, 3, 4, 9)
    ESCALATE = local(2026, 3, 6, 9)  # 4 days

    def test_the_task_carries_the_three_deadlines_of_its_sla(
        self, world: World, event: str
    ) -> None:
        sub = world.submit("disaster", "house_damaged", person(world), campaign_id=event)
        task = world.task(sub.case_id)
        assert (task["remind_at"], task["due_at"], task["escalate_at"]) == (
            self.REMIND,
            self.DUE,
            self.ESCALATE,
        )
        assert task["next_check_at"] == self.REMIND

    def test_nothing_happens_before_three_quarters_of_the_sla(
        self, world: World, event: str
    ) -> None:
        sub = world.submit("disaster", "house_damaged", person(world), campaign_id=event)
        before = counts(world)
        result = sweep(world, self.REMIND - SECOND)
        assert (result.examined, result.changed) == (0, 0)
        assert counts(world) == before
        assert world.task(sub.case_id)["escalation"] == "none"

    def test_a_reminder_goes_out_at_three_quarters_and_only_once(
        self, world: World, event: str
    ) -> None:
        sub = world.submit("disaster", "house_damaged", person(world), campaign_id=event)
        assert sweep(world, self.REMIND).changed == 1
        assert events_of(world, sub.case_id)[-1] == "task.reminder"
        task = world.task(sub.case_id)
        assert (task["escalation"], task["next_check_at"], task["role"]) == (
            "reminded",
            self.DUE,
            "grassroots_chair",
        )
        sla = audit_actions(world, "task.sla")
        assert len(sla) == 1
        assert '"level":"reminded"' in sla[0]["payload"]
        before = counts(world)
        assert sweep(world, self.DUE - SECOND).changed == 0
        assert counts(world) == before

    def test_at_the_due_time_the_task_is_overdue_and_the_escalation_unit_is_notified(
        self, world: World, event: str
    ) -> None:
        sub = world.submit("disaster", "house_damaged", person(world), campaign_id=event)
        sweep(world, self.REMIND)
        assert sweep(world, self.DUE).changed == 1
        overdue = outbox(world, sub.case_id, "task.overdue")
        assert len(overdue) == 1
        assert overdue[0]["data"]["notify_unit"] == "LC"
        assert overdue[0]["data"]["step"] == "grassroots_review"
        task = world.task(sub.case_id)
        assert (task["escalation"], task["role"], task["org_unit_id"]) == (
            "overdue",
            "grassroots_chair",
            "CS-A",
        )
        assert case_status(world.app.engine, sub.case_id)["flags"] == []  # type: ignore[index]
        # Overdue is a warning: the chair can still decide.
        world.decide(sub.case_id, "chair_a")
        assert world.task(sub.case_id)["step"] == "payment"

    def test_at_twice_the_sla_the_task_goes_to_the_escalation_role_and_the_case_is_flagged_sla(
        self, world: World, event: str
    ) -> None:
        sub = world.submit("disaster", "house_damaged", person(world), campaign_id=event)
        world.service.claim(world.accounts["chair_a"], world.task(sub.case_id)["id"])
        sweep(world, self.REMIND)
        sweep(world, self.DUE)
        assert sweep(world, self.ESCALATE).changed == 1
        task = world.task(sub.case_id)
        assert (task["role"], task["level"], task["org_unit_id"], task["escalation"]) == (
            "province_president",
            "province",
            "LC",
            "escalated",
        )
        assert task["assignee_id"] is None
        assert task["next_check_at"] is None
        assert case_status(world.app.engine, sub.case_id)["flags"] == ["SLA"]  # type: ignore[index]
        assert events_of(world, sub.case_id)[-1] == "task.escalated"
        escalated = audit_actions(world, "task.escalated")
        assert len(escalated) == 1
        assert '"from_role":"grassroots_chair"' in escalated[0]["payload"]
        assert '"to_unit":"LC"' in escalated[0]["payload"]
        with pytest.raises(PermissionDenied):
            world.decide(sub.case_id, "chair_a")
        # The SLA flag is for the auditors: the president alone completes the step.
        world.decide(sub.case_id, "president")
        assert world.task(sub.case_id)["step"] == "payment"
        assert verify_audit(world.app.engine).ok

    def test_one_late_sweep_records_reminder_overdue_and_escalation_in_order(
        self, world: World, event: str
    ) -> None:
        sub = world.submit("disaster", "house_damaged", person(world), campaign_id=event)
        result = sweep(world, self.ESCALATE + timedelta(days=3))
        assert (result.examined, result.changed) == (1, 1)
        assert events_of(world, sub.case_id)[-3:] == [
            "task.reminder",
            "task.overdue",
            "task.escalated",
        ]

    def test_a_sweep_of_many_cases_stores_exactly_what_it_escalated(
        self, world: World, event: str
    ) -> None:
        # Nine cases in one batch: nine task.escalated entries and 27 ladder events, which on
        # PostgreSQL go set-based (one statement per kind of row, from a JSON array).
        subs = [
            world.submit("disaster", "house_damaged", person(world), campaign_id=event)
            for _ in range(9)
        ]
        ids = [s.case_id for s in subs]
        before = {c: (world.task(c), _stored_form(world, c)) for c in ids}
        at = self.ESCALATE + timedelta(days=3, microseconds=123_457)
        result = sweep(world, at)
        assert (result.examined, result.changed) == (9, 9)
        ladder = [
            e
            for e in outbox(world)
            if e["type"] in ("task.reminder", "task.overdue", "task.escalated")
        ]
        # Each case's three events in order, one case after another (the outbox's serial is
        # the delivery order).
        assert [e["type"] for e in ladder] == [
            "task.reminder",
            "task.overdue",
            "task.escalated",
        ] * 9
        assert [e["case_id"] for e in ladder[::3]] == [e["case_id"] for e in ladder[2::3]]
        assert sorted(e["case_id"] for e in ladder[::3]) == sorted(ids)
        for e in ladder:
            task = before[e["case_id"]][0]
            assert e["data"]["task"] == task["id"]
            assert (e["occurred_at"], e["available_at"], e["status"]) == (at, at, "pending")
        assert {(e["data"]["role"], e["data"]["unit"]) for e in ladder[2::3]} == {
            ("province_president", "LC")
        }
        entries = audit_actions(world, "task.escalated")
        assert len(entries) == 9
        assert all(a["at"] == at for a in entries)
        assert verify_audit(world.app.engine).ok
        for c in ids:
            old, form = before[c]
            new = world.task(c)
            changed = {k for k in old if old[k] != new[k]}
            assert changed == {"role", "level", "org_unit_id", "escalation", "next_check_at"}
            assert (new["role"], new["org_unit_id"], new["next_check_at"]) == (
                "province_president",
                "LC",
                None,
            )
            assert _stored_form(world, c) == form  # the case row rewritten, its JSON unchanged
            assert case_status(world.app.engine, c)["flags"] == ["SLA"]  # type: ignore[index]

    def test_two_sweeps_at_once_escalate_each_task_exactly_once(
        self, world: World, event: str
    ) -> None:
        subs = [
            world.submit("disaster", "house_damaged", person(world), campaign_id=event)
            for _ in range(12)
        ]
        at = self.ESCALATE + SECOND
        world.clock.now = at
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: world.service.escalate_due(at), range(2)))
        assert sum(r.changed for r in results) == 12
        assert len(audit_actions(world, "task.escalated")) == 12
        for s in subs:
            assert events_of(world, s.case_id)[-3:] == [
                "task.reminder",
                "task.overdue",
                "task.escalated",
            ]
        assert verify_audit(world.app.engine).ok

    def test_a_batch_whose_case_changed_under_it_is_rolled_back_and_retried_case_by_case(
        self, world: World, event: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        subs = [
            world.submit("disaster", "house_damaged", person(world), campaign_id=event)
            for _ in range(9)
        ]
        victim = subs[4].case_id
        load_cases = Repository.load_cases
        bumped: list[str] = []

        def load_then_bump(repo: Repository, case_ids: list[str]) -> dict[str, CaseAggregate]:
            # A write that slipped in after the batch read its cases: the version check of the
            # batch's case rows must catch it (on PostgreSQL when the batch's writes end).
            found = load_cases(repo, case_ids)
            if victim in found and not bumped:
                bumped.append(victim)
                repo.conn.execute(
                    update(CASE).where(CASE.c.id == victim).values(version=CASE.c.version + 1)
                )
            return found

        monkeypatch.setattr(Repository, "load_cases", load_then_bump)
        before = counts(world)
        result = sweep(world, self.ESCALATE + SECOND)
        assert bumped == [victim]
        assert (result.examined, result.changed) == (9, 9)
        # The failed batch left nothing: one entry and three events per task, not more.
        assert len(audit_actions(world, "task.escalated")) == 9
        after = counts(world)
        assert after["outbox"] - before["outbox"] == 27
        # Every case row has the sweep's write, the changed one's too (retried on its own).
        for s in subs:
            assert case_status(world.app.engine, s.case_id)["flags"] == ["SLA"]  # type: ignore[index]
        assert verify_audit(world.app.engine).ok

    def test_a_second_sweep_at_the_same_time_changes_nothing(
        self, world: World, event: str
    ) -> None:
        subs = [
            world.submit("disaster", "house_damaged", person(world), campaign_id=event)
            for _ in range(3)
        ]
        world.decide(subs[0].case_id, "chair_a")  # its payment task (2 days) is escalated too
        first = sweep(world, self.ESCALATE)
        assert (first.examined, first.changed) == (3, 3)
        before = counts(world)
        again = world.service.escalate_due(self.ESCALATE)
        assert again.changed == 0
        assert counts(world) == before
        assert verify_audit(world.app.engine).ok

    def test_an_overdue_tet_payment_goes_to_the_provincial_treasurer_not_the_ward_chair(
        self, world: World
    ) -> None:
        season = world.campaign("tet", "SLA-TET")
        sub = world.submit(
            "tet", "standard", person(world), campaign_id=season, form={"criterion": "low_income"}
        )
        world.decide(sub.case_id, "chair_a")
        world.decide(sub.case_id, "upper_tp")
        pay = world.task(sub.case_id)
        sweep(world, pay["escalate_at"])
        pay = world.task(sub.case_id)
        assert (pay["role"], pay["org_unit_id"]) == ("treasurer", "LC")
        with pytest.raises(PermissionDenied):
            world.pay(sub.case_id, 1_000_000, by="treasurer_tp")
        world.pay(sub.case_id, 1_000_000, by="treasurer_province")
        assert case_status(world.app.engine, sub.case_id)["status"] == "paid"  # type: ignore[index]


@pytest.fixture
def tet_eve(db: Database, tmp_path) -> World:  # type: ignore[no-untyped-def]
    """Thursday 12 February 2026, 09:00: the last working days before the Tết break."""
    return build_world(db, tmp_path, Clock(local(2026, 2, 12, 9)))


class TestWorkingDaysAndCalendarDays:
    def test_a_tet_review_opened_before_the_holiday_skips_weekends_and_tet(
        self, tet_eve: World
    ) -> None:
        w = tet_eve
        season = w.campaign("tet", "TET-EVE")
        sub = w.submit(
            "tet", "standard", person(w), campaign_id=season, form={"criterion": "low_income"}
        )
        task = w.task(sub.case_id)  # 3 working days: Thu 15 h + Fri 24 h, Mon 23 Feb, Tue 9 h
        assert task["remind_at"] == local(2026, 2, 23, 15)
        assert task["due_at"] == local(2026, 2, 24, 9)
        assert task["escalate_at"] == local(2026, 2, 27, 9)
        assert sweep(w, local(2026, 2, 23, 14, 59)).changed == 0  # 11 calendar days later
        assert sweep(w, local(2026, 2, 23, 15)).changed == 1
        assert w.task(sub.case_id)["escalation"] == "reminded"

    def test_a_disaster_review_opened_the_same_day_counts_calendar_days_through_tet(
        self, tet_eve: World
    ) -> None:
        w = tet_eve
        event = w.campaign("disaster", "TET-FIRE", affected_communes=["TP"])
        sub = w.submit("disaster", "property_loss", person(w), campaign_id=event)
        task = w.task(sub.case_id)
        assert task["due_at"] == local(2026, 2, 14, 9)  # a Saturday
        assert task["escalate_at"] == local(2026, 2, 16, 9)  # Tết eve
        assert sweep(w, local(2026, 2, 16, 9)).changed == 1
        assert w.task(sub.case_id)["role"] == "province_president"


class TestWhatIsNotEscalated:
    def test_a_rejected_case_is_never_escalated(self, world: World, event: str) -> None:
        sub = world.submit("disaster", "house_damaged", person(world), campaign_id=event)
        world.decide(sub.case_id, "chair_a", action="reject", reason="Không thiệt hại")
        before = counts(world)
        assert sweep(world, local(2026, 4, 1)).changed == 0
        assert counts(world) == before
        assert [t["escalation"] for t in tasks_of(world, sub.case_id)] == ["none"]

    def test_a_decided_task_keeps_its_level_while_the_next_step_runs_its_own_clock(
        self, world: World, event: str
    ) -> None:
        sub = world.submit("disaster", "house_collapsed", person(world), campaign_id=event)
        world.clock.advance(hours=30)  # before the grassroots reminder (36 h)
        world.decide(sub.case_id, "chair_a")
        upper = world.task(sub.case_id)
        assert upper["step"] == "upper_approval"
        assert upper["due_at"] == local(2026, 3, 4, 15)
        sweep(world, local(2026, 3, 6, 9))  # the grassroots task's old escalation time
        review, upper_now = tasks_of(world, sub.case_id)
        assert (review["status"], review["escalation"]) == ("done", "none")
        assert (upper_now["escalation"], upper_now["role"]) == ("escalated", "province_president")
        escalated = outbox(world, sub.case_id, "task.escalated")
        assert [e["data"]["task"] for e in escalated] == [upper["id"]]


class TestThePausedClock:
    def test_information_provided_ten_days_later_resumes_the_approver_with_what_was_left(
        self, world: World
    ) -> None:
        season = world.campaign("tet", "SLA-PAUSE")
        sub = world.submit(
            "tet", "standard", person(world), campaign_id=season, form={"criterion": "low_income"}
        )
        world.decide(sub.case_id, "chair_a")
        upper = world.task(sub.case_id)
        assert upper["due_at"] == local(2026, 3, 9, 9)  # 5 working days from Monday 09:00
        world.clock.advance(days=2)  # Wednesday 09:00: two working days used
        world.decide(sub.case_id, "upper_tp", action="return", reason="Bổ sung tiêu chí")
        world.clock.advance(days=10)  # Saturday 14 March 09:00
        sweep(world, world.clock.now)
        paused = case_status(world.app.engine, sub.case_id)
        assert paused is not None
        assert paused["flags"] == []
        provide(world, sub.case_id, form={"criterion": "serious_illness"})
        resumed = world.task(sub.case_id)
        assert resumed["step"] == "upper_approval"
        assert resumed["id"] != upper["id"]
        assert resumed["clock_used_before"] == 2 * 86_400
        # Three working days left, counted from Monday 16 March.
        assert resumed["due_at"] == local(2026, 3, 19)
        assert resumed["remind_at"] == local(2026, 3, 17, 18)
        assert resumed["escalate_at"] == local(2026, 3, 26)
        assert sweep(world, local(2026, 3, 18, 23, 59)).changed == 1  # the reminder only
        assert world.task(sub.case_id)["escalation"] == "reminded"
        assert sweep(world, local(2026, 3, 19)).changed == 1
        assert world.task(sub.case_id)["escalation"] == "overdue"

    def test_an_unanswered_return_expires_the_case_and_frees_its_claim(
        self, world: World, event: str
    ) -> None:
        member = person(world)
        sub = world.submit("disaster", "house_damaged", member, campaign_id=event)
        world.decide(sub.case_id, "chair_a", action="return", reason="Thiếu ảnh")
        wait = world.task(sub.case_id)
        assert (wait["kind"], wait["escalate_at"]) == ("member_input", local(2026, 3, 12, 9))
        assert claim_keys_of(world, sub.case_id)
        sweep(world, local(2026, 3, 12, 9) - SECOND)
        status = case_status(world.app.engine, sub.case_id)
        assert status is not None
        assert status["status"] == "awaiting_info"
        assert world.task(sub.case_id)["escalation"] == "overdue"
        assert sweep(world, local(2026, 3, 12, 9)).changed == 1
        status = case_status(world.app.engine, sub.case_id)
        assert status is not None
        assert (status["status"], status["outcome_reason"]) == ("withdrawn", "expired")
        assert open_tasks(world.app.engine, sub.case_id) == []
        assert claim_keys_of(world, sub.case_id) == []
        assert outbox(world, sub.case_id)[-1]["data"]["expired"] is True
        assert audit_actions(world)[-1]["action"] == "case.expired"
        with pytest.raises(Conflict):
            provide(world, sub.case_id, documents=[doc("damage_photos", "late")])
        again = world.submit("disaster", "house_damaged", member, campaign_id=event)
        assert again.status == "in_review"


def test_the_sweep_reads_only_due_tasks_through_their_index_even_without_statistics(
    world: World, db: Database
) -> None:
    """Nothing runs ANALYZE on SQLite in production. Left to guess, SQLite read every open task
    through the inbox index (status first) and sorted them; the sweep must walk
    ix_task_next_check. (PostgreSQL plans from the statistics its autovacuum gathers.)"""
    if db.kind != "sqlite":
        pytest.skip("PostgreSQL's autovacuum keeps statistics: its plan follows the data")
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if "next_check_at <=" in statement:
            seen.append((statement, params))

    engine = world.app.engine
    sa_event.listen(engine, "before_cursor_execute", capture)
    try:
        world.service.escalate_due(world.clock.now)
    finally:
        sa_event.remove(engine, "before_cursor_execute", capture)
    [(statement, params)] = seen
    plan = query_plan(db, statement, params)
    assert "ix_task_next_check" in plan
    assert "ix_task_inbox" not in plan
