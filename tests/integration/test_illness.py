"""Policy M (illness): hospital stays, serious illness, labour accidents and death.

Routes (workflow_defs/illness.yaml): at most 2,000,000 đ the grassroots chair alone, above it
also the upper-level chair; a case over the 15-million cap of 12 months (flag C5) goes on to
the Ban Thường vụ. Hospital and death are paid by the grassroots treasurer from its welfare
spending, the other subtypes by the provincial treasurer from the social fund.
"""

from datetime import date, timedelta
from typing import Any

import pytest

from domain.errors import InvalidRequest, PermissionDenied, RuleViolation
from domain.roles import Role
from domain.service.queries import open_tasks
from domain.service.welfare import Submitted
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
    person,
    provide,
    refused,
    status,
    votes,
    withdraw,
)
from tests.support import World

GRASSROOTS_FUND = ("CS-A", "phuc_loi")
SOCIAL_FUND = ("LC", "xa_hoi")
UNTOUCHED = {"amount": 2_000_000_000, "reserved": 0, "spent": 0}


TODAY = date(2026, 3, 2)  # the world's clock starts on Monday 2 March 2026


def hospital_form(days_ago: int = 5) -> dict[str, object]:
    admitted = TODAY - timedelta(days=days_ago)
    return {"admission_date": admitted.isoformat(), "facility": "Bệnh viện Đa khoa tỉnh Lai Châu"}


FORMS: dict[str, dict[str, object]] = {
    "hospital": hospital_form(),
    "serious_illness": {"diagnosis_category": "cancer"},
    "accident_hospital": {"diagnosis_category": "labour_accident_injury"},
    "accident_disability": {
        "diagnosis_category": "labour_accident_injury",
        "work_capacity_loss_percent": 45,
    },
    "accident_death": {"diagnosis_category": "labour_accident_injury"},
    "death": {},
}


def file(world: World, subtype: str, member: str, days_ago: int = 3, **kw: Any) -> Submitted:
    """File an illness case whose event happened `days_ago` days before today."""
    if "form" not in kw:
        kw["form"] = FORMS[subtype]
    event = world.clock.today() - timedelta(days=days_ago)
    return world.submit("illness", subtype, member, event_date=event, **kw)


def over_the_cap(world: World) -> str:
    """A member paid 10 million for a serious illness files 10 million for an accident death."""
    member = person(world)
    first = file(world, "serious_illness", member, days_ago=20, amount=10_000_000).case_id
    approve_all(world, first, "chair_a", "upper_tp")
    world.pay(first, 10_000_000)
    sub = file(world, "accident_death", member, days_ago=5)
    assert sub.flags == ["C5"]
    return sub.case_id


T0 = ["chair_a"]  # at most 2,000,000 đ
T1 = ["chair_a", "upper_tp"]
BY_GRASSROOTS = ("payment_grassroots", "treasurer_a", GRASSROOTS_FUND)
BY_PROVINCE = ("payment_province", "treasurer_province", SOCIAL_FUND)
# (subtype, requested amount, approvers, payment step, payer, budget)
ROUTES = [
    ("hospital", 800_000, T0, *BY_GRASSROOTS),
    ("death", None, T1, *BY_GRASSROOTS),
    ("serious_illness", 8_000_000, T1, *BY_PROVINCE),
    ("accident_hospital", None, T0, *BY_PROVINCE),
    ("accident_disability", None, T1, *BY_PROVINCE),
    ("accident_death", None, T1, *BY_PROVINCE),
]
AMOUNTS = {
    "death": 5_000_000,
    "accident_hospital": 2_000_000,
    "accident_disability": 5_000_000,
    "accident_death": 10_000_000,
}


