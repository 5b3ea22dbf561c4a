"""Policy J (job_loss): one-time support per campaign for reduced hours, stoppage or dismissal.

Route (workflow_defs/job_loss.yaml): grassroots chair → upper-level chair → provincial
standing committee → provincial treasurer, from the provincial job-support fund. A member who
later qualifies for a higher level in the same campaign gets only the difference.
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
    new_doc,
    person,
    provide,
    refused,
    status,
    withdraw,
)
from tests.support import World

FUND = ("LC", "ho_tro_viec_lam")
UNTOUCHED = {"amount": 2_000_000_000, "reserved": 0, "spent": 0}
FORM = {"employer": "Công ty CP Thủy điện Nậm Na", "affected_days": 35, "monthly_income": 4_000_000}
CUTOFF = date(2026, 1, 1)
APPROVERS = ("chair_a", "upper_tp", "province_standing")


def campaign(world: World, code: str = "JL-2026-01", **kw: object) -> str:
    kw.setdefault("dues_cutoff", CUTOFF)
    return world.campaign("job_loss", code, **kw)


def file(world: World, subtype: str, member: str, campaign_id: str | None, **kw: Any) -> Submitted:
    """File a job-loss case for an event a week ago."""
    if "form" not in kw:
        kw["form"] = FORM
    if "event_date" not in kw:
        kw["event_date"] = world.clock.today() - timedelta(days=7)
    return world.submit("job_loss", subtype, member, campaign_id=campaign_id, **kw)


def paid(world: World, case_id: str, amount: int) -> None:
    approve_all(world, case_id, *APPROVERS)
    world.pay(case_id, amount)
    assert status(world, case_id)["status"] == "paid"


LEVELS = [
    ("reduced_hours_14", 1_000_000),
    ("reduced_hours_30", 2_000_000),
    ("terminated", 3_000_000),
]


class TestEachLevelIsPaidAfterThreeApprovals:
    @pytest.mark.parametrize(("subtype", "amount"), LEVELS, ids=[s for s, _ in LEVELS])
    def test_the_case_goes_grassroots_upper_province_then_the_provincial_treasurer_pays(
        self, world: World, subtype: str, amount: int
    ) -> None:
        sub = file(world, subtype, person(world), campaign(world))
        assert (sub.status, sub.amount, sub.flags) == ("in_review", amount, [])
        steps = [
            ("grassroots_review", "grassroots_chair", "CS-A"),
            ("upper_appraisal", "upper_chair", "TP"),
            ("province_approval", "province_standing", "LC"),
        ]
        for who, step in zip(APPROVERS, steps, strict=True):
            assert_task(world, sub.case_id, *step)
            assert budget(world, *FUND)["reserved"] == 0
            world.decide(sub.case_id, who)

        s = status(world, sub.case_id)
        assert (s["status"], s["approved_amount"], s["reserved_amount"]) == (
            "approved",
            amount,
            amount,
        )
        assert_task(world, sub.case_id, "payment", "treasurer", "LC", tranche=1)
        assert budget(world, *FUND) == {**UNTOUCHED, "reserved": amount}
        world.pay(sub.case_id, amount)
        s = status(world, sub.case_id)
        assert (s["status"], s["paid_amount"], s["reserved_amount"]) == ("paid", amount, 0)
        assert budget(world, *FUND) == {**UNTOUCHED, "spent": amount}
        assert [d[:3] for d in decisions(world, sub.case_id)] == [
            ("chair_a", "grassroots_review", "approve"),
            ("upper_tp", "upper_appraisal", "approve"),
            ("province_standing", "province_approval", "approve"),
            ("treasurer_province", "payment", "pay"),
        ]
        assert claim_keys(world, sub.case_id)
        assert audit_ok(world)

    def test_a_case_from_another_ward_is_appraised_by_that_wards_upper_union(
        self, world: World
    ) -> None:
        member = person(world, "CS-C", commune="DK")
        cid = file(
            world, "terminated", member, campaign(world), unit="CS-C", by="officer_c"
        ).case_id
        assert_task(world, cid, "grassroots_review", "grassroots_chair", "CS-C")
        world.decide(cid, "chair_c")
        assert_task(world, cid, "upper_appraisal", "upper_chair", "DK")
        with refused(world, PermissionDenied):
            world.decide(cid, "upper_tp")
        world.decide(cid, "upper_dk")
        world.decide(cid, "province_standing")
        world.pay(cid, 3_000_000)
        assert status(world, cid)["status"] == "paid"


class TestOnlyTheDifferenceIsPaidForAHigherLevel:
    def test_a_dismissal_after_a_paid_14_day_stoppage_pays_2_million_more(
        self, world: World
    ) -> None:
        member, jl = person(world), campaign(world)
        first = file(world, "reduced_hours_14", member, jl).case_id
        paid(world, first, 1_000_000)
        with refused(world, RuleViolation, rule="amount_rule", field="requested_amount"):
            file(world, "terminated", member, jl, amount=3_000_000)
        sub = file(world, "terminated", member, jl)
        assert sub.amount == 2_000_000
        paid(world, sub.case_id, 2_000_000)
        assert budget(world, *FUND) == {**UNTOUCHED, "spent": 3_000_000}
        assert audit_ok(world)

    def test_moving_up_one_level_at_a_time_pays_one_million_each_time(self, world: World) -> None:
        member, jl = person(world), campaign(world)
        amounts = [file(world, s, member, jl).amount for s, _ in LEVELS]
        assert amounts == [1_000_000, 1_000_000, 1_000_000]

    def test_a_lower_or_the_same_level_after_a_higher_one_is_refused(self, world: World) -> None:
        member, jl = person(world), campaign(world)
        file(world, "reduced_hours_30", member, jl)
        for lower in ("reduced_hours_14", "reduced_hours_30"):
            with refused(world, RuleViolation, rule="amount_rule") as err:
                file(world, lower, member, jl)
            assert err.value.code == "no_higher_level"

    def test_a_dismissal_after_a_terminated_contract_claim_is_refused(self, world: World) -> None:
        member, jl = person(world), campaign(world)
        file(world, "terminated", member, jl)
        with refused(world, RuleViolation, rule="amount_rule") as err:
            file(world, "reduced_hours_14", member, jl)
        assert err.value.code == "no_higher_level"

    def test_support_received_in_another_campaign_does_not_count(self, world: World) -> None:
        member = person(world)
        earlier = campaign(world, "JL-2026-01")
        later = campaign(world, "JL-2026-02")
        paid(world, file(world, "reduced_hours_30", member, earlier).case_id, 2_000_000)
        assert file(world, "terminated", member, later).amount == 3_000_000

    def test_a_rejected_lower_level_does_not_reduce_a_later_claim(self, world: World) -> None:
        member, jl = person(world), campaign(world)
        first = file(world, "reduced_hours_14", member, jl).case_id
        world.decide(first, "chair_a", "reject", reason="Không có tên trong Mẫu 01")
        assert file(world, "terminated", member, jl).amount == 3_000_000


class TestCampaignRules:
    def test_a_case_without_a_campaign_is_refused(self, world: World) -> None:
        member = person(world)
        with refused(world, InvalidRequest, field="campaign_id") as err:
            file(world, "terminated", member, None)
        assert err.value.code == "campaign_required"

    def test_a_case_under_another_policys_campaign_is_refused(self, world: World) -> None:
        member = person(world)
        tet = world.campaign("tet", "TET-2026")
        with refused(world, InvalidRequest, field="campaign_id"):
            file(world, "terminated", member, tet)

    def test_a_case_filed_before_the_campaign_opens_or_after_it_closes_is_refused(
        self, world: World
    ) -> None:
        member, today = person(world), world.clock.today()
        closed = campaign(world, "JL-CLOSED", closes_on=today - timedelta(days=1))
        not_yet = campaign(world, "JL-LATER", opens_on=today + timedelta(days=1))
        for jl in (closed, not_yet):
            with refused(world, RuleViolation, rule="campaign_window") as err:
                file(world, "terminated", member, jl)
            assert err.value.code == "campaign_closed"

    def test_an_event_outside_the_campaigns_event_window_is_refused(self, world: World) -> None:
        member, today = person(world), world.clock.today()
        jl = campaign(world, event_from=today - timedelta(days=30))
        with refused(world, RuleViolation, rule="campaign_window") as err:
            file(world, "terminated", member, jl, event_date=today - timedelta(days=31))
        assert err.value.code == "event_outside_campaign"
        assert file(world, "terminated", member, jl, event_date=today - timedelta(days=30)).amount

    def test_a_member_who_joined_after_the_dues_cutoff_is_refused(self, world: World) -> None:
        late = person(world, joined=CUTOFF + timedelta(days=1))
        on_time = person(world, joined=CUTOFF)
        jl = campaign(world)
        with refused(world, RuleViolation, rule="dues_before_cutoff") as err:
            file(world, "terminated", late, jl)
        assert err.value.code == "joined_after_cutoff"
        assert file(world, "terminated", on_time, jl).status == "in_review"

    def test_a_member_who_left_before_the_event_is_refused(self, world: World) -> None:
        member, jl = person(world), campaign(world)
        world.admin.end_membership("test", member, world.clock.today() - timedelta(days=8))
        with refused(world, RuleViolation, rule="member_on_event_date"):
            file(world, "terminated", member, jl)


class TestRequestRefusals:
    def test_a_form_without_the_employer_or_with_bad_days_is_refused_naming_the_field(
        self, world: World
    ) -> None:
        member, jl = person(world), campaign(world)
        bad = [
            ({"affected_days": 35}, "form.employer"),
            ({**FORM, "employer": "  "}, "form.employer"),
            ({**FORM, "affected_days": -1}, "form.affected_days"),
            ({**FORM, "affected_days": 400}, "form.affected_days"),
            ({**FORM, "affected_days": "35"}, "form.affected_days"),
            ({**FORM, "monthly_income": True}, "form.monthly_income"),
            ({**FORM, "bank_account": "0123456789"}, "form.bank_account"),
        ]
        for form, field in bad:
            with refused(world, InvalidRequest, field=field):
                file(world, "reduced_hours_30", member, jl, form=form)
        with refused(world, InvalidRequest, field="subtype"):
            file(world, "reduced_hours_7", member, jl, documents=[])

    def test_a_dismissal_without_the_termination_decision_is_refused_as_incomplete(
        self, world: World
    ) -> None:
        member, jl = person(world), campaign(world)
        docs = [d for d in world.docs("job_loss", "terminated") if d.kind != "termination_decision"]
        with refused(world, RuleViolation, rule="documents_complete") as err:
            file(world, "terminated", member, jl, documents=docs)
        assert err.value.params == {"kinds": "termination_decision"}

    def test_a_requested_amount_other_than_the_levels_is_refused(self, world: World) -> None:
        member, jl = person(world), campaign(world)
        with refused(world, RuleViolation, rule="amount_rule", field="requested_amount"):
            file(world, "reduced_hours_30", member, jl, amount=1_000_000)

    def test_workers_of_one_employer_sharing_the_form_01_list_are_not_flagged(
        self, world: World
    ) -> None:
        jl = campaign(world)
        first = world.docs("job_loss", "reduced_hours_30")
        file(world, "reduced_hours_30", person(world), jl, documents=first)
        shared = {
            d.kind: copy_of(d) for d in first if d.kind in ("form01_list", "employer_decision")
        }
        docs = [shared.get(d.kind, d) for d in world.docs("job_loss", "reduced_hours_30")]
        assert file(world, "reduced_hours_30", person(world), jl, documents=docs).flags == []


class TestDecisions:
    def test_a_rejection_at_the_appraisal_needs_a_reason_and_reserves_nothing(
        self, world: World
    ) -> None:
        cid = file(world, "terminated", person(world), campaign(world)).case_id
        world.decide(cid, "chair_a")
        with refused(world, InvalidRequest, field="reason"):
            world.decide(cid, "upper_tp", "reject")
        world.decide(cid, "upper_tp", "reject", reason="Đã hưởng trợ cấp thất nghiệp")
        s = status(world, cid)
        assert (s["status"], s["reserved_amount"]) == ("rejected", 0)
        assert budget(world, *FUND) == UNTOUCHED
        assert claim_keys(world, cid) == []
        assert open_tasks(world.app.engine, cid) == []
        assert audit_ok(world)

    def test_a_return_from_the_province_reopens_its_step_with_the_remaining_time(
        self, world: World
    ) -> None:
        cid = file(world, "terminated", person(world), campaign(world)).case_id
        approve_all(world, cid, "chair_a", "upper_tp")
        world.clock.advance(days=1)
        world.decide(cid, "province_standing", "return", reason="Bổ sung bản tự khai")
        assert status(world, cid)["status"] == "awaiting_info"
        assert_task(world, cid, "awaiting_info", "grassroots_officer", "CS-A")

        world.clock.advance(days=1)
        provide(world, cid, documents=[new_doc("ui_self_declaration", "v2")])
        now = world.clock.now
        task = assert_task(world, cid, "province_approval", "province_standing", "LC")
        cal = world.service.calendar
        assert now < task["due_at"] < cal.add_clock_seconds(now, 5 * 86_400, "working_days")
        assert task["due_at"] == cal.add_clock_seconds(now, 4 * 86_400, "working_days")
        world.decide(cid, "province_standing")
        assert status(world, cid)["status"] == "approved"
        assert budget(world, *FUND)["reserved"] == 3_000_000

    def test_withdrawing_an_approved_case_releases_the_reservation(self, world: World) -> None:
        cid = file(world, "reduced_hours_30", person(world), campaign(world)).case_id
        approve_all(world, cid, *APPROVERS)
        assert budget(world, *FUND)["reserved"] == 2_000_000
        withdraw(world, cid)
        s = status(world, cid)
        assert (s["status"], s["reserved_amount"]) == ("withdrawn", 0)
        assert budget(world, *FUND) == UNTOUCHED
        assert claim_keys(world, cid) == []
        assert audit_ok(world)

    def test_an_amount_lowered_by_the_province_is_what_is_reserved_and_paid(
        self, world: World
    ) -> None:
        cid = file(world, "terminated", person(world), campaign(world)).case_id
        approve_all(world, cid, "chair_a", "upper_tp")
        world.decide(cid, "province_standing", amount=2_000_000)
        assert budget(world, *FUND)["reserved"] == 2_000_000
        world.pay(cid, 2_000_000)
        assert budget(world, *FUND) == {**UNTOUCHED, "spent": 2_000_000}


class TestSeparationOfDuties:
    def test_the_chair_who_filed_the_case_cannot_approve_it(self, world: World) -> None:
        cid = file(world, "terminated", person(world), campaign(world), by="chair_a").case_id
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.decide(cid, "chair_a")
        assert err.value.code == "acts_twice"

    def test_the_upper_level_appraiser_cannot_also_approve_for_the_province(
        self, world: World
    ) -> None:
        account(
            world,
            "upper_and_standing",
            [(Role.UPPER_CHAIR, "TP"), (Role.PROVINCE_STANDING, "LC")],
            home="LC",
        )
        cid = file(world, "terminated", person(world), campaign(world)).case_id
        approve_all(world, cid, "chair_a", "upper_and_standing")
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.decide(cid, "upper_and_standing")
        assert err.value.code == "acts_twice"
        world.decide(cid, "province_standing2")
        assert status(world, cid)["status"] == "approved"

    def test_the_treasurer_cannot_pay_a_case_they_approved(self, world: World) -> None:
        account(
            world,
            "standing_treasurer",
            [(Role.PROVINCE_STANDING, "LC"), (Role.TREASURER, "LC")],
            home="LC",
        )
        cid = file(world, "terminated", person(world), campaign(world)).case_id
        approve_all(world, cid, "chair_a", "upper_tp", "standing_treasurer")
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.pay(cid, 3_000_000, by="standing_treasurer")
        assert err.value.code == "acts_twice"

    def test_an_upper_chair_cannot_appraise_their_own_claim(self, world: World) -> None:
        member = person(world)
        account(world, "member_upper", [(Role.UPPER_CHAIR, "TP")], home="TP", member_id=member)
        cid = file(world, "terminated", member, campaign(world)).case_id
        world.decide(cid, "chair_a")
        with refused(world, RuleViolation, rule="separation_of_duties") as err:
            world.decide(cid, "member_upper")
        assert err.value.code == "actor_is_beneficiary"

    def test_approvers_and_treasurers_of_another_unit_or_role_are_denied(
        self, world: World
    ) -> None:
        cid = file(world, "terminated", person(world), campaign(world)).case_id
        for outsider in ("chair_b", "chair_c", "officer_a2"):
            with refused(world, PermissionDenied):
                world.decide(cid, outsider)
        world.decide(cid, "chair_a")
        for outsider in ("upper_dk", "province_policy"):
            with refused(world, PermissionDenied):
                world.decide(cid, outsider)
        approve_all(world, cid, "upper_tp", "province_standing")
        for outsider in ("treasurer_tp", "treasurer_a", "president"):
            with refused(world, PermissionDenied):
                world.pay(cid, 3_000_000, by=outsider)
