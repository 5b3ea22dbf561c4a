"""One Prefect flow per policy, named after it (housing, illness, job_loss, disaster, tet).

A policy flow receives a batch of case ids — never personal data — and runs the automatic
step of each case as a command through the service layer (`WelfareService.screen`): the
history and cross-case checks, the amount, the routing to the approval tier and the opening
of the first human task all happen inside that one command. A case no longer in screening
(WELFARE_SCREENING=inline, or screened by an earlier run) is left alone.
"""

import asyncio
from collections.abc import Coroutine
from functools import cache
from typing import Any

from prefect import Flow, flow, task
from prefect.cache_policies import NO_CACHE

from domain.service.relay import case_in_screening
from domain.service.welfare import WelfareService
from flows.runtime import get_app

# Cases per Prefect task run. A task run costs ≈ 70 ms (Prefect's API calls and engine; a
# 3,000-member list took 11.0 s in 60 task runs of 50 cases, 6.9 s in 6 of 500) and a
# screening 1–3 ms, so above a few hundred the chunk no longer matters: with the relay's
# batches of 2,000, chunks of 2,000 instead of 500 saved 0.2–0.3 s of a 10,000-member list's
# 15.5 s, and a smaller chunk keeps what one failed task run sends back for retry smaller.
# The outcome is still reported per case, and a failed case fails alone (`screen_cases`).
CHUNK = 500


def screen_cases(service: WelfareService, case_ids: list[str]) -> dict[str, str]:
    """Screen each case still in screening; the outcome per case, never an exception.

    `WelfareService.screen_many` screens them in transactions of a hundred; a case it refuses
    stays in screening and the relay's screening consumer retries it.
    """
    waiting = set(case_in_screening(service.engine, case_ids))
    out = {case_id: "skipped" for case_id in case_ids if case_id not in waiting}
    todo = [case_id for case_id in case_ids if case_id in waiting]
    try:
        out.update(service.screen_many(todo))
    except Exception as exc:  # reported per case; the relay retries them
        out.update({case_id: f"failed:{type(exc).__name__}" for case_id in todo})
    return out


@task(name="screen", cache_policy=NO_CACHE)
async def screen_chunk(case_ids: list[str]) -> dict[str, str]:
    return await asyncio.to_thread(screen_cases, get_app().service, case_ids)


@cache
def policy_flow(policy: str) -> Flow[[list[str]], Coroutine[Any, Any, dict[str, str]]]:
    """The flow of one policy; built on first use, so a new definition needs no code."""

    @flow(name=policy, description=f"Automatic steps of the {policy} policy", log_prints=False)
    async def run(case_ids: list[str]) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        for i in range(0, len(case_ids), CHUNK):
            outcomes.update(await screen_chunk(case_ids[i : i + CHUNK]))
        return outcomes

    return run
