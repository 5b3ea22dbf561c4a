"""Policy H (housing): build, repair and rent support, from submission to payment.

Routes (workflow_defs/housing.yaml): build and repair always go grassroots → upper-level
survey → province, and are paid in two 50% tranches; rent of at most 2,000,000 đ is the
grassroots chair's alone, above that the upper-level chair's; a new build soon after a repair
(flag C4) goes to the Ban Thường vụ, which votes.
"""

from datetime import date, timedelta

from domain.errors import Conflict, InvalidRequest, PermissionDenied, RuleViolation
from domain.roles import Role
from domain.service.queries import open_tasks
from tests.integration.helpers_policies import (
    account,
    approve_all,
    assert_task,
    audit_ok,
    budget,
    claim_keys,
    copied_world,  # noqa: F401  (the `world` fixture, copied from a template per test)
    copy_of,
    decisions,
    failed_rules,
    new_doc,
    person,
    provide,
    refused,
    status,
    votes,
    withdraw,
)
from tests.support import World

FUND = "mai_am"
RENT = {"housing_condition": "renting"}


def rent_form(months: int) -> dict[str, object]:
    return {**RENT, "rent_months": months}


def build_after_repair(world: World) -> str:
    """A household that filed a repair 100 days ago now asks for a new build: flagged C4."""
    member = person(world)
    today = world.clock.today()
    world.submit("housing", "repair", member, event_date=today - timedelta(days=100))
    sub = world.submit("housing", "build", member)
    assert sub.flags == ["C4"]
    approve_all(world, sub.case_id, "chair_a", "chair_a2", "upper_tp", "upper_tp2")
    return sub.case_id


class TestBuildAndRepairArePaidInTwoTranchesAfterTheProvinceDecides:
    def test_a_repair_goes_through_grassroots_survey_and_province_then_is_paid_in_two_halves(
        self, world: World
    ) -> None:
        cid = world.submit("housing", "repair", person(world)).case_id
        assert status(world, cid)["entitled_amount"] == 25_000_000
        assert_task(world, cid, "grassroots_review", "grassroots_chair", "CS-A", approvals_needed=1)

        world.decide(cid, "chair_a")
        assert_task(world, cid, "upper_survey", "upper_chair", "TP")
        world.decide(cid, "upper_tp")
        assert_task(world, cid, "province_decision", "province_standing", "LC")
        assert status(world, cid)["status"] == "in_review"
        assert budget(world, "LC", FUND)["reserved"] == 0

        world.decide(cid, "province_standing")
        s = status(world, cid)
        assert (s["status"], s["approved_amount"], s["reserved_amount"]) == (
            "approved",
            25_000_000,
            25_000_000,
        )
        assert_task(world, cid, "payment", "treasurer", "LC", tranche=1)
        assert budget(world, "LC", FUND) == {
            "amount": 2_000_000_000,
            "reserved": 25_000_000,
            "spent": 0,
        }

        world.pay(cid, 12_500_000, ref="UNC-1")
        s = status(world, cid)
        assert (s["status"], s["paid_amount"], s["reserved_amount"]) == (
            "approved",
            12_500_000,
            12_500_000,
        )
        assert_task(world, cid, "payment", "treasurer", "LC", tranche=2)
        assert budget(world, "LC", FUND)["reserved"] == 12_500_000
        assert budget(world, "LC", FUND)["spent"] == 12_500_000

        world.pay(cid, 12_500_000, ref="UNC-2")
        s = status(world, cid)
        assert (s["status"], s["paid_amount"], s["reserved_amount"]) == ("paid", 25_000_000, 0)
        assert budget(world, "LC", FUND) == {
            "amount": 2_000_000_000,
            "reserved": 0,
            "spent": 25_000_000,
        }
        assert open_tasks(world.app.engine, cid) == []
        assert [(who, step, action) for who, step, action, _ in decisions(world, cid)] == [
            ("chair_a", "grassroots_review", "approve"),
            ("upper_tp", "upper_survey", "approve"),
            ("province_standing", "province_decision", "approve"),
            ("treasurer_province", "payment", "pay"),
            ("treasurer_province", "payment", "pay"),
        ]
        assert claim_keys(world, cid), "the claim is held after payment too"
        assert audit_ok(world)

    def test_a_new_build_is_decided_by_the_province_and_paid_50_million_in_two_tranches(
        self, world: World
    ) -> None:
        sub = world.submit("housing", "build", person(world), amount=50_000_000)
        assert (sub.status, sub.amount, sub.flags) == ("in_review", 50_000_000, [])
        world.decide(sub.case_id, "chair_a")
        assert_task(world, sub.case_id, "upper_survey", "upper_chair", "TP")
        world.decide(sub.case_id, "upper_tp")
        assert_task(world, sub.case_id, "province_decision", "province_standing", "LC")
        world.decide(sub.case_id, "province_standing")
        assert budget(world, "LC", FUND)["reserved"] == 50_000_000
        assert_task(world, sub.case_id, "payment", "treasurer", "LC", tranche=1)

        with refused(world, InvalidRequest, field="amount"):
            world.pay(sub.case_id, 50_000_000)  # the first tranche is half
        world.pay(sub.case_id, 25_000_000, ref="UNC-1")
        world.pay(sub.case_id, 25_000_000, ref="UNC-2")
        s = status(world, sub.case_id)
        assert (s["status"], s["paid_amount"]) == ("paid", 50_000_000)
        assert budget(world, "LC", FUND) == {
            "amount": 2_000_000_000,
            "reserved": 0,
            "spent": 50_000_000,
        }
        assert audit_ok(world)


