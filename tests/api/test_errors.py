"""Refusals are RFC 9457 problems naming the field or rule, in the caller's language; nothing a
client sends gives a 500 (the test client re-raises server errors, so one would fail here)."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import TestClient, bearer, problem
from tests.api.helpers import counts, docs, submit
from tests.integration.helpers_policies import person
from tests.support import World


def case_body(world: World, member: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "policy": "housing",
        "unit_id": "CS-A",
        "member_id": member,
        "subtype": "repair",
        "event_date": world.clock.today().isoformat(),
        "documents": docs(world, "housing", "repair"),
    }
    body.update(over)
    return body


def test_validation_errors_name_every_bad_field_with_its_path(
    client: TestClient, world: World
) -> None:
    body = case_body(world, person(world), event_date="hôm qua", requested_amount=-5)
    body["documents"][1]["sha256"] = "xyz"
    del body["subtype"]
    r = client.post("/api/v1/cases", json=body, headers=bearer(world, "officer_a"))
    p = problem(r, 422, "validation_error")
    fields = {e["field"] for e in p["errors"]}  # type: ignore[attr-defined]
    assert {"subtype", "event_date", "requested_amount", "documents[1].sha256"} <= fields
    assert p["title"] == "Dữ liệu gửi lên không hợp lệ"
    assert all(e["location"] == "body" for e in p["errors"])  # type: ignore[attr-defined]


def test_english_titles_with_accept_language_en(client: TestClient, world: World) -> None:
    h = {**bearer(world, "officer_a"), "Accept-Language": "en-GB,en;q=0.9,vi;q=0.5"}
    r = client.post("/api/v1/cases", json={}, headers=h)
    assert problem(r, 422, "validation_error")["title"] == "The request data is invalid"
    r = client.get("/api/v1/cases/nope", headers=h)
    p = problem(r, 404, "not_found")
    assert (p["title"], p["detail"]) == ("Not found", "case not found")
    # Vietnamese preferred by q-value, and the default without the header.
    h["Accept-Language"] = "en;q=0.3, vi;q=0.8"
    assert problem(client.get("/api/v1/cases/nope", headers=h), 404)["title"] == "Không tìm thấy"


def test_a_refused_rule_names_the_rule_and_carries_every_check(
    client: TestClient, world: World
) -> None:
    member = person(world)
    submit(client, world, "housing", "repair", member)
    before = counts(world)
    r = client.post(
        "/api/v1/cases", json=case_body(world, member), headers=bearer(world, "officer_a")
    )
    p = problem(r, 422)
    assert p["type"] == "https://union-welfare.local/problems/rule_violation"
    assert p["rule"]
    assert p["code"] != "rule_violation"  # the reason, e.g. duplicate_claim or frequency_cap
    assert any(c["outcome"] == "failed" for c in p["checks"])  # type: ignore[attr-defined]
    assert counts(world) == before


def test_a_domain_field_refusal_names_the_field(client: TestClient, world: World) -> None:
    body = case_body(world, person(world), form={"no_such_field": 1})
    r = client.post("/api/v1/cases", json=body, headers=bearer(world, "officer_a"))
    p = problem(r, 422, "invalid_field")
    assert p["field"] == "form.no_such_field"
    body = case_body(world, person(world), subtype="castle")
    p = problem(client.post("/api/v1/cases", json=body, headers=bearer(world, "officer_a")), 422)
    assert p["field"] == "subtype"


HOSTILE: list[tuple[str, dict[str, str], bytes]] = [
    ("garbage-json", {"Content-Type": "application/json"}, b'{"policy": "housing",'),
    ("not-an-object", {"Content-Type": "application/json"}, b"[1, 2, 3]"),
    ("text-plain", {"Content-Type": "text/plain"}, b"policy=housing"),
    ("form-encoded", {"Content-Type": "application/x-www-form-urlencoded"}, b"policy=housing"),
    ("no-body", {}, b""),
    ("bad-utf8", {"Content-Type": "application/json"}, b'{"policy": "\xff\xfe"}'),
    ("nul-in-json", {"Content-Type": "application/json"}, b'{"policy": "ho\\u0000using"}'),
]


@pytest.mark.parametrize(
    ("headers", "raw"), [(h, b) for _, h, b in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_malformed_bodies_are_4xx_problems(
    client: TestClient, world: World, headers: dict[str, str], raw: bytes
) -> None:
    r = client.post("/api/v1/cases", content=raw, headers={**bearer(world, "officer_a"), **headers})
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "override",
    [
        {"requested_amount": 10**40},
        {"requested_amount": -1_000_000},
        {"requested_amount": 0},
        {"requested_amount": True},
        {"requested_amount": 1.5},
        {"event_date": "9999-12-31"},
        {"event_date": "0001-01-01"},
        {"member_id": "x" * 10_000},
        {"member_id": "Nguyễn\u0000Văn"},
        {"unit_id": "CS-A' OR 1=1 --"},
        {"form": {"diagnosis": "\u0000"}},
        {"form": {"rent_months": 10**30, "housing_condition": "renting"}},
        {"policy": "kéo dài 🏠"},
        {"documents": [{"kind": "cccd", "filename": "a\u0000.pdf", "sha256": "a" * 64, "size": 1}]},
        {"documents": [{"kind": "cccd", "filename": "a.pdf", "sha256": "a" * 64, "size": -1}]},
        {"campaign_id": "does-not-exist"},
        {"subtype": "rent", "form": {"housing_condition": "renting", "rent_months": -3}},
    ],
)
def test_hostile_values_are_refused_as_4xx_problems(
    client: TestClient, world: World, override: dict[str, Any]
) -> None:
    body = case_body(world, person(world), **override)
    before = counts(world)
    r = client.post("/api/v1/cases", json=body, headers=bearer(world, "officer_a"))
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert counts(world) == before


def test_unicode_names_and_notes_are_kept_exactly(client: TestClient, world: World) -> None:
    member = person(world)
    cid = submit(client, world, "housing", "repair", member)["case_id"]
    r = client.post(
        f"/api/v1/cases/{cid}/withdrawal",
        json={"reason": "Đoàn viên Lò Thị Ửng xin rút — 🙏"},
        headers=bearer(world, "officer_a"),
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/nothing-here", 404),
        ("DELETE", "/api/v1/cases", 405),
        ("PUT", "/healthz", 405),
        ("GET", "/api/v1/cases?limit=0", 422),
        ("GET", "/api/v1/cases?limit=abc", 422),
        ("GET", "/api/v1/cases?cursor=%%%", 422),
        ("GET", "/api/v1/inbox?overdue=maybe", 422),
        ("GET", "/api/v1/cases/" + "a" * 100, 422),
        ("POST", "/api/v1/tasks/unknown-task/decision", 422),
    ],
)
def test_routing_and_query_errors_are_problems(
    client: TestClient, world: World, method: str, path: str, status: int
) -> None:
    r = client.request(method, path, headers=bearer(world, "officer_a"))
    problem(r, status)


def test_an_unknown_task_is_404(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/tasks/unknown-task/decision",
        json={"action": "approve"},
        headers=bearer(world, "chair_a"),
    )
    problem(r, 404, "not_found")


def test_openapi_documents_every_route_with_its_problems(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "ProblemDetails" in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
            codes = set(op["responses"])
            if path not in ("/healthz",):
                assert "422" in codes or "401" in codes, (method, path)
            for code, resp in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert "application/problem+json" in resp["content"], (method, path, code)


def test_a_body_over_the_limit_is_413_before_it_is_read(client: TestClient, world: World) -> None:
    from api.app import MAX_BODY

    raw = b'{"policy": "' + b"x" * (MAX_BODY + 10) + b'"}'
    r = client.post(
        "/api/v1/cases",
        content=raw,
        headers={**bearer(world, "officer_a"), "Content-Type": "application/json"},
    )
    problem(r, 413, "payload_too_large")


def _chunks(raw: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent chunked: no Content-Length for the server to check first."""
    for i in range(0, len(raw), size):
        yield raw[i : i + size]


