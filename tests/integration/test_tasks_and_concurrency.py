"""Who may act on a task (claim, release, time-bounded delegation) and what happens when
commands race: one decision per task, one case per claim, no over-committed budget or quota.
"""

from datetime import timedelta
from functools import partial
from typing import Any, Literal

import pytest
from sqlalchemy import func, select

from domain.adapters.repository import DECISION
from domain.errors import Conflict, InvalidRequest, PermissionDenied, RuleViolation
from domain.model import CaseAggregate
from domain.service.commands import Decide, Delegate
from domain.service.queries import case_status, open_tasks, verify_audit
from tests.integration.helpers_flow import (
    SharedWorld,
    audit_actions,
    budget,
    cases_of_member,
    claim_keys_of,
    code,
    counts,
    person,
    race,
    refused,
    shared,  # noqa: F401  (class-scoped world fixture)
)
from tests.support import World

Action = Literal["approve", "reject", "return"]


@pytest.fixture
def case(world: World) -> str:
    """A fresh disaster case waiting for the grassroots chair of CS-A (chair_a, chair_a2)."""
    event = world.campaign("disaster", code("TASKS"), affected_communes=["TP"])
    return world.submit("disaster", "house_damaged", person(world), campaign_id=event).case_id


def act(
    world: World, who: str, task_id: str, action: Action = "approve", **kw: Any
) -> CaseAggregate:
    return world.service.decide(world.accounts[who], Decide(task_id=task_id, action=action, **kw))


def delegate(world: World, who: str, task_id: str, to: str, hours: float = 8) -> CaseAggregate:
    return world.service.delegate(
        world.accounts[who],
        Delegate(
            task_id=task_id,
            to_account_id=world.accounts[to],
            until=world.clock.now + timedelta(hours=hours),
        ),
    )


def decisions_of(world: World, case_id: str) -> list[str]:
    with world.app.engine.connect() as conn:
        return list(
            conn.execute(select(DECISION.c.actor_id).where(DECISION.c.case_id == case_id)).scalars()
        )