class TestRentIsApprovedAtTheTierOfItsAmount:
    def test_rent_of_four_months_is_paid_on_the_grassroots_chairs_approval_alone(
        self, world: World
    ) -> None:
        sub = world.submit("housing", "rent", person(world), form=rent_form(4))
        assert sub.amount == 2_000_000
        assert_task(world, sub.case_id, "grassroots_review", "grassroots_chair", "CS-A")
        world.decide(sub.case_id, "chair_a")
        s = status(world, sub.case_id)
        assert (s["status"], s["current_step"], s["reserved_amount"]) == (
            "approved",
            "payment_rent",
            2_000_000,
        )
        assert_task(world, sub.case_id, "payment_rent", "treasurer", "LC", tranche=1)
        assert budget(world, "LC", FUND)["reserved"] == 2_000_000

        world.pay(sub.case_id, 2_000_000)
        s = status(world, sub.case_id)
        assert (s["status"], s["paid_amount"], s["reserved_amount"]) == ("paid", 2_000_000, 0)
        assert budget(world, "LC", FUND) == {
            "amount": 2_000_000_000,
            "reserved": 0,
            "spent": 2_000_000,
        }
        assert audit_ok(world)

    def test_rent_of_five_months_also_needs_the_upper_level_chair_but_not_the_province(
        self, world: World
    ) -> None:
        sub = world.submit("housing", "rent", person(world), form=rent_form(5))
        assert sub.amount == 2_500_000
        world.decide(sub.case_id, "chair_a")
        assert_task(world, sub.case_id, "upper_survey", "upper_chair", "TP")
        assert budget(world, "LC", FUND)["reserved"] == 0
        world.decide(sub.case_id, "upper_tp")
        assert_task(world, sub.case_id, "payment_rent", "treasurer", "LC")
        assert budget(world, "LC", FUND)["reserved"] == 2_500_000
        world.pay(sub.case_id, 2_500_000)
        assert status(world, sub.case_id)["status"] == "paid"
        assert budget(world, "LC", FUND)["spent"] == 2_500_000
        assert audit_ok(world)


