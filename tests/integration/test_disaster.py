"""Policy D (disaster.yaml): per-event emergency support on a calendar-day fast track.

Documents are due only at payment; eligibility needs an open event, an event date inside it,
an affected commune and membership on the event date; one personal support per member and
subtype per event, and one house/property support per household per event.
"""

from datetime import date, timedelta
from functools import partial

import pytest

from domain.errors import Conflict, InvalidRequest, RuleViolation
from domain.service.queries import case_status, case_trail, open_tasks, verify_audit
from tests.integration.helpers_flow import (
    SharedWorld,
    budget,
    cases_of_member,
    claim_keys_of,
    code,
    doc,
    outbox,
    person,
    provide,
    refused,
    shared,  # noqa: F401  (class-scoped world fixture)
)
from tests.support import World

TODAY = date(2026, 3, 2)


@pytest.fixture
def event(world: World) -> str:
    return world.campaign("disaster", code("LU-QUET"), affected_communes=["TP"])


# (subtype, approvers in order, amount)
ROUTES = [
    ("death_missing", ["chair_a", "upper_tp", "province_standing"], 10_000_000),
    ("serious_injury", ["chair_a", "upper_tp"], 3_000_000),
    ("house_collapsed", ["chair_a", "upper_tp"], 5_000_000),
    ("house_damaged", ["chair_a"], 2_000_000),
    ("property_loss", ["chair_a"], 1_000_000),
]


class TestEachSubtypeReachesPaid(SharedWorld):
    @pytest.mark.parametrize(("subtype", "approvers", "amount"), ROUTES)
    def test_the_subtype_climbs_its_approval_tier_and_is_paid_from_the_provincial_disaster_fund(
        self, world: World, event: str, subtype: str, approvers: list[str], amount: int
    ) -> None:
        fund = budget(world, "LC", "thien_tai")
        member = person(world)
        sub = world.submit("disaster", subtype, member, campaign_id=event)
        assert (sub.status, sub.amount, sub.flags) == ("in_review", amount, [])
        steps = []
        for approver in approvers:
            steps.append(world.task(sub.case_id)["step"])
            world.decide(sub.case_id, approver)
        assert (
            steps == ["grassroots_review", "upper_approval", "province_approval"][: len(approvers)]
        )
        pay_task = world.task(sub.case_id)
        assert (pay_task["step"], pay_task["role"], pay_task["org_unit_id"]) == (
            "payment",
            "treasurer",
            "LC",
        )
        assert budget(world, "LC", "thien_tai")["reserved"] == fund["reserved"] + amount
        world.pay(sub.case_id, amount)
        status = case_status(world.app.engine, sub.case_id)
        assert status is not None
        assert (status["status"], status["paid_amount"], status["reserved_amount"]) == (
            "paid",
            amount,
            0,
        )
        assert budget(world, "LC", "thien_tai") == {
            "amount": 2_000_000_000,
            "reserved": fund["reserved"],
            "spent": fund["spent"] + amount,
        }
        assert open_tasks(world.app.engine, sub.case_id) == []
        assert [e["type"] for e in outbox(world, sub.case_id)][-1] == "case.paid"
        assert verify_audit(world.app.engine).ok


class TestWhoIsCovered(SharedWorld):
    def test_a_member_injured_and_later_dead_in_the_same_event_receives_both_supports(
        self, world: World, event: str
    ) -> None:
        member = person(world)
        injury = world.submit("disaster", "serious_injury", member, campaign_id=event)
        death = world.submit("disaster", "death_missing", member, campaign_id=event)
        assert injury.status == death.status == "in_review"

    def test_the_home_commune_alone_is_enough_when_the_workplace_is_outside_the_area(
        self, world: World
    ) -> None:
        event = world.campaign("disaster", code("SAT-LO-DK"), affected_communes=["DK"])
        member = person(world, "CS-A", commune="DK")  # works in TP, lives in DK
        assert world.submit("disaster", "house_damaged", member, campaign_id=event).status == (
            "in_review"
        )

    def test_the_workplace_commune_alone_is_enough_when_the_home_is_outside_the_area(
        self, world: World, event: str
    ) -> None:
        member = person(world, "CS-A", commune="DK")  # lives in DK, works in TP (affected)
        assert world.submit("disaster", "house_damaged", member, campaign_id=event).status == (
            "in_review"
        )


