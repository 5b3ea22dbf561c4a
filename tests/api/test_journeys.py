"""End-to-end journeys over HTTP, one per policy, on SQLite and PostgreSQL.

Together they cover: a return-for-information loop (housing), a lowered amount and health
data kept from the treasurer (illness), a rejection (job loss), a withdrawal releasing its
budget (disaster), a campaign list with accepted, flagged and refused members (Tết), payment
in tranches, and an auditor reading a case's trail and verifying the chain.
"""

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from api.models import ListOut
from domain.adapters.repository import AUDIT
from tests.api.conftest import TestClient, bearer, problem
from tests.api.helpers import budget, case, decide, new_doc, open_task, pay, submit
from tests.integration.helpers_policies import person
from tests.support import World

TODAY = date(2026, 3, 2)


def auditor_checks_the_trail(client: TestClient, world: World, case_id: str) -> list[str]:
    r = client.get(f"/api/v1/cases/{case_id}/trail", headers=bearer(world, "auditor"))
    assert r.status_code == 200, r.text
    trail = r.json()
    assert trail["all_ok"] is True
    v = client.post("/api/v1/audit/verification", headers=bearer(world, "auditor"), json={})
    assert v.status_code == 200, v.text
    assert v.json()["ok"] is True
    return [e["action"] for e in trail["entries"]]