class TestEachSubtypeIsApprovedAtItsTierAndPaidFromItsFund:
    @pytest.mark.parametrize(
        ("subtype", "requested", "approvers", "pay_step", "payer", "fund"),
        ROUTES,
        ids=[r[0] for r in ROUTES],
    )
    def test_the_case_passes_each_approver_of_its_tier_and_is_paid_by_its_funds_treasurer(
        self,
        world: World,
        subtype: str,
        requested: int | None,
        approvers: list[str],
        pay_step: str,
        payer: str,
        fund: tuple[str, str],
    ) -> None:
        amount = requested or AMOUNTS[subtype]
        sub = file(world, subtype, person(world), amount=requested)
        assert (sub.status, sub.amount, sub.flags) == ("in_review", amount, [])
        expected_tasks = {
            "chair_a": ("grassroots_review", "grassroots_chair", "CS-A"),
            "upper_tp": ("upper_review", "upper_chair", "TP"),
        }
        for who in approvers:
            assert_task(world, sub.case_id, *expected_tasks[who])
            assert budget(world, *fund)["reserved"] == 0
            world.decide(sub.case_id, who)

        s = status(world, sub.case_id)
        assert (s["status"], s["approved_amount"], s["reserved_amount"]) == (
            "approved",
            amount,
            amount,
        )
        assert_task(world, sub.case_id, pay_step, "treasurer", fund[0], tranche=1)
        assert budget(world, *fund) == {**UNTOUCHED, "reserved": amount}
        world.pay(sub.case_id, amount, by=payer)

        s = status(world, sub.case_id)
        assert (s["status"], s["paid_amount"], s["reserved_amount"]) == ("paid", amount, 0)
        assert budget(world, *fund) == {**UNTOUCHED, "spent": amount}
        other = SOCIAL_FUND if fund == GRASSROOTS_FUND else GRASSROOTS_FUND
        assert budget(world, *other) == UNTOUCHED
        assert [d[:3] for d in decisions(world, sub.case_id)] == [
            *((who, expected_tasks[who][0], "approve") for who in approvers),
            (payer, pay_step, "pay"),
        ]
        assert audit_ok(world)


class TestOverTheFifteenMillionCapGoesToTheBoard:
    def test_the_case_over_the_cap_needs_two_approvers_per_level_and_a_board_majority(
        self, world: World
    ) -> None:
        cid = over_the_cap(world)
        grassroots = world.task(cid)
        world.decide(cid, "chair_a")
        assert world.task(cid)["id"] == grassroots["id"]
        world.decide(cid, "chair_a2")
        assert_task(world, cid, "upper_review", "upper_chair", "TP")
        world.decide(cid, "upper_tp")
        assert_task(world, cid, "upper_review", "upper_chair", "TP")
        world.decide(cid, "upper_tp2")

        board = assert_task(world, cid, "province_board", "province_board", "LC")
        assert (board["committee"], board["approvals_needed"]) == (True, 3)
        world.decide(cid, "board1", amount=6_000_000)
        world.decide(cid, "board2", "reject", reason="Vượt mức trần 15 triệu")
        world.decide(cid, "board3")
        assert votes(world, cid, "province_board") == {
            "board1": "vote_approve",
            "board2": "vote_reject",
            "board3": "vote_approve",
        }
        s = status(world, cid)
        assert (s["status"], s["approved_amount"]) == ("approved", 6_000_000)
        assert_task(world, cid, "payment_province", "treasurer", "LC")
        assert budget(world, *SOCIAL_FUND) == {
            **UNTOUCHED,
            "reserved": 6_000_000,
            "spent": 10_000_000,
        }
        world.pay(cid, 6_000_000)
        assert status(world, cid)["status"] == "paid"
        assert budget(world, *SOCIAL_FUND) == {**UNTOUCHED, "spent": 16_000_000}
        assert audit_ok(world)

    def test_a_board_majority_against_rejects_the_case(self, world: World) -> None:
        cid = over_the_cap(world)
        approve_all(world, cid, "chair_a", "chair_a2", "upper_tp", "upper_tp2")
        world.decide(cid, "board1", "reject", reason="Vượt mức trần")
        world.decide(cid, "board2", "reject", reason="Vượt mức trần")
        assert world.task(cid)["step"] == "province_board"
        world.decide(cid, "board3")
        s = status(world, cid)
        assert (s["status"], s["reserved_amount"]) == ("rejected", 0)
        assert budget(world, *SOCIAL_FUND) == {**UNTOUCHED, "spent": 10_000_000}
        assert claim_keys(world, cid) == []
        assert len(votes(world, cid, "province_board")) == 3

    def test_exactly_15_million_in_12_months_is_not_flagged(self, world: World) -> None:
        member = person(world)
        file(world, "serious_illness", member, days_ago=20, amount=10_000_000)
        sub = file(world, "accident_disability", member, days_ago=5)
        assert sub.flags == []
        world.decide(sub.case_id, "chair_a")
        world.decide(sub.case_id, "upper_tp")
        assert_task(world, sub.case_id, "payment_province", "treasurer", "LC")


