"""Policy T (tet.yaml): Tết support, once per member per season, within each unit's quota.

The grassroots chair confirms the posted list, the upper-level chair approves, the upper-level
treasurer pays from the ward union's Tết fund. Members in disaster areas get 2,000,000 đ more.
"""

from datetime import date, timedelta
from typing import Any

import pytest

from domain.errors import InvalidRequest, RuleViolation
from domain.service.queries import case_status, open_tasks, verify_audit
from domain.service.welfare import Submitted
from tests.integration.helpers_flow import (
    SharedWorld,
    budget,
    cases_of_member,
    code,
    person,
    refused,
    shared,  # noqa: F401  (class-scoped world fixture)
)
from tests.support import World

TODAY = date(2026, 3, 2)


@pytest.fixture
def season(world: World) -> str:
    return world.campaign("tet", code("TET-BINH-NGO"))


def tet(
    world: World,
    member: str,
    campaign: str,
    subtype: str = "standard",
    *,
    criterion: str | None = "low_income",
    disaster_area: Any = None,
    unit: str = "CS-A",
    by: str = "officer_a",
    **kw: Any,
) -> Submitted:
    form: dict[str, Any] = {}
    if criterion is not None:
        form["criterion"] = criterion
    if disaster_area is not None:
        form["disaster_area"] = disaster_area
    return world.submit(
        "tet", subtype, member, unit=unit, by=by, campaign_id=campaign, form=form, **kw
    )


class TestEachSubtypeReachesPaid(SharedWorld):
    @pytest.mark.parametrize(
        ("subtype", "disaster_area", "amount"),
        [
            ("standard", None, 1_000_000),
            ("standard", False, 1_000_000),
            ("standard", True, 3_000_000),
            ("special_hardship", None, 2_000_000),
        ],
    )
    def test_the_grassroots_chair_and_the_ward_chair_approve_and_the_ward_treasurer_pays(
        self, world: World, season: str, subtype: str, disaster_area: bool | None, amount: int
    ) -> None:
        fund = budget(world, "TP", "tet")
        sub = tet(world, person(world), season, subtype, disaster_area=disaster_area)
        assert (sub.status, sub.amount, sub.flags) == ("in_review", amount, [])
        assert world.task(sub.case_id)["step"] == "grassroots_review"
        world.decide(sub.case_id, "chair_a")
        assert world.task(sub.case_id)["step"] == "upper_approval"
        world.decide(sub.case_id, "upper_tp")
        pay = world.task(sub.case_id)
        assert (pay["step"], pay["role"], pay["org_unit_id"]) == ("payment", "treasurer", "TP")
        assert budget(world, "TP", "tet")["reserved"] == fund["reserved"] + amount
        world.pay(sub.case_id, amount, by="treasurer_tp")
        status = case_status(world.app.engine, sub.case_id)
        assert status is not None
        assert (status["status"], status["paid_amount"]) == ("paid", amount)
        assert budget(world, "TP", "tet") == {
            "amount": 2_000_000_000,
            "reserved": fund["reserved"],
            "spent": fund["spent"] + amount,
        }
        assert verify_audit(world.app.engine).ok

    def test_special_hardship_in_a_disaster_area_is_4m_above_the_cap_so_it_needs_two_approvers_per_step(
        self, world: World, season: str
    ) -> None:
        sub = tet(world, person(world), season, "special_hardship", disaster_area=True)
        assert (sub.amount, sub.flags) == (4_000_000, ["C5"])
        world.decide(sub.case_id, "chair_a")
        assert world.task(sub.case_id)["step"] == "grassroots_review"  # one more approver needed
        world.decide(sub.case_id, "chair_a2")
        world.decide(sub.case_id, "upper_tp")
        world.decide(sub.case_id, "upper_tp2")
        world.pay(sub.case_id, 4_000_000, by="treasurer_tp")
        assert case_status(world.app.engine, sub.case_id)["status"] == "paid"  # type: ignore[index]

    def test_a_case_of_another_ward_is_reserved_on_that_wards_tet_fund(
        self, world: World, season: str
    ) -> None:
        dk, tp = budget(world, "DK", "tet"), budget(world, "TP", "tet")
        sub = tet(world, person(world, "CS-C"), season, unit="CS-C", by="officer_c")
        world.decide(sub.case_id, "chair_c")
        world.decide(sub.case_id, "upper_dk")
        assert budget(world, "DK", "tet")["reserved"] == dk["reserved"] + 1_000_000
        assert budget(world, "TP", "tet") == tp
        # The ward has no treasurer of its own; the provincial one reaches every unit below.
        world.pay(sub.case_id, 1_000_000, by="treasurer_province")
        assert budget(world, "DK", "tet")["spent"] == dk["spent"] + 1_000_000

    def test_a_requested_amount_other_than_the_fixed_one_is_refused(
        self, world: World, season: str
    ) -> None:
        member = person(world)
        err = refused(world, RuleViolation, lambda: tet(world, member, season, amount=1_500_000))
        assert (err.rule, err.field) == ("amount_rule", "requested_amount")


