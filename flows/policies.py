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

from domain.errors import Conflict, DomainError
from domain.service.relay import case_in_screening
from domain.service.welfare import WelfareService
from flows.runtime import get_app

CHUNK = 50  # cases per Prefect task: a task run costs ~0.1–1 s, a screening ~10 ms


def screen_cases(service: WelfareService, case_ids: list[str]) -> dict[str, str]:
    """Screen each case still in screening; the outcome per case, never an exception."""
    waiting = set(case_in_screening(service.engine, case_ids))
    out: dict[str, str] = {}
    for case_id in case_ids:
        if case_id not in waiting:
            out[case_id] = "skipped"
            continue
        try:
            service.screen(case_id)
            out[case_id] = "screened"
        except Conflict as err:
            out[case_id] = (
                "skipped" if err.code == "transition_not_allowed" else f"conflict:{err.code}"
            )
        except DomainError as err:
            # The relay's screening consumer sees the case still waiting and retries it.
            out[case_id] = f"refused:{err.code}"
        except Exception as exc:  # reported per case; the relay retries it
            out[case_id] = f"failed:{type(exc).__name__}"
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