class TestEligibilityRefusals:
    def test_a_member_who_joined_after_the_event_is_refused(self, world: World) -> None:
        member = person(world, joined=world.clock.today() - timedelta(days=2))
        with refused(world, RuleViolation, rule="member_on_event_date") as err:
            file(world, "hospital", member, days_ago=5, amount=500_000)
        assert err.value.code == "not_member_on_event_date"

    def test_a_member_who_left_before_the_event_is_refused(self, world: World) -> None:
        member = person(world)
        world.admin.end_membership("test", member, world.clock.today() - timedelta(days=10))
        with refused(world, RuleViolation, rule="member_on_event_date"):
            file(world, "death", member, days_ago=3)
        assert file(world, "death", member, days_ago=10).status == "in_review"

    def test_a_case_filed_more_than_60_days_after_the_event_is_refused(self, world: World) -> None:
        member = person(world)
        with refused(world, RuleViolation, rule="filing_window") as err:
            file(world, "accident_hospital", member, days_ago=61)
        assert err.value.code == "outside_filing_window"
        with refused(world, RuleViolation, rule="filing_window") as err:
            file(world, "accident_hospital", member, days_ago=-1)
        assert err.value.code == "event_in_future"
        assert file(world, "accident_hospital", member, days_ago=60).status == "in_review"