class TestABuildSoonAfterARepairGoesToTheBoard:
    def test_the_flagged_build_needs_two_approvers_at_each_level_then_the_board_majority(
        self, world: World
    ) -> None:
        member = person(world)
        today = world.clock.today()
        world.submit("housing", "repair", member, event_date=today - timedelta(days=100))
        sub = world.submit("housing", "build", member)
        assert (sub.status, sub.flags) == ("in_review", ["C4"])
        cid = sub.case_id

        first = world.task(cid)
        world.decide(cid, "chair_a")
        assert world.task(cid)["id"] == first["id"], "one approval is not enough on a flagged case"
        world.decide(cid, "chair_a2")
        assert_task(world, cid, "upper_survey", "upper_chair", "TP")
        approve_all(world, cid, "upper_tp", "upper_tp2")

        board = assert_task(world, cid, "board", "province_board", "LC", approvals_needed=3)
        assert board["committee"] is True
        world.decide(cid, "board1")
        world.decide(cid, "board2", "reject", reason="Nhà vừa sửa chưa đầy một năm")
        assert world.task(cid)["id"] == board["id"], "the board decides at the third vote"
        assert budget(world, "LC", FUND)["reserved"] == 0
        world.decide(cid, "board3")

        assert votes(world, cid, "board") == {
            "board1": "vote_approve",
            "board2": "vote_reject",
            "board3": "vote_approve",
        }
        s = status(world, cid)
        assert (s["status"], s["approved_amount"]) == ("approved", 50_000_000)
        assert_task(world, cid, "payment", "treasurer", "LC", tranche=1)
        assert budget(world, "LC", FUND)["reserved"] == 50_000_000
        world.pay(cid, 25_000_000, ref="UNC-1")
        world.pay(cid, 25_000_000, ref="UNC-2")
        assert status(world, cid)["status"] == "paid"
        assert budget(world, "LC", FUND) == {
            "amount": 2_000_000_000,
            "reserved": 0,
            "spent": 50_000_000,
        }
        assert audit_ok(world)

    def test_a_board_majority_against_rejects_the_case_and_reserves_nothing(
        self, world: World
    ) -> None:
        cid = build_after_repair(world)
        world.decide(cid, "board1", "reject", reason="Không đủ điều kiện")
        world.decide(cid, "board2")
        world.decide(cid, "board3", "reject", reason="Không đủ điều kiện")
        s = status(world, cid)
        assert (s["status"], s["reserved_amount"]) == ("rejected", 0)
        assert budget(world, "LC", FUND)["reserved"] == 0
        assert claim_keys(world, cid) == []
        assert open_tasks(world.app.engine, cid) == []
        assert audit_ok(world)

    def test_a_board_member_votes_once_and_the_board_cannot_return_a_case(
        self, world: World
    ) -> None:
        cid = build_after_repair(world)
        world.decide(cid, "board1")
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.decide(cid, "board1")
        assert err.value.code == "same_approver_twice"
        with refused(world, InvalidRequest, field="action"):
            world.decide(cid, "board2", "return", reason="Bổ sung ảnh")
        with refused(world, InvalidRequest, field="reason"):
            world.decide(cid, "board2", "reject")
        assert len(votes(world, cid, "board")) == 1


class TestEligibilityRefusals:
    def test_a_member_who_left_the_union_before_the_event_date_is_refused(
        self, world: World
    ) -> None:
        member = person(world)
        world.admin.end_membership("test", member, world.clock.today() - timedelta(days=1))
        with refused(world, RuleViolation, rule="member_on_event_date") as err:
            world.submit("housing", "repair", member)
        assert err.value.code == "not_member_on_event_date"

    def test_membership_of_less_than_36_months_of_30_days_is_refused(self, world: World) -> None:
        today = world.clock.today()
        short = person(world, joined=today - timedelta(days=1078))  # 1,079 days: 35 months
        with refused(world, RuleViolation, rule="min_tenure") as err:
            world.submit("housing", "repair", short)
        assert err.value.code == "tenure_too_short"
        assert err.value.params == {"months": 35, "required": 36}
        enough = person(world, joined=today - timedelta(days=1079))  # 1,080 days: 36 months
        assert world.submit("housing", "repair", enough).status == "in_review"