def test_a_chunked_body_over_the_limit_is_413_and_writes_nothing(
    client: TestClient, world: World
) -> None:
    from api.app import MAX_BODY

    before = counts(world)
    raw = b'{"policy": "' + b"x" * (MAX_BODY + 10) + b'"}'
    r = client.post(
        "/api/v1/cases",
        content=_chunks(raw),
        headers={**bearer(world, "officer_a"), "Content-Type": "application/json"},
    )
    problem(r, 413, "payload_too_large")
    assert counts(world) == before


def test_a_chunked_body_within_the_limit_is_read_whole(client: TestClient, world: World) -> None:
    before = counts(world)
    body = json.dumps(case_body(world, person(world))).encode()
    r = client.post(
        "/api/v1/cases",
        content=_chunks(body, 100),
        headers={**bearer(world, "officer_a"), "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    assert counts(world)["welfare_case"] == before["welfare_case"] + 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cases/%00",
        "/api/v1/cases?status=%00",
        "/api/v1/cases?unit_id=CS-A%00",
        "/api/v1/inbox?policy=%00",
        "/api/v1/policies/%00",
    ],
)
def test_nul_characters_in_paths_and_queries_are_4xx(
    client: TestClient, world: World, path: str
) -> None:
    r = client.get(path, headers=bearer(world, "province_standing"))
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_a_nul_in_a_login_is_just_a_failed_login(client: TestClient) -> None:
    r = client.post("/auth/token", data={"username": "officer_a\x00", "password": "x\x00y"})
    problem(r, 401, "invalid_credentials")