class TestFrequencyCapsAndDuplicates:
    def test_a_third_hospital_visit_in_a_calendar_year_is_refused(self, world: World) -> None:
        member = person(world)
        for days_ago in (40, 20):
            form = hospital_form(days_ago + 7)
            file(world, "hospital", member, days_ago=days_ago, amount=500_000, form=form)
        with refused(world, RuleViolation, rule="frequency_cap") as err:
            file(world, "hospital", member, days_ago=2, amount=500_000, form=hospital_form(4))
        assert err.value.params["max_count"] == 2

    def test_a_second_serious_illness_support_within_365_days_is_refused(
        self, world: World
    ) -> None:
        member = person(world)
        file(world, "serious_illness", member, days_ago=50, amount=5_000_000)
        with refused(world, RuleViolation, rule="frequency_cap"):
            file(world, "serious_illness", member, days_ago=1, amount=5_000_000)

    def test_the_death_support_is_paid_once_but_may_add_to_the_accident_death_support(
        self, world: World
    ) -> None:
        member = person(world)
        file(world, "death", member)
        assert file(world, "accident_death", member).status == "in_review"
        with refused(world, RuleViolation, rule="frequency_cap") as err:
            file(world, "death", member, days_ago=1)
        assert {"frequency_cap", "unique_claim"} <= set(failed_rules(err.value))

    def test_the_same_hospital_stay_cannot_be_claimed_twice_whatever_the_spelling(
        self, world: World
    ) -> None:
        member = person(world)
        first = file(world, "hospital", member, amount=500_000)
        with refused(world, RuleViolation, rule="unique_claim") as err:
            form = {**hospital_form(), "facility": "  BỆNH VIỆN ĐA KHOA TỈNH LAI CHÂU "}
            file(world, "hospital", member, amount=500_000, form=form)
        assert err.value.code == "duplicate_claim"
        assert failed_rules(err.value) == ["unique_claim"]
        assert len(claim_keys(world, first.case_id)) == 1

    def test_a_returned_claim_cannot_be_edited_into_a_stay_already_claimed(
        self, world: World
    ) -> None:
        member = person(world)
        file(world, "hospital", member, days_ago=20, amount=500_000, form=hospital_form(25))
        cid = file(world, "hospital", member, amount=500_000, form=hospital_form(6)).case_id
        world.decide(cid, "chair_a", "return", reason="Kiểm tra ngày nhập viện")
        with refused(world, RuleViolation, rule="unique_claim") as err:
            provide(world, cid, form={"admission_date": hospital_form(25)["admission_date"]})
        assert err.value.code == "duplicate_claim"
        assert status(world, cid)["status"] == "awaiting_info"

    def test_a_claim_edited_to_another_stay_frees_the_stay_it_named_before(
        self, world: World
    ) -> None:
        member = person(world)
        cid = file(world, "hospital", member, amount=500_000, form=hospital_form(6)).case_id
        before = claim_keys(world, cid)
        world.decide(cid, "chair_a", "return", reason="Sai ngày nhập viện")
        provide(world, cid, form={"admission_date": hospital_form(5)["admission_date"]})
        after = claim_keys(world, cid)
        assert len(after) == 1
        assert after != before
        again = file(world, "hospital", member, amount=500_000, form=hospital_form(6))
        assert again.status == "in_review"

    def test_each_level_of_accident_support_is_claimed_once_per_accident(
        self, world: World
    ) -> None:
        member = person(world)
        file(world, "accident_hospital", member, days_ago=30)
        with refused(world, RuleViolation, rule="unique_claim"):
            file(world, "accident_hospital", member, days_ago=30)
        assert file(world, "accident_disability", member, days_ago=30).flags == []


class TestRequestRefusals:
    def test_a_hospital_amount_outside_100_thousand_to_1_million_is_refused(
        self, world: World
    ) -> None:
        member = person(world)
        for amount in (50_000, 1_200_000):
            with refused(world, RuleViolation, rule="amount_rule", field="requested_amount"):
                file(world, "hospital", member, amount=amount)
        with refused(world, InvalidRequest, field="requested_amount"):
            file(world, "hospital", member)
        with refused(world, RuleViolation, rule="amount_rule"):
            file(world, "serious_illness", member, amount=4_000_000)
        assert file(world, "hospital", member, amount=1_000_000).amount == 1_000_000

    def test_a_requested_amount_other_than_the_fixed_one_is_refused(self, world: World) -> None:
        member = person(world)
        with refused(world, RuleViolation, rule="amount_rule", field="requested_amount"):
            file(world, "accident_hospital", member, amount=3_000_000)

    def test_a_case_without_the_health_data_consent_is_refused_as_incomplete(
        self, world: World
    ) -> None:
        member = person(world)
        docs = [d for d in world.docs("illness", "hospital") if d.kind != "health_data_consent"]
        with refused(world, RuleViolation, rule="documents_complete") as err:
            file(world, "hospital", member, amount=500_000, documents=docs)
        assert err.value.params == {"kinds": "health_data_consent"}

    def test_a_form_value_of_the_wrong_type_or_an_unknown_field_is_refused_naming_the_field(
        self, world: World
    ) -> None:
        member = person(world)
        bad = [
            ({"admission_date": "hôm qua"}, "form.admission_date"),
            ({"work_capacity_loss_percent": 120}, "form.work_capacity_loss_percent"),
            ({"work_capacity_loss_percent": "45"}, "form.work_capacity_loss_percent"),
            ({"diagnosis_category": "flu"}, "form.diagnosis_category"),
            ({"diagnosis": "ung thư phổi"}, "form.diagnosis"),
        ]
        for form, field in bad:
            with refused(world, InvalidRequest, field=field):
                file(world, "accident_disability", member, form=form)
        with refused(world, InvalidRequest, field="subtype"):
            file(world, "flu", member, form={}, documents=[])

    def test_an_illness_case_is_not_flagged_for_reusing_the_id_card_scan(
        self, world: World
    ) -> None:
        member = person(world)
        first = world.docs("illness", "accident_hospital")
        file(world, "accident_hospital", member, days_ago=30, documents=first)
        shared = {d.kind: copy_of(d) for d in first if d.kind in ("cccd", "health_data_consent")}
        docs = [shared.get(d.kind, d) for d in world.docs("illness", "accident_disability")]
        assert sum(d.filename == "copy.pdf" for d in docs) == 2
        again = file(world, "accident_disability", member, days_ago=30, documents=docs)
        assert again.flags == []