class TestFrequencyAndAmountCaps:
    def test_a_second_new_build_in_the_same_household_is_refused_for_life(
        self, world: World
    ) -> None:
        husband = person(world, household="HH-NAM-NA")
        wife = person(world, household="HH-NAM-NA", sex="female")
        first = world.submit("housing", "build", husband)
        with refused(world, RuleViolation, rule="frequency_cap") as err:
            world.submit("housing", "build", wife)
        assert {"frequency_cap", "unique_claim"} <= set(failed_rules(err.value))
        world.decide(first.case_id, "chair_a", "reject", reason="Đất đang tranh chấp")
        assert world.submit("housing", "build", wife).status == "in_review"

    def test_a_second_repair_within_five_years_is_refused_but_five_years_later_is_accepted(
        self, world: World
    ) -> None:
        today = world.clock.today()
        recent, old = person(world), person(world)
        world.submit("housing", "repair", recent, event_date=today.replace(year=today.year - 2))
        with refused(world, RuleViolation, rule="frequency_cap") as err:
            world.submit("housing", "repair", recent)
        assert err.value.params["max_count"] == 1
        world.submit("housing", "repair", old, event_date=today.replace(year=today.year - 5))
        assert world.submit("housing", "repair", old).status == "in_review"

    def test_rent_is_capped_at_3_million_per_member_per_calendar_year(self, world: World) -> None:
        member = person(world)
        last_year = world.submit(
            "housing", "rent", member, form=rent_form(6), event_date=date(2025, 12, 1)
        )
        world.submit("housing", "rent", member, form=rent_form(4), event_date=date(2026, 1, 5))
        at_cap = world.submit(
            "housing", "rent", member, form=rent_form(2), event_date=date(2026, 2, 10)
        )
        assert (last_year.status, at_cap.status) == ("in_review", "in_review")
        with refused(world, RuleViolation, rule="amount_cap") as err:
            world.submit("housing", "rent", member, form=rent_form(1))
        assert err.value.code == "amount_cap"

    def test_two_spouses_cannot_both_claim_rent_for_the_same_date(self, world: World) -> None:
        husband = person(world, household="HH-TAN-UYEN")
        wife = person(world, household="HH-TAN-UYEN", sex="female")
        first = world.submit("housing", "rent", husband, form=rent_form(2))
        with refused(world, RuleViolation, rule="unique_claim") as err:
            world.submit("housing", "rent", wife, form=rent_form(2))
        assert err.value.code == "duplicate_claim"
        assert failed_rules(err.value) == ["unique_claim"]
        assert len(claim_keys(world, first.case_id)) == 1


class TestRequestRefusals:
    def test_a_build_without_the_site_survey_record_is_refused_as_incomplete(
        self, world: World
    ) -> None:
        member = person(world)
        docs = [d for d in world.docs("housing", "build") if d.kind != "survey_record"]
        with refused(world, RuleViolation, rule="documents_complete") as err:
            world.submit("housing", "build", member, documents=docs)
        assert err.value.code == "documents_missing"
        assert err.value.params == {"kinds": "survey_record"}

    def test_a_requested_amount_other_than_the_fixed_or_computed_one_is_refused(
        self, world: World
    ) -> None:
        member = person(world)
        with refused(world, RuleViolation, rule="amount_rule", field="requested_amount"):
            world.submit("housing", "repair", member, amount=30_000_000)
        with refused(world, RuleViolation, rule="amount_rule", field="requested_amount"):
            world.submit("housing", "rent", member, form=rent_form(4), amount=3_000_000)
        assert world.submit("housing", "repair", member, amount=25_000_000).amount == 25_000_000

    def test_rent_months_missing_out_of_range_or_not_a_number_are_refused_naming_the_field(
        self, world: World
    ) -> None:
        member = person(world)
        for form in (RENT, rent_form(7), rent_form(0), {**RENT, "rent_months": "4"}):
            with refused(world, InvalidRequest, field="form.rent_months"):
                world.submit("housing", "rent", member, form=form)

    def test_an_unknown_subtype_form_field_or_choice_is_refused_naming_the_field(
        self, world: World
    ) -> None:
        member = person(world)
        with refused(world, InvalidRequest, field="subtype"):
            world.submit("housing", "garage", member, documents=[])
        with refused(world, InvalidRequest, field="form.garden_area"):
            world.submit("housing", "repair", member, form={"garden_area": 20})
        with refused(world, InvalidRequest, field="form.housing_condition"):
            world.submit("housing", "repair", member, form={"housing_condition": "castle"})
        with refused(world, InvalidRequest, field="form.monthly_income_per_capita"):
            world.submit("housing", "repair", member, form={"monthly_income_per_capita": 1.5})

    def test_a_housing_case_cannot_be_filed_under_a_campaign(self, world: World) -> None:
        member = person(world)
        campaign = world.campaign("job_loss", "JL-2026-H")
        with refused(world, InvalidRequest, field="campaign_id"):
            world.submit("housing", "repair", member, campaign_id=campaign)