class TestDocumentsAreDueOnlyAtPayment(SharedWorld):
    def test_a_case_filed_without_any_document_is_accepted_and_can_be_approved(
        self, world: World, event: str
    ) -> None:
        sub = world.submit(
            "disaster", "house_collapsed", person(world), campaign_id=event, documents=[]
        )
        assert sub.status == "in_review"
        assert next(c for c in sub.checks if c["rule"] == "campaign_window")["outcome"] == "passed"
        assert not any(c["rule"] == "documents_complete" for c in sub.checks)
        world.decide(sub.case_id, "chair_a")
        world.decide(sub.case_id, "upper_tp")
        assert world.task(sub.case_id)["step"] == "payment"

    def test_payment_is_refused_while_documents_are_missing_and_nothing_is_written(
        self, world: World, event: str
    ) -> None:
        sub = world.submit(
            "disaster",
            "house_damaged",
            person(world),
            campaign_id=event,
            documents=[doc("cdcs_confirmation", "x")],
        )
        world.decide(sub.case_id, "chair_a")
        reserved = budget(world, "LC", "thien_tai")["reserved"]
        err = refused(world, RuleViolation, lambda: world.pay(sub.case_id, 2_000_000))
        assert err.rule == "documents_complete"
        assert err.message_key == "documents_missing"
        assert err.params["kinds"] == "damage_photos"
        status = case_status(world.app.engine, sub.case_id)
        assert status is not None
        assert (status["status"], status["paid_amount"]) == ("approved", 0)
        assert budget(world, "LC", "thien_tai")["reserved"] == reserved

    def test_documents_added_when_an_approver_returns_the_case_make_payment_possible(
        self, world: World, event: str
    ) -> None:
        # Documents can only be added through provide_information, i.e. after an approver
        # returned the case; there is no separate "attach document" command.
        sub = world.submit(
            "disaster", "house_damaged", person(world), campaign_id=event, documents=[]
        )
        world.decide(sub.case_id, "chair_a", action="return", reason="Thiếu ảnh hiện trường")
        assert case_status(world.app.engine, sub.case_id)["status"] == "awaiting_info"  # type: ignore[index]
        provide(
            world,
            sub.case_id,
            documents=[doc("cdcs_confirmation", sub.case_id), doc("damage_photos", sub.case_id)],
        )
        world.decide(sub.case_id, "chair_a")
        world.pay(sub.case_id, 2_000_000)
        assert case_status(world.app.engine, sub.case_id)["status"] == "paid"  # type: ignore[index]

    def test_an_approved_case_without_documents_cannot_receive_them_any_more(
        self, world: World, event: str
    ) -> None:
        sub = world.submit(
            "disaster", "property_loss", person(world), campaign_id=event, documents=[]
        )
        world.decide(sub.case_id, "chair_a")
        err = refused(
            world,
            Conflict,
            lambda: provide(world, sub.case_id, documents=[doc("cdcs_confirmation", "late")]),
        )
        assert err.code == "transition_not_allowed"


class TestEligibilityRefusals(SharedWorld):
    def test_a_closed_event_refuses_with_campaign_window(self, world: World) -> None:
        closed = world.campaign(
            "disaster",
            code("OLD-FLOOD"),
            opens_on=TODAY - timedelta(days=40),
            closes_on=TODAY - timedelta(days=1),
            affected_communes=["TP"],
        )
        member = person(world)
        err = refused(
            world,
            RuleViolation,
            lambda: world.submit("disaster", "house_damaged", member, campaign_id=closed),
        )
        assert (err.rule, err.code) == ("campaign_window", "campaign_closed")

    def test_an_event_not_yet_open_for_claims_refuses_with_campaign_window(
        self, world: World
    ) -> None:
        later = world.campaign(
            "disaster", code("LATER"), opens_on=TODAY + timedelta(days=1), affected_communes=["TP"]
        )
        member = person(world)
        err = refused(
            world,
            RuleViolation,
            lambda: world.submit("disaster", "house_damaged", member, campaign_id=later),
        )
        assert (err.rule, err.code) == ("campaign_window", "campaign_closed")

    def test_an_event_date_outside_the_declared_event_refuses(self, world: World) -> None:
        event = world.campaign(
            "disaster",
            code("STORM-3"),
            event_from=TODAY - timedelta(days=5),
            event_to=TODAY - timedelta(days=3),
            affected_communes=["TP"],
        )
        member = person(world)
        for day in (TODAY - timedelta(days=6), TODAY - timedelta(days=2)):
            err = refused(
                world,
                RuleViolation,
                partial(
                    world.submit,
                    "disaster",
                    "house_damaged",
                    member,
                    campaign_id=event,
                    event_date=day,
                ),
            )
            assert (err.rule, err.code) == ("campaign_window", "event_outside_campaign")
        ok = world.submit(
            "disaster",
            "house_damaged",
            member,
            campaign_id=event,
            event_date=TODAY - timedelta(days=5),
        )
        assert ok.status == "in_review"

    def test_a_member_living_and_working_outside_the_affected_communes_is_refused(
        self, world: World
    ) -> None:
        event = world.campaign("disaster", code("DK-ONLY"), affected_communes=["DK"])
        member = person(world, "CS-A", commune="TP")
        err = refused(
            world,
            RuleViolation,
            lambda: world.submit("disaster", "house_damaged", member, campaign_id=event),
        )
        assert (err.rule, err.code) == ("affected_area", "outside_affected_area")

    def test_a_member_without_a_known_home_commune_is_judged_by_the_workplace(
        self, world: World
    ) -> None:
        event = world.campaign("disaster", code("DK-ONLY-2"), affected_communes=["DK"])
        member = person(world, "CS-A", commune=None)
        err = refused(
            world,
            RuleViolation,
            lambda: world.submit("disaster", "house_damaged", member, campaign_id=event),
        )
        assert err.rule == "affected_area"

    def test_someone_who_joined_after_the_event_is_refused(self, world: World, event: str) -> None:
        member = person(world, joined=TODAY - timedelta(days=1))
        err = refused(
            world,
            RuleViolation,
            lambda: world.submit(
                "disaster",
                "house_damaged",
                member,
                campaign_id=event,
                event_date=TODAY - timedelta(days=3),
            ),
        )
        assert (err.rule, err.code) == ("member_on_event_date", "not_member_on_event_date")

    def test_someone_who_left_the_union_before_the_event_is_refused(
        self, world: World, event: str
    ) -> None:
        member = person(world)
        world.admin.end_membership("test", member, TODAY - timedelta(days=10))
        err = refused(
            world,
            RuleViolation,
            lambda: world.submit(
                "disaster",
                "serious_injury",
                member,
                campaign_id=event,
                event_date=TODAY - timedelta(days=2),
            ),
        )
        assert err.rule == "member_on_event_date"

    def test_a_disaster_case_without_an_event_is_an_invalid_request(self, world: World) -> None:
        member = person(world)
        err = refused(
            world, InvalidRequest, lambda: world.submit("disaster", "house_damaged", member)
        )
        assert err.field == "campaign_id"

    def test_an_unknown_subtype_is_an_invalid_request(self, world: World, event: str) -> None:
        member = person(world)
        err = refused(
            world,
            InvalidRequest,
            lambda: world.submit("disaster", "crop_loss", member, campaign_id=event, documents=[]),
        )
        assert err.field == "subtype"

    def test_a_campaign_of_another_policy_cannot_be_used(self, world: World) -> None:
        tet = world.campaign("tet", code("TET-2026-X"))
        member = person(world)
        err = refused(
            world,
            InvalidRequest,
            lambda: world.submit("disaster", "house_damaged", member, campaign_id=tet),
        )
        assert err.field == "campaign_id"