class TestDecisions:
    def test_lowering_a_serious_illness_support_to_2_million_skips_the_upper_level(
        self, world: World
    ) -> None:
        cid = file(world, "serious_illness", person(world), amount=8_000_000).case_id
        world.decide(cid, "chair_a", amount=2_000_000)
        s = status(world, cid)
        assert (s["status"], s["entitled_amount"], s["approved_amount"]) == (
            "approved",
            8_000_000,
            2_000_000,
        )
        assert_task(world, cid, "payment_province", "treasurer", "LC")
        assert budget(world, *SOCIAL_FUND)["reserved"] == 2_000_000
        world.pay(cid, 2_000_000)
        assert budget(world, *SOCIAL_FUND) == {**UNTOUCHED, "spent": 2_000_000}

    def test_lowering_at_the_upper_level_pays_the_lower_amount(self, world: World) -> None:
        cid = file(world, "accident_death", person(world)).case_id
        world.decide(cid, "chair_a")
        world.decide(cid, "upper_tp", amount=7_000_000)
        assert status(world, cid)["approved_amount"] == 7_000_000
        with refused(world, InvalidRequest, field="amount"):
            world.pay(cid, 10_000_000)
        world.pay(cid, 7_000_000)
        assert budget(world, *SOCIAL_FUND) == {**UNTOUCHED, "spent": 7_000_000}

    def test_a_rejected_hospital_claim_can_be_filed_again(self, world: World) -> None:
        member = person(world)
        cid = file(world, "hospital", member, amount=500_000).case_id
        with refused(world, InvalidRequest, field="reason"):
            world.decide(cid, "chair_a", "reject")
        world.decide(cid, "chair_a", "reject", reason="Giấy ra viện không hợp lệ")
        s = status(world, cid)
        assert (s["status"], s["reserved_amount"]) == ("rejected", 0)
        assert claim_keys(world, cid) == []
        assert budget(world, *GRASSROOTS_FUND) == UNTOUCHED
        assert file(world, "hospital", member, amount=500_000).status == "in_review"
        assert audit_ok(world)

    def test_a_return_for_information_reopens_the_grassroots_review_with_its_remaining_time(
        self, world: World
    ) -> None:
        cid = file(world, "hospital", person(world), amount=500_000).case_id
        world.clock.advance(days=1)
        world.decide(cid, "chair_a", "return", reason="Ghi rõ tên bệnh viện")
        assert status(world, cid)["status"] == "awaiting_info"
        assert_task(world, cid, "awaiting_info", "grassroots_officer", "CS-A")
        with refused(world, InvalidRequest, field="form.facility"):
            provide(world, cid, form={"facility": "x" * 201})

        world.clock.advance(hours=5)
        provide(world, cid, form={"facility": "Bệnh viện Phổi Lai Châu"}, by="officer_a2")
        now = world.clock.now
        task = assert_task(world, cid, "grassroots_review", "grassroots_chair", "CS-A")
        assert task["clock_used_before"] == 86_400
        cal = world.service.calendar
        assert now < task["due_at"] < cal.add_clock_seconds(now, 5 * 86_400, "working_days")
        assert task["due_at"] == cal.add_clock_seconds(now, 4 * 86_400, "working_days")
        s = status(world, cid)
        assert (s["status"], s["form"]["facility"]) == ("in_review", "Bệnh viện Phổi Lai Châu")
        world.decide(cid, "chair_a")
        assert status(world, cid)["status"] == "approved"

    def test_withdrawing_an_approved_case_releases_the_grassroots_reservation(
        self, world: World
    ) -> None:
        cid = file(world, "hospital", person(world), amount=900_000).case_id
        world.decide(cid, "chair_a")
        assert budget(world, *GRASSROOTS_FUND)["reserved"] == 900_000
        withdraw(world, cid)
        s = status(world, cid)
        assert (s["status"], s["reserved_amount"]) == ("withdrawn", 0)
        assert budget(world, *GRASSROOTS_FUND) == UNTOUCHED
        assert claim_keys(world, cid) == []
        assert open_tasks(world.app.engine, cid) == []
        assert audit_ok(world)


