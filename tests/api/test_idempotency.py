"""Idempotency-Key: a retried write replays the first answer and changes nothing."""

import asyncio
from typing import Any

import httpx
import pytest

from api.models import ListOut
from domain.service.idempotency import IdempotencyStore, Reserved, request_hash
from tests.api.conftest import TestClient, bearer, problem
from tests.api.helpers import counts, docs, open_task
from tests.integration.helpers_policies import person
from tests.support import World


def body_for(world: World, member: str) -> dict[str, Any]:
    return {
        "policy": "housing",
        "unit_id": "CS-A",
        "member_id": member,
        "subtype": "repair",
        "event_date": world.clock.today().isoformat(),
        "documents": docs(world, "housing", "repair"),
    }


def test_a_retried_submit_replays_the_first_answer_and_writes_nothing(
    client: TestClient, world: World
) -> None:
    body = body_for(world, person(world))
    h = {**bearer(world, "officer_a"), "Idempotency-Key": "nop-ho-so-001"}
    first = client.post("/api/v1/cases", json=body, headers=h)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    after_first = counts(world)
    again = client.post("/api/v1/cases", json=body, headers=h)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert counts(world) == after_first
    # Without a key, the same request is a new request (and the domain refuses the duplicate).
    third = client.post("/api/v1/cases", json=body, headers=bearer(world, "officer_a"))
    problem(third, 422)


def test_the_same_key_with_another_body_is_refused(client: TestClient, world: World) -> None:
    h = {**bearer(world, "officer_a"), "Idempotency-Key": "khoa-dung-lai"}
    assert client.post("/api/v1/cases", json=body_for(world, person(world)), headers=h).is_success
    other_body = body_for(world, person(world))
    before = counts(world)
    other = client.post("/api/v1/cases", json=other_body, headers=h)
    p = problem(other, 422, "idempotency_key_reused")
    assert p["field"] == "Idempotency-Key"
    assert counts(world) == before
    # Keys belong to an account: another officer may use the same key for their own request.
    mine = client.post(
        "/api/v1/cases",
        json=body_for(world, person(world)),
        headers={**bearer(world, "officer_a2"), "Idempotency-Key": "khoa-dung-lai"},
    )
    assert mine.status_code == 201, mine.text