class TestOneSupportPerEvent(SharedWorld):
    def test_the_same_personal_support_twice_for_one_member_in_one_event_is_refused(
        self, world: World, event: str
    ) -> None:
        member = person(world)
        first = world.submit("disaster", "death_missing", member, campaign_id=event)
        err = refused(
            world,
            RuleViolation,
            lambda: world.submit("disaster", "death_missing", member, campaign_id=event),
        )
        assert (err.rule, err.code) == ("unique_claim", "duplicate_claim")
        assert [c["id"] for c in cases_of_member(world, member)] == [first.case_id]

    def test_a_second_house_support_for_the_same_household_is_refused_whatever_the_category(
        self, world: World, event: str
    ) -> None:
        husband = person(world, household="HH-LO-1")
        wife = person(world, "CS-B", household="HH-LO-1", sex="female")
        world.submit("disaster", "house_damaged", husband, campaign_id=event)
        for subtype in ("house_damaged", "house_collapsed", "property_loss"):
            err = refused(
                world,
                RuleViolation,
                partial(
                    world.submit,
                    "disaster",
                    subtype,
                    wife,
                    unit="CS-B",
                    by="officer_b",
                    campaign_id=event,
                ),
            )
            assert err.rule == "unique_claim"

    def test_a_household_support_does_not_block_a_personal_support_in_the_same_household(
        self, world: World, event: str
    ) -> None:
        husband = person(world, household="HH-LO-2")
        wife = person(world, household="HH-LO-2", sex="female")
        world.submit("disaster", "house_collapsed", husband, campaign_id=event)
        assert (
            world.submit("disaster", "serious_injury", wife, campaign_id=event).status
            == "in_review"
        )
        assert (
            world.submit("disaster", "death_missing", husband, campaign_id=event).status
            == "in_review"
        )

    def test_the_same_household_may_claim_again_in_another_event(
        self, world: World, event: str
    ) -> None:
        other = world.campaign("disaster", code("LU-QUET-2026-07"), affected_communes=["TP"])
        member = person(world)
        world.submit("disaster", "house_damaged", member, campaign_id=event)
        assert (
            world.submit("disaster", "house_damaged", member, campaign_id=other).status
            == "in_review"
        )

    def test_a_rejected_case_frees_the_household_to_file_in_a_higher_category(
        self, world: World, event: str
    ) -> None:
        member = person(world)
        first = world.submit("disaster", "house_damaged", member, campaign_id=event)
        assert claim_keys_of(world, first.case_id)
        world.decide(first.case_id, "chair_a", action="reject", reason="Sai hạng mục")
        assert claim_keys_of(world, first.case_id) == []
        again = world.submit("disaster", "house_collapsed", member, campaign_id=event)
        assert again.status == "in_review"
        trail = [e.action for e in case_trail(world.app.engine, first.case_id)]
        assert trail[-1] == "task.decided"

    def test_a_withdrawn_case_frees_the_member_to_file_again(
        self, world: World, event: str
    ) -> None:
        member = person(world)
        first = world.submit("disaster", "serious_injury", member, campaign_id=event)
        world.service.withdraw(world.accounts["officer_a"], first.case_id, "nộp nhầm")
        assert (
            world.submit("disaster", "serious_injury", member, campaign_id=event).status
            == "in_review"
        )