class TestDocumentReuse:
    def test_a_repair_reusing_another_cases_file_needs_two_distinct_approvers_at_each_step(
        self, world: World
    ) -> None:
        first_docs = world.docs("housing", "repair")
        world.submit("housing", "repair", person(world), documents=first_docs)
        survey = next(d for d in first_docs if d.kind == "survey_record")
        docs = [d for d in world.docs("housing", "repair") if d.kind != "survey_record"]
        sub = world.submit("housing", "repair", person(world), documents=[*docs, copy_of(survey)])
        assert (sub.status, sub.flags) == ("in_review", ["C17"])
        cid = sub.case_id

        task = world.task(cid)
        world.decide(cid, "chair_a")
        assert world.task(cid)["id"] == task["id"]
        assert status(world, cid)["current_step"] == "grassroots_review"
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.decide(cid, "chair_a")
        assert err.value.code == "same_approver_twice"
        world.decide(cid, "chair_a2")

        assert_task(world, cid, "upper_survey", "upper_chair", "TP")
        world.decide(cid, "upper_tp")
        assert_task(world, cid, "upper_survey", "upper_chair", "TP")
        world.decide(cid, "upper_tp2")
        assert_task(world, cid, "province_decision", "province_standing", "LC")
        world.decide(cid, "province_standing")
        assert budget(world, "LC", FUND)["reserved"] == 0
        world.decide(cid, "province_standing2")
        assert status(world, cid)["status"] == "approved"
        assert budget(world, "LC", FUND)["reserved"] == 25_000_000
        assert audit_ok(world)

    def test_the_case_whose_file_was_copied_is_flagged_at_its_next_approval(
        self, world: World
    ) -> None:
        first_docs = world.docs("housing", "repair")
        first = world.submit("housing", "repair", person(world), documents=first_docs)
        photo = next(d for d in first_docs if d.kind == "survey_record")
        docs = [d for d in world.docs("housing", "repair") if d.kind != "survey_record"]
        world.submit("housing", "repair", person(world), documents=[*docs, copy_of(photo)])
        world.decide(first.case_id, "chair_a")
        assert status(world, first.case_id)["flags"] == ["C17"]
        assert_task(world, first.case_id, "grassroots_review", "grassroots_chair", "CS-A")

    def test_a_rent_case_reusing_the_same_contract_scan_is_not_flagged(self, world: World) -> None:
        docs = world.docs("housing", "rent")
        world.submit("housing", "rent", person(world), form=rent_form(2), documents=docs)
        again = world.submit(
            "housing",
            "rent",
            person(world),
            form=rent_form(2),
            documents=[copy_of(d) for d in docs],
        )
        assert again.flags == []


