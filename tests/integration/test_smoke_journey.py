"""A complete housing case, submission to the second tranche, on both databases."""

from domain.service.queries import case_status, case_trail, verify_audit
from tests.support import World


def test_housing_repair_goes_from_submission_to_paid_in_two_tranches(world: World) -> None:
    member = world.member()
    sub = world.submit("housing", "repair", member)
    assert sub.status == "in_review"
    assert sub.open_task_ids == [world.task(sub.case_id)["id"]]  # the grassroots review
    for approver in ("chair_a", "upper_tp", "province_standing"):
        world.decide(sub.case_id, approver)
    world.pay(sub.case_id, 12_500_000, ref="UNC-1")
    world.pay(sub.case_id, 12_500_000, ref="UNC-2")
    status = case_status(world.app.engine, sub.case_id)
    assert status is not None
    assert status["status"] == "paid"
    assert status["paid_amount"] == 25_000_000
    actions = [e.action for e in case_trail(world.app.engine, sub.case_id)]
    assert actions[:2] == ["case.submitted", "case.screened"]
    assert actions.count("case.payment_recorded") == 2
    assert verify_audit(world.app.engine).ok


def test_a_back_dated_case_cannot_slip_under_a_frequency_cap(world: World) -> None:
    """Hospital stays are capped per calendar year; filing an earlier stay after later ones counts too."""
    import pytest

    from domain.errors import RuleViolation

    member = world.member()
    today = world.clock.today()
    form = {"admission_date": today.isoformat(), "facility": "Bệnh viện Đa khoa tỉnh Lai Châu"}
    defn = world.app.definitions.current("illness")
    caps = [
        u
        for _, _, u in defn.rule_uses()
        if u.rule == "frequency_cap" and u.subtypes == ["hospital"]
    ]
    if not caps:
        pytest.skip("illness has no hospital frequency cap")
    limit = caps[0].params["max_count"]
    for i in range(limit):
        day = today.replace(day=max(1, today.day - i))
        world.submit(
            "illness",
            "hospital",
            member,
            event_date=day,
            amount=500_000,
            form={**form, "admission_date": day.isoformat(), "facility": f"BV {i}"},
        )
    earlier = today.replace(month=1, day=2)
    with pytest.raises(RuleViolation) as err:
        world.submit(
            "illness",
            "hospital",
            member,
            event_date=earlier,
            amount=500_000,
            form={**form, "admission_date": earlier.isoformat(), "facility": "BV sớm"},
        )
    assert err.value.rule == "frequency_cap"