class TestEligibilityRefusals(SharedWorld):
    def test_a_closed_season_refuses_with_campaign_window(self, world: World) -> None:
        closed = world.campaign(
            "tet",
            code("TET-2025"),
            opens_on=TODAY - timedelta(days=90),
            closes_on=TODAY - timedelta(days=30),
        )
        member = person(world)
        err = refused(world, RuleViolation, lambda: tet(world, member, closed))
        assert (err.rule, err.code) == ("campaign_window", "campaign_closed")

    def test_a_list_date_outside_the_season_refuses(self, world: World, season: str) -> None:
        member = person(world)
        err = refused(
            world,
            RuleViolation,
            lambda: tet(world, member, season, event_date=TODAY + timedelta(days=61)),
        )
        assert (err.rule, err.code) == ("campaign_window", "event_outside_campaign")

    def test_someone_who_is_no_longer_a_member_on_the_list_date_is_refused(
        self, world: World, season: str
    ) -> None:
        member = person(world, joined=date(2010, 1, 1))
        world.admin.end_membership("test", member, TODAY - timedelta(days=20))
        err = refused(world, RuleViolation, lambda: tet(world, member, season))
        assert (err.rule, err.code) == ("member_on_event_date", "not_member_on_event_date")

    def test_a_member_of_less_than_twelve_months_is_refused_for_tenure(
        self, world: World, season: str
    ) -> None:
        member = person(world, joined=TODAY - timedelta(days=358))  # 359 days: 11 months
        err = refused(world, RuleViolation, lambda: tet(world, member, season))
        assert (err.rule, err.code) == ("min_tenure", "tenure_too_short")
        assert err.params == {"months": 11, "required": 12}

    def test_a_member_of_exactly_twelve_thirty_day_months_is_accepted(
        self, world: World, season: str
    ) -> None:
        member = person(world, joined=TODAY - timedelta(days=359))  # 360 days, both ends counted
        assert tet(world, member, season).status == "in_review"

    def test_a_missing_criterion_is_an_invalid_field(self, world: World, season: str) -> None:
        member = person(world)
        err = refused(world, InvalidRequest, lambda: tet(world, member, season, criterion=None))
        assert err.field == "form.criterion"

    def test_a_criterion_outside_the_list_is_an_invalid_field(
        self, world: World, season: str
    ) -> None:
        member = person(world)
        err = refused(
            world, InvalidRequest, lambda: tet(world, member, season, criterion="lottery")
        )
        assert err.field == "form.criterion"

    def test_a_disaster_area_answer_that_is_not_true_or_false_is_an_invalid_field(
        self, world: World, season: str
    ) -> None:
        member = person(world)
        err = refused(
            world, InvalidRequest, lambda: tet(world, member, season, disaster_area="yes")
        )
        assert err.field == "form.disaster_area"

    def test_a_tet_case_without_a_campaign_is_an_invalid_request(self, world: World) -> None:
        member = person(world)
        err = refused(
            world,
            InvalidRequest,
            lambda: world.submit("tet", "standard", member, form={"criterion": "low_income"}),
        )
        assert (err.code, err.field) == ("campaign_required", "campaign_id")