class TestDecisions:
    def test_lowering_rent_at_the_grassroots_routes_it_by_the_lower_amount(
        self, world: World
    ) -> None:
        cid = world.submit("housing", "rent", person(world), form=rent_form(6)).case_id
        world.decide(cid, "chair_a", amount=2_000_000)
        s = status(world, cid)
        assert (s["status"], s["entitled_amount"], s["approved_amount"]) == (
            "approved",
            3_000_000,
            2_000_000,
        )
        assert_task(world, cid, "payment_rent", "treasurer", "LC")
        assert decisions(world, cid) == [
            ("chair_a", "grassroots_review", "approve_lower", 2_000_000)
        ]
        assert budget(world, "LC", FUND)["reserved"] == 2_000_000
        world.pay(cid, 2_000_000)
        assert status(world, cid)["paid_amount"] == 2_000_000
        assert budget(world, "LC", FUND)["spent"] == 2_000_000
        assert audit_ok(world)

    def test_lowering_a_repair_at_the_grassroots_cannot_skip_the_survey_or_the_province(
        self, world: World
    ) -> None:
        cid = world.submit("housing", "repair", person(world)).case_id
        world.decide(cid, "chair_a", amount=1_000_000)
        assert_task(world, cid, "upper_survey", "upper_chair", "TP")
        world.decide(cid, "upper_tp")
        assert_task(world, cid, "province_decision", "province_standing", "LC")
        world.decide(cid, "province_standing")
        assert budget(world, "LC", FUND)["reserved"] == 1_000_000
        world.pay(cid, 500_000, ref="UNC-1")
        world.pay(cid, 500_000, ref="UNC-2")
        assert status(world, cid)["status"] == "paid"
        assert budget(world, "LC", FUND)["spent"] == 1_000_000

    def test_an_approver_cannot_raise_the_amount(self, world: World) -> None:
        cid = world.submit("housing", "repair", person(world)).case_id
        with refused(world, InvalidRequest, field="amount"):
            world.decide(cid, "chair_a", amount=30_000_000)

    def test_a_rejection_needs_a_reason_and_frees_the_household_to_file_again(
        self, world: World
    ) -> None:
        member = person(world)
        cid = world.submit("housing", "repair", member).case_id
        with refused(world, InvalidRequest, field="reason"):
            world.decide(cid, "chair_a", "reject")
        with refused(world, InvalidRequest, field="reason"):
            world.decide(cid, "chair_a", "reject", reason="   ")
        world.decide(cid, "chair_a", "reject", reason="Nhà còn tốt")
        s = status(world, cid)
        assert (s["status"], s["outcome_reason"]) == ("rejected", "routed")
        assert claim_keys(world, cid) == []
        assert open_tasks(world.app.engine, cid) == []
        assert world.submit("housing", "repair", member).status == "in_review"
        assert audit_ok(world)

    def test_a_survey_returned_for_information_resumes_with_the_time_it_had_left(
        self, world: World
    ) -> None:
        cid = world.submit("housing", "repair", person(world)).case_id
        world.decide(cid, "chair_a")
        opened = assert_task(world, cid, "upper_survey", "upper_chair", "TP")
        world.clock.advance(days=2)  # Monday → Wednesday: two working days used of ten
        with refused(world, InvalidRequest, field="reason"):
            world.decide(cid, "upper_tp", "return")
        world.decide(cid, "upper_tp", "return", reason="Thiếu ảnh hiện trạng mái nhà")
        s = status(world, cid)
        assert (s["status"], s["return_step"]) == ("awaiting_info", "upper_survey")
        assert_task(world, cid, "awaiting_info", "grassroots_officer", "CS-A")

        world.clock.advance(days=3)  # Saturday: the survey's clock stood still meanwhile
        with refused(world, PermissionDenied):
            provide(world, cid, by="officer_c", documents=[new_doc("survey_record", "roof")])
        with refused(world, InvalidRequest, field="form"):
            provide(world, cid, documents=[])
        provide(world, cid, documents=[new_doc("survey_record", "roof")])

        now = world.clock.now
        task = assert_task(world, cid, "upper_survey", "upper_chair", "TP")
        assert task["id"] != opened["id"]
        assert task["clock_used_before"] == 2 * 86_400
        fresh = world.service.calendar.add_clock_seconds(now, 10 * 86_400, "working_days")
        assert now < task["due_at"] < fresh
        assert task["due_at"] == world.service.calendar.add_clock_seconds(
            now, 8 * 86_400, "working_days"
        )
        assert status(world, cid)["status"] == "in_review"
        world.decide(cid, "upper_tp")
        assert_task(world, cid, "province_decision", "province_standing", "LC")
        assert audit_ok(world)

    def test_withdrawing_an_approved_case_releases_its_reservation_and_claim(
        self, world: World
    ) -> None:
        cid = world.submit("housing", "repair", person(world)).case_id
        approve_all(world, cid, "chair_a", "upper_tp", "province_standing")
        assert budget(world, "LC", FUND)["reserved"] == 25_000_000
        withdraw(world, cid)
        s = status(world, cid)
        assert (s["status"], s["reserved_amount"]) == ("withdrawn", 0)
        assert budget(world, "LC", FUND) == {"amount": 2_000_000_000, "reserved": 0, "spent": 0}
        assert claim_keys(world, cid) == []
        assert open_tasks(world.app.engine, cid) == []
        assert audit_ok(world)

    def test_a_case_cannot_be_withdrawn_once_a_tranche_is_paid(self, world: World) -> None:
        cid = world.submit("housing", "repair", person(world)).case_id
        approve_all(world, cid, "chair_a", "upper_tp", "province_standing")
        world.pay(cid, 12_500_000)
        with refused(world, Conflict):
            withdraw(world, cid)
        assert status(world, cid)["reserved_amount"] == 12_500_000


