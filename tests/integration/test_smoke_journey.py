"""A complete housing case, submission to the second tranche, on both databases."""

from domain.service.queries import case_status, case_trail, verify_audit
from tests.support import World


def test_housing_repair_goes_from_submission_to_paid_in_two_tranches(world: World) -> None:
    member = world.member()
    sub = world.submit("housing", "repair", member)
    assert sub.status == "in_review"
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