def test_a_retried_decision_replays_and_does_not_decide_twice(
    client: TestClient, world: World
) -> None:
    cid = client.post(
        "/api/v1/cases", json=body_for(world, person(world)), headers=bearer(world, "officer_a")
    ).json()["case_id"]
    task = open_task(client, world, cid, "chair_a")
    h = {**bearer(world, "chair_a"), "Idempotency-Key": "duyet-1"}
    url = f"/api/v1/tasks/{task['id']}/decision"
    first = client.post(url, json={"action": "approve"}, headers=h)
    assert first.status_code == 200, first.text
    before = counts(world)
    again = client.post(url, json={"action": "approve"}, headers=h)
    assert (again.status_code, again.json()) == (200, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert counts(world) == before
    # Without the key the task is no longer open: a plain retry is a 409, not a second decision.
    problem(client.post(url, json={"action": "approve"}, headers=bearer(world, "chair_a")), 409)


def test_a_final_refusal_is_replayed_but_a_conflict_may_be_retried(
    client: TestClient, world: World
) -> None:
    cid = client.post(
        "/api/v1/cases", json=body_for(world, person(world)), headers=bearer(world, "officer_a")
    ).json()["case_id"]
    task = open_task(client, world, cid, "chair_a")
    url = f"/api/v1/tasks/{task['id']}/decision"
    # A reject without a reason is refused for good: the refusal itself is replayed.
    h = {**bearer(world, "chair_a"), "Idempotency-Key": "tu-choi-thieu-ly-do"}
    p1 = problem(client.post(url, json={"action": "reject"}, headers=h), 422, "invalid_field")
    r2 = client.post(url, json={"action": "reject"}, headers=h)
    assert r2.headers["idempotent-replayed"] == "true"
    assert problem(r2, 422) == p1
    # A 409 (claimed by someone else) is not stored: after the release, the retry runs.
    claim = client.post(f"/api/v1/tasks/{task['id']}/claim", headers=bearer(world, "chair_a2"))
    assert claim.status_code == 200, claim.text
    h = {**bearer(world, "chair_a"), "Idempotency-Key": "duyet-sau-khi-nha"}
    problem(client.post(url, json={"action": "approve"}, headers=h), 409, "task_claimed_by_other")
    client.post(f"/api/v1/tasks/{task['id']}/release", headers=bearer(world, "chair_a2"))
    retried = client.post(url, json={"action": "approve"}, headers=h)
    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers


def test_a_key_in_use_by_a_running_request_answers_409(client: TestClient, world: World) -> None:
    body = body_for(world, person(world))
    scope = "POST /api/v1/cases"
    digest = request_hash({"path": "/api/v1/cases", "body": _as_model_json(body)})
    store = IdempotencyStore(world.app.engine, world.app.service.clock)
    # The first request with this key has reserved it and is still running.
    assert isinstance(
        store.begin(world.accounts["officer_a"], "dang-chay", scope=scope, request_hash=digest),
        Reserved,
    )
    before = counts(world)
    h = {**bearer(world, "officer_a"), "Idempotency-Key": "dang-chay"}
    problem(client.post("/api/v1/cases", json=body, headers=h), 409, "idempotency_in_progress")
    assert counts(world) == before
    # A reservation left by a process that died is taken over after a while.
    world.clock.advance(minutes=10)
    assert client.post("/api/v1/cases", json=body, headers=h).status_code == 201


class _ProcessDied(Exception):
    """The API process ends between the command's commit and the storing of its answer."""


def _die(*_: Any) -> None:
    raise _ProcessDied


def test_a_crash_after_the_command_never_lets_a_retry_run_it_again(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = body_for(world, person(world))
    h = {**bearer(world, "officer_a"), "Idempotency-Key": "mat-dien-giua-chung"}

    with monkeypatch.context() as patched:
        patched.setattr(IdempotencyStore, "finish", _die)
        with pytest.raises(_ProcessDied):
            client.post("/api/v1/cases", json=body, headers=h)
    after_crash = counts(world)
    assert after_crash["welfare_case"] == 1
    world.clock.advance(minutes=10)  # long past the time a placeholder is taken over
    for lang, start in (("vi", "Yêu cầu với Idempotency-Key này đã được thực hiện"), ("en", "The")):
        retry = client.post("/api/v1/cases", json=body, headers={**h, "Accept-Language": lang})
        p = problem(retry, 409, "idempotency_outcome_lost")
        assert str(p["title"]).startswith(start)
    assert counts(world) == after_crash


def test_a_refused_command_leaves_the_key_free_to_retry_after_a_crash(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing committed, so no "ran" mark: after a crash the key is taken over and runs."""
    body = {**body_for(world, person(world)), "unit_id": "CS-B"}  # not the member's union
    h = {**bearer(world, "officer_b"), "Idempotency-Key": "tu-choi-roi-mat-dien"}
    with monkeypatch.context() as patched:
        patched.setattr(IdempotencyStore, "finish", _die)
        with pytest.raises(_ProcessDied):
            client.post("/api/v1/cases", json=body, headers=h)
    world.clock.advance(minutes=10)
    again = client.post("/api/v1/cases", json=body, headers=h)
    assert problem(again, 422, "not_member_of_filing_unit")["rule"] == "member_on_event_date"


def _as_model_json(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the API's model dumps it (defaults filled in), which is what is hashed."""
    from api.models import CaseIn

    return CaseIn.model_validate(body).model_dump(mode="json")


async def test_two_identical_requests_at_once_write_one_case(
    async_client: httpx.AsyncClient, world: World
) -> None:
    body = body_for(world, person(world))
    h = {**bearer(world, "officer_a"), "Idempotency-Key": "cung-luc"}
    before = counts(world)
    a, b = await asyncio.gather(
        async_client.post("/api/v1/cases", json=body, headers=h),
        async_client.post("/api/v1/cases", json=body, headers=h),
    )
    statuses = sorted([a.status_code, b.status_code])
    # Either the second waited and replayed the first answer, or it found it running (409).
    assert statuses in ([201, 201], [201, 409]), (a.text, b.text)
    if statuses == [201, 201]:
        assert a.json() == b.json()
    assert counts(world)["welfare_case"] == before["welfare_case"] + 1


def test_a_bad_key_is_a_validation_problem(client: TestClient, world: World) -> None:
    body = body_for(world, person(world))
    for key in ("", "x" * 201, "khoa co dau"):
        h = {**bearer(world, "officer_a"), "Idempotency-Key": key}
        r = client.post("/api/v1/cases", json=body, headers=h)
        assert problem(r, 422, "validation_error")["field"] == "Idempotency-Key"


def test_a_retried_list_replays_the_answer_serialised_item_by_item(
    client: TestClient, world: World
) -> None:
    # The list answer is built as JSON bytes item by item (not a response model): the stored
    # and replayed answer must be those very bytes, in the documented shape.
    unknown = "0192f7a0-0000-7000-8000-00000000dead"
    item = {"member_id": unknown, "subtype": "standard", "event_date": "2026-01-20"}
    body = {"policy": "tet", "unit_id": "CS-A", "items": [item, {**item, "subtype": "x"}]}
    h = {**bearer(world, "officer_a"), "Idempotency-Key": "tet-list-1", "Accept-Language": "en"}
    first = client.post("/api/v1/case-lists", json=body, headers=h)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    out = ListOut.model_validate(first.json())
    assert (out.accepted, out.flagged, out.refused) == (0, 0, 2)
    assert [i.index for i in out.items] == [0, 1]
    assert all(i.outcome == "refused" and i.reason for i in out.items)
    again = client.post("/api/v1/case-lists", json=body, headers=h)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.content == first.content