class TestClaimAndRelease(SharedWorld):
    def test_a_claimed_task_cannot_be_decided_by_another_holder_of_the_role(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        world.service.claim(world.accounts["chair_a"], task)
        assert world.task(case)["assignee_id"] == world.accounts["chair_a"]
        err = refused(world, Conflict, lambda: act(world, "chair_a2", task))
        assert err.code == "task_claimed_by_other"
        act(world, "chair_a", task)
        assert decisions_of(world, case) == [world.accounts["chair_a"]]

    def test_claiming_a_task_another_holder_claimed_is_a_conflict(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        world.service.claim(world.accounts["chair_a"], task)
        refused(world, Conflict, lambda: world.service.claim(world.accounts["chair_a2"], task))

    def test_claiming_the_same_task_twice_records_nothing_new(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        world.service.claim(world.accounts["chair_a"], task)
        before = counts(world)
        world.service.claim(world.accounts["chair_a"], task)
        assert counts(world) == before

    def test_only_the_assignee_releases_and_then_any_holder_may_act(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        world.service.claim(world.accounts["chair_a"], task)
        refused(
            world, PermissionDenied, lambda: world.service.release(world.accounts["chair_a2"], task)
        )
        world.service.release(world.accounts["chair_a"], task)
        assert world.task(case)["assignee_id"] is None
        assert audit_actions(world)[-1]["action"] == "task.released"
        act(world, "chair_a2", task)
        assert decisions_of(world, case) == [world.accounts["chair_a2"]]

    @pytest.mark.parametrize("who", ["officer_a", "chair_b", "upper_tp", "treasurer_a", "auditor"])
    def test_someone_without_the_tasks_role_at_the_unit_or_above_cannot_claim_or_decide(
        self, world: World, case: str, who: str
    ) -> None:
        task = world.task(case)["id"]
        refused(world, PermissionDenied, lambda: world.service.claim(world.accounts[who], task))
        refused(world, PermissionDenied, lambda: act(world, who, task))

    def test_a_task_that_is_done_can_no_longer_be_claimed(self, world: World, case: str) -> None:
        task = world.task(case)["id"]
        act(world, "chair_a", task)
        err = refused(
            world, Conflict, lambda: world.service.claim(world.accounts["chair_a2"], task)
        )
        assert err.code == "task_not_open"


class TestDelegation(SharedWorld):
    def test_the_delegate_decides_as_themselves_and_the_audit_names_the_delegator(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        delegate(world, "chair_a", task, to="officer_a2")
        entry = audit_actions(world)[-1]
        assert entry["action"] == "task.delegated"
        assert world.accounts["officer_a2"] in entry["payload"]
        act(world, "officer_a2", task)
        assert decisions_of(world, case) == [world.accounts["officer_a2"]]
        decided = audit_actions(world, "task.decided")[-1]
        assert decided["actor_id"] == world.accounts["officer_a2"]
        assert f'"delegated_by":"{world.accounts["chair_a"]}"' in decided["payload"]

    def test_while_delegated_neither_the_delegator_nor_other_holders_can_decide(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        delegate(world, "chair_a", task, to="officer_a2")
        for who in ("chair_a", "chair_a2"):
            err = refused(world, Conflict, partial(act, world, who, task))
            assert err.code == "task_claimed_by_other"

    def test_after_the_until_time_the_delegate_is_out_and_the_role_holders_are_back(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        delegate(world, "chair_a", task, to="officer_a2", hours=2)
        world.clock.advance(hours=2)
        refused(world, PermissionDenied, lambda: act(world, "officer_a2", task))
        act(world, "chair_a2", task)
        assert decisions_of(world, case) == [world.accounts["chair_a2"]]

    def test_the_delegator_may_take_the_task_back_by_releasing_it(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        delegate(world, "chair_a", task, to="officer_a2")
        refused(
            world, PermissionDenied, lambda: world.service.release(world.accounts["chair_a2"], task)
        )
        world.service.release(world.accounts["chair_a"], task)
        refused(world, PermissionDenied, lambda: act(world, "officer_a2", task))
        act(world, "chair_a", task)

    @pytest.mark.parametrize("to", ["officer_c", "chair_b", "auditor", "auditor_tp"])
    def test_the_delegate_must_hold_a_union_role_at_the_cases_unit_or_above(
        self, world: World, case: str, to: str
    ) -> None:
        task = world.task(case)["id"]
        err = refused(world, InvalidRequest, lambda: delegate(world, "chair_a", task, to=to))
        assert err.field == "to"

    def test_a_union_officer_of_a_higher_level_is_an_acceptable_delegate(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        delegate(world, "chair_a", task, to="upper_tp")
        act(world, "upper_tp", task)
        assert world.task(case)["step"] == "payment"

    @pytest.mark.parametrize("hours", [0, -1, 24 * 30 + 1])
    def test_a_delegation_ends_in_the_future_and_within_thirty_days(
        self, world: World, case: str, hours: float
    ) -> None:
        task = world.task(case)["id"]
        err = refused(
            world, InvalidRequest, lambda: delegate(world, "chair_a", task, "officer_a2", hours)
        )
        assert err.field == "until"

    def test_a_delegation_of_exactly_thirty_days_is_accepted(self, world: World, case: str) -> None:
        task = world.task(case)["id"]
        delegate(world, "chair_a", task, "officer_a2", 24 * 30)
        assert world.task(case)["assignee_id"] == world.accounts["officer_a2"]

    def test_a_chairs_filing_is_audited_under_the_chair_role_and_they_cannot_approve_it(
        self, world: World
    ) -> None:
        event = world.campaign("disaster", code("CHAIR"), affected_communes=["TP"])
        cid = world.submit(
            "disaster", "house_damaged", person(world), by="chair_a", campaign_id=event
        ).case_id
        submitted = [e for e in audit_actions(world, "case.submitted") if e["entity_id"] == cid]
        assert [e["actor_role"] for e in submitted] == ["grassroots_chair"]
        task = world.task(cid)["id"]
        refused(world, RuleViolation, lambda: act(world, "chair_a", task))
        act(world, "chair_a2", task)

    def test_releasing_an_unclaimed_task_is_refused_and_changes_nothing(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        version = case_status(world.app.engine, case)["version"]  # type: ignore[index]
        err = refused(
            world, Conflict, lambda: world.service.release(world.accounts["chair_a"], task)
        )
        assert err.message_key == "task_not_claimed"
        # Someone who does not hold the task learns nothing more than for any other task.
        refused(
            world, PermissionDenied, lambda: world.service.release(world.accounts["chair_b"], task)
        )
        assert case_status(world.app.engine, case)["version"] == version  # type: ignore[index]

    def test_nobody_delegates_to_themselves_or_a_task_they_do_not_hold(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        err = refused(world, InvalidRequest, lambda: delegate(world, "chair_a", task, to="chair_a"))
        assert err.field == "to"
        refused(world, PermissionDenied, lambda: delegate(world, "officer_a2", task, to="chair_a"))

    def test_a_delegate_who_filed_the_case_is_stopped_by_separation_of_duties(
        self, world: World, case: str
    ) -> None:
        task = world.task(case)["id"]
        delegate(world, "chair_a", task, to="officer_a")  # officer_a submitted the case
        err = refused(world, RuleViolation, lambda: act(world, "officer_a", task))
        assert (err.rule, err.code) == ("separation_of_duties", "acts_twice")


class TestRaces:
    def test_two_approvers_deciding_the_same_task_at_once_give_one_decision_and_one_conflict(
        self, world: World
    ) -> None:
        event = world.campaign("disaster", "RACE-DECIDE", affected_communes=["TP"])
        for _ in range(3):
            case = world.submit(
                "disaster", "house_damaged", person(world), campaign_id=event
            ).case_id
            task = world.task(case)["id"]
            results = race(
                partial(act, world, "chair_a", task), partial(act, world, "chair_a2", task)
            )
            assert sorted(kind for kind, _ in results) == ["err", "ok"], results
            loser = next(v for kind, v in results if kind == "err")
            assert isinstance(loser, Conflict), repr(loser)
            assert len(decisions_of(world, case)) == 1
            assert [t["step"] for t in open_tasks(world.app.engine, case)] == ["payment"]
        assert budget(world, "LC", "thien_tai")["reserved"] == 3 * 2_000_000
        assert verify_audit(world.app.engine).ok

    def test_two_submissions_for_the_same_member_and_event_at_once_leave_one_case(
        self, world: World
    ) -> None:
        event = world.campaign("disaster", "RACE-SUBMIT", affected_communes=["TP"])
        for _ in range(3):
            member = person(world)
            results = race(
                partial(world.submit, "disaster", "death_missing", member, campaign_id=event),
                partial(
                    world.submit,
                    "disaster",
                    "death_missing",
                    member,
                    by="officer_a2",
                    campaign_id=event,
                ),
            )
            assert sorted(kind for kind, _ in results) == ["err", "ok"], results
            loser = next(v for kind, v in results if kind == "err")
            assert isinstance(loser, (RuleViolation, Conflict)), repr(loser)
            if isinstance(loser, RuleViolation):
                assert loser.rule == "unique_claim"
            cases = cases_of_member(world, member)
            assert len(cases) == 1
            assert len(claim_keys_of(world, cases[0]["id"])) == 1
        assert verify_audit(world.app.engine).ok

    def test_two_members_of_one_household_filed_at_once_get_one_house_support(
        self, world: World
    ) -> None:
        event = world.campaign("disaster", "RACE-HOUSE", affected_communes=["TP"])
        husband = person(world, household="HH-RACE")
        wife = person(world, "CS-B", household="HH-RACE", sex="female")
        results = race(
            lambda: world.submit("disaster", "house_damaged", husband, campaign_id=event),
            lambda: world.submit(
                "disaster", "house_collapsed", wife, unit="CS-B", by="officer_b", campaign_id=event
            ),
        )
        assert sorted(kind for kind, _ in results) == ["err", "ok"], results
        assert len(cases_of_member(world, husband)) + len(cases_of_member(world, wife)) == 1

    def test_concurrent_approvals_never_commit_more_than_the_budget(self, world: World) -> None:
        world.admin.set_budget("test", "LC", 2026, "thien_tai", 5_000_000)
        event = world.campaign("disaster", "RACE-BUDGET", affected_communes=["TP"])
        cases = [
            world.submit("disaster", "house_damaged", person(world), campaign_id=event).case_id
            for _ in range(3)
        ]
        tasks = [world.task(c)["id"] for c in cases]
        results = race(
            lambda: act(world, "chair_a", tasks[0]),
            lambda: act(world, "chair_a2", tasks[1]),
            lambda: act(world, "chair_a", tasks[2]),
        )
        winners = [i for i, (kind, _) in enumerate(results) if kind == "ok"]
        assert len(winners) == 2, results
        loser = next(v for kind, v in results if kind == "err")
        assert isinstance(loser, (RuleViolation, Conflict)), repr(loser)
        if isinstance(loser, RuleViolation):
            assert loser.rule == "budget_available"
        b = budget(world, "LC", "thien_tai")
        assert b["reserved"] + b["spent"] <= b["amount"]
        assert b["reserved"] == 4_000_000
        lost = cases[next(i for i in range(3) if i not in winners)]
        status = case_status(world.app.engine, lost)
        assert status is not None
        assert (status["status"], status["reserved_amount"]) == (
            "in_review",
            0,
        )
        assert decisions_of(world, lost) == []
        with world.app.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(DECISION)).scalar_one() == 2

    def test_concurrent_submissions_never_exceed_a_units_tet_quota(self, world: World) -> None:
        for round_ in range(3):
            season = world.campaign("tet", f"RACE-QUOTA-{round_}", quotas={"CS-A": 1})
            a, b = person(world), person(world)
            form = {"criterion": "low_income"}
            results = race(
                partial(world.submit, "tet", "standard", a, campaign_id=season, form=form),
                partial(
                    world.submit,
                    "tet",
                    "standard",
                    b,
                    by="officer_a2",
                    campaign_id=season,
                    form=form,
                ),
            )
            assert sorted(kind for kind, _ in results) == ["err", "ok"], results
            loser = next(v for kind, v in results if kind == "err")
            assert isinstance(loser, (RuleViolation, Conflict)), repr(loser)
            assert len(cases_of_member(world, a)) + len(cases_of_member(world, b)) == 1
