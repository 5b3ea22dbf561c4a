"""Scope and personal data: other units' cases do not exist for you (404), CCCD is always
masked, health data is shown only to those who need it and reading it is audited; the inbox,
documents, delegation and the treasurer's list."""

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from domain.adapters.repository import AUDIT
from domain.roles import Role
from tests.api.conftest import TestClient, bearer, problem
from tests.api.helpers import case, decide, docs, new_doc, open_task, submit
from tests.integration.helpers_policies import person
from tests.support import World

SHOULD_NOT_SEE = ["officer_b", "chair_b", "officer_c", "chair_c", "upper_dk", "treasurer_c"]


@pytest.fixture
def housing_case(client: TestClient, world: World) -> str:
    return str(submit(client, world, "housing", "repair", person(world))["case_id"])


def illness_case(client: TestClient, world: World) -> str:
    return str(
        submit(
            client,
            world,
            "illness",
            "serious_illness",
            person(world),
            event_date=world.clock.today() - timedelta(days=3),
            form={"diagnosis_category": "cancer"},
            amount=8_000_000,
        )["case_id"]
    )


def document_reads(world: World, case_id: str) -> list[dict[str, Any]]:
    with world.app.engine.connect() as conn:
        rows = conn.execute(
            select(AUDIT.c.actor_id, AUDIT.c.payload).where(
                AUDIT.c.action == "document.read", AUDIT.c.entity_id == case_id
            )
        ).all()
    return [{"actor": r[0], **json.loads(r[1])} for r in rows]


@pytest.mark.parametrize("who", SHOULD_NOT_SEE)
def test_another_units_case_is_404_for_every_read_and_write(
    client: TestClient, world: World, housing_case: str, who: str
) -> None:
    h = bearer(world, who)
    cid = housing_case
    problem(client.get(f"/api/v1/cases/{cid}", headers=h), 404, "not_found")
    assert cid not in [c["id"] for c in client.get("/api/v1/cases", headers=h).json()["items"]]
    writes = [
        (f"/api/v1/cases/{cid}/withdrawal", {}),
        (f"/api/v1/cases/{cid}/information", {"note": "x"}),
        (f"/api/v1/cases/{cid}/documents", {"documents": [new_doc("cost_estimate", who)]}),
        (
            f"/api/v1/cases/{cid}/payments",
            {"amount": 1, "method": "cash", "reference": "R-1"},
        ),
    ]
    for url, body in writes:
        problem(client.post(url, json=body, headers=h), 404, "not_found")
    task = open_task(client, world, cid, "chair_a")
    for action in ("claim", "release"):
        problem(client.post(f"/api/v1/tasks/{task['id']}/{action}", headers=h), 404)
    problem(
        client.post(f"/api/v1/tasks/{task['id']}/decision", json={"action": "approve"}, headers=h),
        404,
    )
    # The unknown id and the foreign id answer the same.
    unknown = client.get("/api/v1/cases/0192f7a0-0000-7000-8000-000000000000", headers=h)
    assert (
        problem(unknown, 404)["title"]
        == problem(client.get(f"/api/v1/cases/{cid}", headers=h), 404)["title"]
    )


@pytest.mark.parametrize("key", [None, "retry-1"])
def test_a_task_outside_the_scope_is_404_whatever_its_state(
    client: TestClient, world: World, housing_case: str, key: str | None
) -> None:
    """Claim, delegate and decide ask for the task's scope only after the service refused; a
    closed task, a claimed one or a bad request must still answer 404 to an outsider."""
    task_id = open_task(client, world, housing_case, "chair_a")["id"]
    chair = bearer(world, "chair_a")
    url = f"/api/v1/tasks/{task_id}"
    assert client.post(f"{url}/claim", headers=chair).status_code == 200
    outsider = {**bearer(world, "chair_b"), **({"Idempotency-Key": key} if key else {})}
    until = (world.clock.now + timedelta(days=2)).isoformat()
    delegation = {"to_account_id": world.accounts["chair_b"], "until": until}
    problem(client.post(f"{url}/claim", headers=outsider), 404, "not_found")
    problem(client.post(f"{url}/delegation", json=delegation, headers=outsider), 404, "not_found")
    lower = {"action": "approve_lower"}  # no amount: 422 for whoever may see the task
    problem(client.post(f"{url}/decision", json=lower, headers=outsider), 404, "not_found")
    problem(client.post(f"{url}/decision", json=lower, headers=chair), 422)
    approve = {"action": "approve"}
    assert client.post(f"{url}/decision", json=approve, headers=chair).status_code == 200
    # Closed now: its holder is told so (409), the outsider still learns nothing.
    problem(client.post(f"{url}/decision", json=approve, headers=chair), 409)
    problem(client.post(f"{url}/decision", json=approve, headers=outsider), 404, "not_found")
    problem(client.post(f"{url}/claim", headers=outsider), 404, "not_found")


