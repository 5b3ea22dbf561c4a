"""Driving cases through the HTTP API in tests: submit, find the open task, decide, pay.

Everything goes over HTTP with a bearer token of the named test account (tests/support.py
World accounts); only budget and row counts are read from the database directly.
"""

from datetime import date
from typing import Any

from sqlalchemy import func, select

from domain.adapters.repository import AUDIT, BUDGET, CASE, DECISION, DOCUMENT, PAYMENT, TASK
from domain.service.commands import DocumentIn
from tests.api.conftest import TestClient, bearer
from tests.support import World, sha


def doc_json(d: DocumentIn) -> dict[str, Any]:
    return d.model_dump()


def docs(world: World, policy: str, subtype: str, salt: str = "") -> list[dict[str, Any]]:
    return [doc_json(d) for d in world.docs(policy, subtype, salt)]


def submit(
    client: TestClient,
    world: World,
    policy: str,
    subtype: str,
    member: str,
    *,
    by: str = "officer_a",
    unit: str = "CS-A",
    event_date: date | None = None,
    form: dict[str, Any] | None = None,
    amount: int | None = None,
    campaign_id: str | None = None,
    documents: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "policy": policy,
        "unit_id": unit,
        "member_id": member,
        "subtype": subtype,
        "event_date": (event_date or world.clock.today()).isoformat(),
        "form": form or {},
        "documents": documents if documents is not None else docs(world, policy, subtype),
    }
    if amount is not None:
        body["requested_amount"] = amount
    if campaign_id is not None:
        body["campaign_id"] = campaign_id
    r = client.post("/api/v1/cases", json=body, headers={**bearer(world, by), **(headers or {})})
    assert r.status_code == expect, r.text
    result: dict[str, Any] = r.json()
    return result


def case(client: TestClient, world: World, case_id: str, by: str = "officer_a") -> dict[str, Any]:
    r = client.get(f"/api/v1/cases/{case_id}", headers=bearer(world, by))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def open_task(client: TestClient, world: World, case_id: str, by: str) -> dict[str, Any]:
    """The single open task of a case, as `by` finds it in their inbox."""
    r = client.get("/api/v1/inbox", headers=bearer(world, by))
    assert r.status_code == 200, r.text
    mine = [i["task"] for i in r.json()["items"] if i["case_id"] == case_id]
    assert len(mine) == 1, (by, r.json())
    task: dict[str, Any] = mine[0]
    return task


def decide(
    client: TestClient,
    world: World,
    case_id: str,
    by: str,
    action: str = "approve",
    *,
    expect: int = 200,
    **body: Any,
) -> dict[str, Any]:
    task = open_task(client, world, case_id, by)
    r = client.post(
        f"/api/v1/tasks/{task['id']}/decision",
        json={"action": action, **body},
        headers=bearer(world, by),
    )
    assert r.status_code == expect, r.text
    result: dict[str, Any] = r.json()
    return result


def pay(
    client: TestClient, world: World, case_id: str, by: str, ref: str = "UNC-1"
) -> dict[str, Any]:
    """Pay the tranche due, for the amount the pending list says."""
    r = client.get("/api/v1/payments/pending", headers=bearer(world, by))
    assert r.status_code == 200, r.text
    due = [p for p in r.json()["items"] if p["case"]["id"] == case_id]
    assert len(due) == 1, r.json()
    r = client.post(
        f"/api/v1/cases/{case_id}/payments",
        json={"amount": due[0]["amount_due"], "method": "bank_transfer", "reference": ref},
        headers=bearer(world, by),
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def budget(world: World, unit: str, fund: str, year: int = 2026) -> dict[str, int]:
    b = BUDGET.c
    with world.app.engine.connect() as conn:
        row = conn.execute(
            select(b.amount, b.reserved, b.spent).where(
                b.org_unit_id == unit, b.year == year, b.fund == fund
            )
        ).one()
    return {"amount": row[0], "reserved": row[1], "spent": row[2]}


def counts(world: World) -> dict[str, int]:
    with world.app.engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (CASE, TASK, DECISION, DOCUMENT, PAYMENT, AUDIT)
        }


def new_doc(kind: str, salt: str) -> dict[str, Any]:
    return {"kind": kind, "filename": f"{kind}.pdf", "sha256": sha(salt), "size": 1234}