class TestOncePerSeason(SharedWorld):
    def test_a_second_tet_support_for_the_same_member_in_one_season_is_refused(
        self, world: World, season: str
    ) -> None:
        member = person(world)
        first = tet(world, member, season)
        err = refused(world, RuleViolation, lambda: tet(world, member, season, "special_hardship"))
        assert (err.rule, err.code) == ("unique_claim", "duplicate_claim")
        assert [c["id"] for c in cases_of_member(world, member)] == [first.case_id]

    def test_another_grassroots_union_cannot_file_for_the_member_before_or_after_their_own(
        self, world: World, season: str
    ) -> None:
        member = person(world)  # a member of CS-A
        for _ in range(2):  # before CS-A files, and again after
            err = refused(
                world,
                RuleViolation,
                lambda: tet(world, member, season, unit="CS-B", by="officer_b"),
            )
            assert (err.rule, err.code) == ("member_on_event_date", "not_member_of_filing_unit")
            assert err.params == {"date": TODAY.strftime("%d/%m/%Y")}
            if not cases_of_member(world, member):
                assert tet(world, member, season).status == "in_review"
        assert len(cases_of_member(world, member)) == 1

    def test_a_second_plan_in_the_same_season_is_allowed_but_flagged_above_3_3m(
        self, world: World, season: str
    ) -> None:
        extra = world.campaign("tet", code("TET-BINH-NGO-2026-BO-SUNG"))
        member = person(world)
        tet(world, member, season, "special_hardship")  # 2,000,000
        second = tet(world, member, extra, "special_hardship")  # 2,000,000 more: 4m > 3.3m
        assert (second.status, second.flags) == ("in_review", ["C5"])
        small = person(world)
        tet(world, small, season)  # 1,000,000
        assert tet(world, small, extra).flags == []  # 2m in total stays under the cap

    def test_a_withdrawn_case_lets_the_member_be_filed_again(
        self, world: World, season: str
    ) -> None:
        member = person(world)
        first = tet(world, member, season)
        world.service.withdraw(world.accounts["officer_a"], first.case_id, "nhầm mức")
        assert tet(world, member, season, "special_hardship").status == "in_review"


class TestUnitQuota(SharedWorld):
    def test_the_units_quota_refuses_the_next_case_and_leaves_other_units_alone(
        self, world: World
    ) -> None:
        season = world.campaign("tet", code("TET-QUOTA"), quotas={"CS-A": 2, "CS-C": 1})
        for _ in range(2):
            assert tet(world, person(world), season).status == "in_review"
        member = person(world)
        err = refused(world, RuleViolation, lambda: tet(world, member, season))
        assert (err.rule, err.code, err.params) == ("unit_quota", "quota_exhausted", {"quota": 2})
        # CS-B has no quota in this plan, CS-C has its own.
        assert tet(world, person(world, "CS-B"), season, unit="CS-B", by="officer_b").status == (
            "in_review"
        )
        assert tet(world, person(world, "CS-C"), season, unit="CS-C", by="officer_c").status == (
            "in_review"
        )

    def test_a_rejected_or_withdrawn_case_gives_its_slot_back(self, world: World) -> None:
        season = world.campaign("tet", code("TET-QUOTA-2"), quotas={"CS-A": 2})
        a = tet(world, person(world), season)
        b = tet(world, person(world), season)
        world.decide(a.case_id, "chair_a", action="reject", reason="Không đúng tiêu chí")
        c = tet(world, person(world), season)
        assert c.status == "in_review"
        late = person(world)
        refused(world, RuleViolation, lambda: tet(world, late, season))
        world.service.withdraw(world.accounts["officer_a"], b.case_id)
        assert tet(world, late, season).status == "in_review"
        assert open_tasks(world.app.engine, b.case_id) == []