def test_units_above_see_the_case_and_a_visible_task_of_another_role_is_403(
    client: TestClient, world: World, housing_case: str
) -> None:
    for who in ("upper_tp", "province_standing", "auditor", "auditor_tp", "treasurer_province"):
        assert case(client, world, housing_case, who)["case"]["id"] == housing_case
    task = open_task(client, world, housing_case, "chair_a")
    r = client.post(
        f"/api/v1/tasks/{task['id']}/decision",
        json={"action": "approve"},
        headers=bearer(world, "upper_tp"),
    )
    problem(r, 403, "not_task_holder")


def test_cccd_is_masked_in_every_answer(
    client: TestClient, world: World, housing_case: str
) -> None:
    from domain.adapters.repository import MEMBER

    with world.app.engine.connect() as conn:
        cccds = [r[0] for r in conn.execute(select(MEMBER.c.cccd))]
    texts = [
        client.get(f"/api/v1/cases/{housing_case}", headers=bearer(world, "auditor")).text,
        client.get("/api/v1/cases", headers=bearer(world, "province_standing")).text,
        client.get("/api/v1/inbox", headers=bearer(world, "chair_a")).text,
    ]
    for text in texts:
        assert not any(c in text for c in cccds)
    shown = case(client, world, housing_case)["case"]["member_cccd"]
    assert shown[:8] == "•" * 8
    assert shown[8:].isdigit()


def test_health_data_redacted_for_others_and_its_reading_audited(
    client: TestClient, world: World
) -> None:
    cid = illness_case(client, world)
    # The treasurer and the province's policy office reach the case but hold no task on it.
    for who in ("treasurer_province", "province_policy"):
        seen = case(client, world, cid, who)
        assert seen["form"]["diagnosis_category"] is None
        assert all(d["redacted"] for d in seen["documents"] if d["sensitive"])
    assert document_reads(world, cid) == []
    # The approver of the open task and the auditor see it; each read is on record, ids only.
    for who in ("chair_a", "auditor"):
        seen = case(client, world, cid, who)
        assert seen["form"]["diagnosis_category"] == "cancer"
        assert not any(d["redacted"] for d in seen["documents"])
    reads = document_reads(world, cid)
    assert [r["actor"] for r in reads] == [world.accounts["chair_a"], world.accounts["auditor"]]
    sensitive = {d["id"] for d in seen["documents"] if d["sensitive"]}
    assert set(reads[0]["documents"]) == sensitive
    assert set(reads[0]) == {"actor", "case", "documents"}  # no names, no file names


def test_a_member_account_reads_only_cases_about_itself(client: TestClient, world: World) -> None:
    me = person(world)
    world.account("doan.vien", Role.MEMBER, "CS-A", member_id=me)
    mine = submit(client, world, "housing", "repair", me)["case_id"]
    other = submit(client, world, "housing", "repair", person(world))["case_id"]
    assert case(client, world, mine, "doan.vien")["case"]["member_id"] == me
    problem(client.get(f"/api/v1/cases/{other}", headers=bearer(world, "doan.vien")), 404)
    listed = client.get("/api/v1/cases", headers=bearer(world, "doan.vien")).json()
    assert [c["id"] for c in listed["items"]] == [mine]


def test_attached_documents_are_checked_for_reuse_and_closed_cases_refuse_them(
    client: TestClient, world: World
) -> None:
    first = submit(client, world, "housing", "repair", person(world))
    reused = docs(world, "housing", "repair")[0] | {"kind": "cost_estimate"}
    cid = submit(client, world, "housing", "repair", person(world))["case_id"]
    fresh = client.post(
        f"/api/v1/cases/{cid}/documents",
        json={"documents": [new_doc("cost_estimate", "du-toan-rieng")]},
        headers=bearer(world, "officer_a"),
    )
    assert (fresh.status_code, fresh.json()["flags"]) == (200, [])
    # A file of another case's documents, attached again here: flagged C17.
    first_docs = case(client, world, first["case_id"])["documents"]
    reused["sha256"] = first_docs[0]["sha256"]
    r = client.post(
        f"/api/v1/cases/{cid}/documents",
        json={"documents": [reused]},
        headers=bearer(world, "officer_a"),
    )
    assert (r.status_code, r.json()["flags"]) == (200, ["C17"])
    kinds = [d["kind"] for d in case(client, world, cid)["documents"]]
    assert kinds.count("cost_estimate") >= 2
    # Not the approvers' to add, and not on a closed case.
    problem(
        client.post(
            f"/api/v1/cases/{cid}/documents",
            json={"documents": [new_doc("cost_estimate", "x")]},
            headers=bearer(world, "treasurer_province"),
        ),
        403,
    )
    client.post(f"/api/v1/cases/{cid}/withdrawal", headers=bearer(world, "officer_a"))
    closed = client.post(
        f"/api/v1/cases/{cid}/documents",
        json={"documents": [new_doc("cost_estimate", "y")]},
        headers=bearer(world, "officer_a"),
    )
    problem(closed, 409, "transition_not_allowed")