class TestSeparationOfDuties:
    def test_the_chair_who_filed_the_case_cannot_approve_it(self, world: World) -> None:
        cid = world.submit("housing", "repair", person(world), by="chair_a").case_id
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.decide(cid, "chair_a")
        assert err.value.code == "acts_twice"
        world.decide(cid, "chair_a2")
        assert_task(world, cid, "upper_survey", "upper_chair", "TP")

    def test_the_grassroots_approver_cannot_also_approve_the_survey(self, world: World) -> None:
        account(
            world,
            "dual_chair",
            [(Role.GRASSROOTS_CHAIR, "CS-A"), (Role.UPPER_CHAIR, "TP")],
            home="TP",
        )
        cid = world.submit("housing", "repair", person(world)).case_id
        world.decide(cid, "dual_chair")
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.decide(cid, "dual_chair")
        assert err.value.code == "acts_twice"
        world.decide(cid, "upper_tp")
        assert_task(world, cid, "province_decision", "province_standing", "LC")

    def test_an_upper_chair_from_the_applicants_own_union_cannot_survey_the_site(
        self, world: World
    ) -> None:
        account(world, "upper_from_a", [(Role.UPPER_CHAIR, "TP")], home="CS-A")
        cid = world.submit("housing", "repair", person(world)).case_id
        world.decide(cid, "chair_a")
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.decide(cid, "upper_from_a")
        assert err.value.code == "own_unit"

        other = world.submit(
            "housing", "repair", person(world, "CS-B"), unit="CS-B", by="officer_b"
        ).case_id
        world.decide(other, "chair_b")
        world.decide(other, "upper_from_a")
        assert_task(world, other, "province_decision", "province_standing", "LC")

    def test_the_treasurer_cannot_pay_a_case_they_approved(self, world: World) -> None:
        account(
            world,
            "standing_treasurer",
            [(Role.PROVINCE_STANDING, "LC"), (Role.TREASURER, "LC")],
            home="LC",
        )
        cid = world.submit("housing", "repair", person(world)).case_id
        approve_all(world, cid, "chair_a", "upper_tp", "standing_treasurer")
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.pay(cid, 12_500_000, by="standing_treasurer")
        assert err.value.code == "acts_twice"
        world.pay(cid, 12_500_000, by="treasurer_province")
        assert status(world, cid)["paid_amount"] == 12_500_000

    def test_the_beneficiary_and_their_spouse_cannot_act_on_the_case(self, world: World) -> None:
        member = person(world, household="HH-PHONG-THO")
        spouse = person(world, household="HH-PHONG-THO", sex="female")
        account(
            world, "member_chair", [(Role.GRASSROOTS_CHAIR, "CS-A")], home="CS-A", member_id=member
        )
        account(
            world, "spouse_chair", [(Role.GRASSROOTS_CHAIR, "CS-A")], home="CS-A", member_id=spouse
        )
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.submit("housing", "repair", member, by="member_chair")
        assert err.value.code == "actor_is_beneficiary"

        cid = world.submit("housing", "repair", member).case_id
        for who in ("member_chair", "spouse_chair"):
            with refused(world, RuleViolation, rule="separation_of_duties") as err:
                world.decide(cid, who)
            assert err.value.code == "actor_is_beneficiary"
        world.decide(cid, "chair_a")
        assert_task(world, cid, "upper_survey", "upper_chair", "TP")

    def test_officers_and_approvers_of_another_unit_are_denied(self, world: World) -> None:
        member = person(world)
        with refused(world, PermissionDenied):
            world.submit("housing", "repair", member, by="officer_c")
        cid = world.submit("housing", "repair", member).case_id
        for outsider in ("chair_b", "chair_c", "upper_tp"):
            with refused(world, PermissionDenied):
                world.decide(cid, outsider)
        world.decide(cid, "chair_a")
        for outsider in ("upper_dk", "chair_a2", "province_policy"):
            with refused(world, PermissionDenied):
                world.decide(cid, outsider)
        approve_all(world, cid, "upper_tp", "province_standing")
        for outsider in ("treasurer_tp", "treasurer_a", "province_standing2"):
            with refused(world, PermissionDenied):
                world.pay(cid, 12_500_000, by=outsider)