class TestSeparationOfDuties:
    def test_the_chair_who_filed_the_case_cannot_approve_it(self, world: World) -> None:
        cid = file(world, "hospital", person(world), amount=500_000, by="chair_a").case_id
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.decide(cid, "chair_a")
        assert err.value.code == "acts_twice"
        world.decide(cid, "chair_a2")
        assert status(world, cid)["status"] == "approved"

    def test_the_same_person_cannot_approve_at_the_grassroots_and_the_upper_level(
        self, world: World
    ) -> None:
        account(
            world,
            "dual_chair",
            [(Role.GRASSROOTS_CHAIR, "CS-A"), (Role.UPPER_CHAIR, "TP")],
            home="TP",
        )
        cid = file(world, "death", person(world)).case_id
        world.decide(cid, "dual_chair")
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.decide(cid, "dual_chair")
        assert err.value.code == "acts_twice"

    def test_a_chair_who_is_also_treasurer_cannot_pay_what_they_approved(
        self, world: World
    ) -> None:
        account(
            world,
            "chair_treasurer",
            [(Role.GRASSROOTS_CHAIR, "CS-A"), (Role.TREASURER, "CS-A")],
            home="CS-A",
        )
        cid = file(world, "hospital", person(world), amount=500_000).case_id
        world.decide(cid, "chair_treasurer")
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.pay(cid, 500_000, by="chair_treasurer")
        assert err.value.code == "acts_twice"
        world.pay(cid, 500_000, by="treasurer_a")

    def test_a_treasurer_cannot_pay_their_own_support(self, world: World) -> None:
        member = person(world)
        account(
            world, "member_treasurer", [(Role.TREASURER, "CS-A")], home="CS-A", member_id=member
        )
        cid = file(world, "hospital", member, amount=500_000).case_id
        world.decide(cid, "chair_a")
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.pay(cid, 500_000, by="member_treasurer")
        assert err.value.code == "actor_is_beneficiary"

    def test_approvers_and_treasurers_of_another_unit_are_denied(self, world: World) -> None:
        cid = file(world, "death", person(world)).case_id
        for outsider in ("chair_c", "chair_b", "treasurer_a"):
            with refused(world, PermissionDenied):
                world.decide(cid, outsider)
        world.decide(cid, "chair_a")
        with refused(world, PermissionDenied):
            world.decide(cid, "upper_dk")
        world.decide(cid, "upper_tp")
        with refused(world, PermissionDenied):
            world.pay(cid, 5_000_000, by="treasurer_c")
        world.pay(cid, 5_000_000, by="treasurer_a")
        assert status(world, cid)["status"] == "paid"
