"""Two approvers deciding one task at the same moment: exactly one wins, the other gets 409."""

import asyncio
import threading
from typing import Any

import httpx
from sqlalchemy import func, select

from domain.adapters.repository import DECISION
from tests.api.conftest import TestClient, bearer, problem
from tests.api.helpers import open_task, submit
from tests.integration.helpers_policies import person
from tests.support import World


def decisions_on(world: World, case_id: str) -> int:
    with world.app.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(DECISION).where(DECISION.c.case_id == case_id)
            ).scalar_one()
        )


async def test_two_approvers_deciding_one_task_at_once_one_wins_the_other_gets_409(
    async_client: httpx.AsyncClient, client: TestClient, world: World
) -> None:
    for round_ in range(4):
        cid = submit(client, world, "housing", "repair", person(world))["case_id"]
        task = open_task(client, world, cid, "chair_a")
        url = f"/api/v1/tasks/{task['id']}/decision"
        bodies: list[dict[str, Any]] = [
            {"action": "approve"},
            {"action": "reject", "reason": f"Không đủ điều kiện ({round_})"},
        ]
        a, b = await asyncio.gather(
            async_client.post(url, json=bodies[0], headers=bearer(world, "chair_a")),
            async_client.post(url, json=bodies[1], headers=bearer(world, "chair_a2")),
        )
        results = sorted([a, b], key=lambda r: r.status_code)
        assert results[0].status_code == 200, results[0].text
        loser = problem(results[1], 409)
        assert loser["code"] in ("task_not_open", "stale_case", "conflict")
        assert decisions_on(world, cid) == 1


def test_the_same_with_threads_on_one_test_client(client: TestClient, world: World) -> None:
    cid = submit(client, world, "housing", "repair", person(world))["case_id"]
    task = open_task(client, world, cid, "chair_a")
    url = f"/api/v1/tasks/{task['id']}/decision"
    start = threading.Barrier(2)
    out: dict[str, httpx.Response] = {}

    def decide(who: str) -> None:
        h = bearer(world, who)
        start.wait()
        out[who] = client.post(url, json={"action": "approve"}, headers=h)

    threads = [threading.Thread(target=decide, args=(w,)) for w in ("chair_a", "chair_a2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in out.values())
    assert codes == [200, 409], {k: v.text for k, v in out.items()}
    assert decisions_on(world, cid) == 1