def test_housing_repair_with_a_return_for_information_then_two_tranches(
    client: TestClient, world: World
) -> None:
    member = person(world)
    sub = submit(client, world, "housing", "repair", member)
    assert (sub["status"], sub["amount"], sub["amount_display"]) == (
        "in_review",
        25_000_000,
        "25.000.000\u00a0₫",
    )
    cid = sub["case_id"]
    assert all(c["outcome"] != "failed" for c in sub["checks"])

    # The grassroots chair asks for more information: the case waits for the officer.
    after = decide(client, world, cid, "chair_a", "return", reason="Bổ sung ảnh hiện trạng nhà")
    assert after["status"] == "awaiting_info"
    answer = open_task(client, world, cid, "officer_a")
    assert answer["kind"] == "member_input"
    r = client.post(
        f"/api/v1/cases/{cid}/information",
        json={"documents": [new_doc("cost_estimate", "du-toan-moi")], "note": "Đã bổ sung"},
        headers=bearer(world, "officer_a"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_review"
    assert open_task(client, world, cid, "chair_a")["step"] == "grassroots_review"

    for who in ("chair_a", "upper_tp", "province_standing"):
        state = decide(client, world, cid, who)
    assert state["status"] == "approved"
    assert budget(world, "LC", "mai_am")["reserved"] == 25_000_000

    first = pay(client, world, cid, "treasurer_province", "UNC-1")
    assert (first["status"], first["paid_amount"]) == ("approved", 12_500_000)
    second = pay(client, world, cid, "treasurer_province", "UNC-2")
    assert (second["status"], second["paid_amount"], second["open_tasks"]) == (
        "paid",
        25_000_000,
        [],
    )
    assert budget(world, "LC", "mai_am") == {
        "amount": 2_000_000_000,
        "reserved": 0,
        "spent": 25_000_000,
    }

    detail = case(client, world, cid)
    assert [d["action"] for d in detail["decisions"]] == [
        "return",
        "approve",
        "approve",
        "approve",
        "pay",
        "pay",
    ]
    assert [p["tranche"] for p in detail["payments"]] == [1, 2]
    actions = auditor_checks_the_trail(client, world, cid)
    assert actions[:2] == ["case.submitted", "case.screened"]
    assert "case.info_provided" in actions
    assert actions.count("case.payment_recorded") == 2


def test_illness_amount_lowered_and_health_data_kept_from_the_treasurer(
    client: TestClient, world: World
) -> None:
    member = person(world)
    sub = submit(
        client,
        world,
        "illness",
        "serious_illness",
        member,
        event_date=TODAY - timedelta(days=3),
        form={"diagnosis_category": "cancer"},
        amount=8_000_000,
    )
    cid = sub["case_id"]
    decide(client, world, cid, "chair_a")
    state = decide(
        client, world, cid, "upper_tp", "approve_lower", amount=6_000_000, reason="Theo quỹ"
    )
    assert (state["status"], state["approved_amount"]) == ("approved", 6_000_000)
    assert budget(world, "LC", "xa_hoi")["reserved"] == 6_000_000

    # The approver sees the diagnosis and the health documents; the treasurer does not.
    seen = case(client, world, cid, "upper_tp")
    assert seen["form"]["diagnosis_category"] == "cancer"
    assert seen["redacted_fields"] == []
    diag = next(d for d in seen["documents"] if d["kind"] == "diagnosis_confirmation")
    assert diag["sensitive"] is True
    assert diag["redacted"] is False
    assert diag["sha256"]
    hidden = case(client, world, cid, "treasurer_province")
    assert hidden["form"]["diagnosis_category"] is None
    assert hidden["redacted_fields"] == ["diagnosis_category"]
    diag = next(d for d in hidden["documents"] if d["kind"] == "diagnosis_confirmation")
    assert diag["redacted"] is True
    assert (diag["filename"], diag["sha256"], diag["size"]) == (None, None, None)
    assert hidden["case"]["member_cccd"].startswith("••••••••")

    paid = pay(client, world, cid, "treasurer_province")
    assert (paid["status"], paid["paid_amount"]) == ("paid", 6_000_000)
    actions = auditor_checks_the_trail(client, world, cid)
    assert "document.read" in actions  # the approver's (and the auditor's) reads are on record


def test_job_loss_rejected_at_the_appraisal_reserves_nothing(
    client: TestClient, world: World
) -> None:
    campaign = world.campaign("job_loss", "JL-API-2026", dues_cutoff=date(2026, 1, 1))
    member = person(world)
    sub = submit(
        client,
        world,
        "job_loss",
        "terminated",
        member,
        event_date=TODAY - timedelta(days=7),
        campaign_id=campaign,
        form={
            "employer": "Công ty CP Thủy điện Nậm Na",
            "affected_days": 35,
            "monthly_income": 4_000_000,
        },
    )
    cid = sub["case_id"]
    decide(client, world, cid, "chair_a")
    # A rejection needs a reason: refused with the field named, nothing changes.
    r = decide(client, world, cid, "upper_tp", "reject", expect=422)
    assert (r["code"], r["field"]) == ("invalid_field", "reason")
    state = decide(client, world, cid, "upper_tp", "reject", reason="Đã hưởng trợ cấp thất nghiệp")
    assert (state["status"], state["open_tasks"]) == ("rejected", [])
    assert budget(world, "LC", "ho_tro_viec_lam")["reserved"] == 0
    listed = client.get(
        "/api/v1/cases", params={"status": "rejected"}, headers=bearer(world, "officer_a")
    ).json()
    assert [c["id"] for c in listed["items"]] == [cid]
    assert "task.decided" in auditor_checks_the_trail(client, world, cid)


def test_disaster_withdrawal_releases_the_reserved_budget(client: TestClient, world: World) -> None:
    event = world.campaign("disaster", "LU-QUET-API", affected_communes=["TP"])
    before = budget(world, "LC", "thien_tai")
    cid = submit(client, world, "disaster", "house_damaged", person(world), campaign_id=event)[
        "case_id"
    ]
    state = decide(client, world, cid, "chair_a")
    assert (state["status"], state["reserved_amount"]) == ("approved", 2_000_000)
    assert budget(world, "LC", "thien_tai")["reserved"] == before["reserved"] + 2_000_000

    # Only the filing unit withdraws: another unit's officer does not even see the case.
    problem(
        client.post(f"/api/v1/cases/{cid}/withdrawal", headers=bearer(world, "officer_c")),
        404,
        "not_found",
    )
    r = client.post(
        f"/api/v1/cases/{cid}/withdrawal",
        json={"reason": "Gia đình đã được hỗ trợ từ nguồn khác"},
        headers=bearer(world, "officer_a"),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reserved_amount"], r.json()["open_tasks"]) == (
        "withdrawn",
        0,
        [],
    )
    assert budget(world, "LC", "thien_tai") == before
    # Withdrawn is final.
    again = client.post(f"/api/v1/cases/{cid}/withdrawal", headers=bearer(world, "officer_a"))
    problem(again, 409, "transition_not_allowed")
    with world.app.engine.connect() as conn:
        actions = [
            r[0]
            for r in conn.execute(
                select(AUDIT.c.action).where(AUDIT.c.entity_id == cid).order_by(AUDIT.c.seq)
            )
        ]
    assert actions[-1] == "case.withdrawn"


def test_a_malformed_list_is_refused_whole_naming_the_item_and_field(
    client: TestClient, world: World
) -> None:
    season = world.campaign("tet", "TET-API-MALFORMED")
    ok = person(world)
    good = {"member_id": ok, "subtype": "standard", "event_date": TODAY.isoformat()}
    items = [good, {**good, "event_date": "2026-02-30"}, {**good, "member_id": "bad id!"}]
    body = {"policy": "tet", "unit_id": "CS-A", "campaign_id": season, "items": items}
    r = client.post("/api/v1/case-lists", json=body, headers=bearer(world, "officer_a"))
    out = problem(r, 422, "validation_error")
    assert out["field"] == "items[1].event_date"
    errors = out["errors"]
    assert isinstance(errors, list)
    assert [e["field"] for e in errors] == ["items[1].event_date", "items[2].member_id"]
    assert {e["location"] for e in errors} == {"body"}
    assert (
        client.get(
            "/api/v1/cases", params={"campaign_id": season}, headers=bearer(world, "officer_a")
        ).json()["total"]
        == 0
    )


def test_tet_list_with_accepted_flagged_and_refused_members_then_paid(
    client: TestClient, world: World
) -> None:
    season = world.campaign("tet", "TET-API-BINH-NGO")
    ok1, ok2, hardship = person(world), person(world), person(world)
    newcomer = person(world, joined=TODAY + timedelta(days=30))
    signed = [new_doc("signed_list", "CS-A-danh-sach-tet")]
    items: list[dict[str, Any]] = [
        {"member_id": ok1, "subtype": "standard", "event_date": TODAY.isoformat(),
         "form": {"criterion": "low_income"}},
        {"member_id": newcomer, "subtype": "standard", "event_date": TODAY.isoformat(),
         "form": {"criterion": "low_income"}},
        {"member_id": hardship, "subtype": "special_hardship", "event_date": TODAY.isoformat(),
         "form": {"criterion": "low_income", "disaster_area": True}},
        {"member_id": ok2, "subtype": "standard", "event_date": TODAY.isoformat(),
         "form": {"criterion": "low_income"}},
        {"member_id": "0192f7a0-0000-7000-8000-00000000dead", "subtype": "standard",
         "event_date": TODAY.isoformat()},
    ]  # fmt: skip
    for i in items:
        i["documents"] = signed
    body = {"policy": "tet", "unit_id": "CS-A", "campaign_id": season, "items": items}
    r = client.post("/api/v1/case-lists", json=body, headers=bearer(world, "officer_a"))
    assert r.status_code == 200, r.text
    out = r.json()
    # Built item by item into one buffer, the answer is byte for byte the documented model's.
    assert r.content == ListOut.model_validate(out).model_dump_json().encode()
    assert (out["accepted"], out["flagged"], out["refused"]) == (2, 1, 2)
    by_index = {i["index"]: i for i in out["items"]}
    assert [by_index[i]["outcome"] for i in range(5)] == [
        "accepted",
        "refused",
        "flagged",
        "accepted",
        "refused",
    ]
    assert by_index[1]["rule"] == "member_on_event_date"
    assert by_index[1]["case_id"] is None
    assert by_index[1]["reason"].startswith("Không phải đoàn viên vào ngày")
    assert by_index[2]["flags"] == ["C5"]
    assert by_index[4]["code"] == "not_found"

    # A foreign officer's list is refused whole, and nothing is written.
    foreign = client.post("/api/v1/case-lists", json=body, headers=bearer(world, "officer_c"))
    problem(foreign, 403, "permission_denied")

    listed = client.get(
        "/api/v1/cases", params={"campaign_id": season}, headers=bearer(world, "officer_a")
    ).json()
    assert listed["total"] == 3
    accepted = by_index[0]["case_id"]
    decide(client, world, accepted, "chair_a")
    decide(client, world, accepted, "upper_tp")
    paid = pay(client, world, accepted, "treasurer_tp")
    assert (paid["status"], paid["paid_amount"]) == ("paid", 1_000_000)
    # The flagged member's case needs a second approver at the grassroots step.
    flagged = by_index[2]["case_id"]
    decide(client, world, flagged, "chair_a")
    assert open_task(client, world, flagged, "chair_a2")["step"] == "grassroots_review"
    assert auditor_checks_the_trail(client, world, accepted)[0] == "case.submitted"


def test_the_submission_answer_names_the_task_it_opened(client: TestClient, world: World) -> None:
    answer = submit(client, world, "housing", "repair", person(world))
    assert answer["status"] == "in_review"
    task = open_task(client, world, answer["case_id"], "chair_a")
    assert answer["open_task_ids"] == [task["id"]]