def test_the_inbox_is_sorted_by_due_time_filtered_and_marks_overdue(
    client: TestClient, world: World
) -> None:
    a = submit(client, world, "housing", "repair", person(world))["case_id"]
    world.clock.advance(hours=2)
    b = submit(client, world, "housing", "repair", person(world))["case_id"]
    h = bearer(world, "chair_a")
    items = client.get("/api/v1/inbox", headers=h).json()
    assert [i["case_id"] for i in items["items"]] == [a, b]
    assert items["overdue"] == 0
    assert all(not i["task"]["overdue"] for i in items["items"])
    assert client.get("/api/v1/inbox", headers=bearer(world, "chair_b")).json()["count"] == 0
    assert client.get("/api/v1/inbox", headers=bearer(world, "upper_tp")).json()["count"] == 0
    world.clock.advance(days=30)
    h = bearer(world, "chair_a")  # the old token expired meanwhile
    late = client.get("/api/v1/inbox", headers=h).json()
    assert late["overdue"] == 2
    assert all(i["task"]["overdue"] for i in late["items"])
    assert client.get("/api/v1/inbox?overdue=false", headers=h).json()["count"] == 0
    assert client.get("/api/v1/inbox?policy=illness", headers=h).json()["count"] == 0
    # Claimed: still in the chair's inbox, now as theirs; the other chair sees who has it.
    task = open_task(client, world, a, "chair_a")
    assert client.post(f"/api/v1/tasks/{task['id']}/claim", headers=h).status_code == 200
    mine = client.get("/api/v1/inbox?mine=true", headers=h).json()
    assert [i["case_id"] for i in mine["items"]] == [a]
    assert mine["items"][0]["assigned_to_me"] is True
    other = client.get("/api/v1/inbox", headers=bearer(world, "chair_a2")).json()["items"]
    assert [i["task"]["assignee_id"] for i in other if i["case_id"] == a] == [
        world.accounts["chair_a"]
    ]


def test_delegation_is_time_bounded_and_lands_in_the_delegates_inbox(
    client: TestClient, world: World, housing_case: str
) -> None:
    task = open_task(client, world, housing_case, "chair_a")
    url = f"/api/v1/tasks/{task['id']}/delegation"
    now = world.clock.now
    h = bearer(world, "chair_a")
    to = world.accounts["chair_a2"]
    for until in (now - timedelta(hours=1), now + timedelta(days=31)):
        r = client.post(url, json={"to_account_id": to, "until": until.isoformat()}, headers=h)
        assert problem(r, 422, "invalid_field")["field"] == "until"
    naive = client.post(url, json={"to_account_id": to, "until": "2026-03-05T10:00:00"}, headers=h)
    problem(naive, 422, "validation_error")
    ok = client.post(
        url, json={"to_account_id": to, "until": (now + timedelta(days=3)).isoformat()}, headers=h
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["open_tasks"][0]["delegated_by"] == world.accounts["chair_a"]
    delegate_inbox = client.get("/api/v1/inbox?mine=true", headers=bearer(world, "chair_a2"))
    assert [i["case_id"] for i in delegate_inbox.json()["items"]] == [housing_case]
    state = decide(client, world, housing_case, "chair_a2")
    assert state["current_step"] == "upper_survey"


def test_only_treasurers_list_pending_payments_in_their_scope(
    client: TestClient, world: World, housing_case: str
) -> None:
    for who in ("chair_a", "upper_tp", "province_standing"):
        decide(client, world, housing_case, who)
    problem(client.get("/api/v1/payments/pending", headers=bearer(world, "officer_a")), 403)
    tp = client.get("/api/v1/payments/pending", headers=bearer(world, "treasurer_tp")).json()
    assert tp["count"] == 0  # housing is paid by the province
    lc = client.get("/api/v1/payments/pending", headers=bearer(world, "treasurer_province"))
    item = lc.json()["items"][0]
    assert (item["case"]["id"], item["tranche"], item["tranches"], item["amount_due"]) == (
        housing_case,
        1,
        2,
        12_500_000,
    )
    # A wrong amount is refused naming the field, and nothing is paid.
    r = client.post(
        f"/api/v1/cases/{housing_case}/payments",
        json={"amount": 25_000_000, "method": "bank_transfer", "reference": "UNC-9"},
        headers=bearer(world, "treasurer_province"),
    )
    assert problem(r, 422, "invalid_field")["field"] == "amount"
