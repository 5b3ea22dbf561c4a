"""The SLA sweep as a Prefect flow (a cron deployment): reminders, overdue notices, and
reassignment at twice the SLA, through `WelfareService.escalate_due`. Running it twice changes
nothing more; its cost follows the number of due tasks. The notices go out as outbox events,
which the relay turns into e-mail.
"""

import asyncio
from datetime import UTC, datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.runtime import get_app


@task(name="escalate-due", cache_policy=NO_CACHE)
async def escalate_due(at: datetime, limit: int) -> dict[str, int]:
    result = await asyncio.to_thread(get_app().service.escalate_due, at, limit)
    return {"examined": result.examined, "changed": result.changed}


@flow(name="escalation-sweep", description="SLA reminders, overdue notices and escalation")
async def escalation_sweep(now: str | None = None, limit: int = 10_000) -> dict[str, int]:
    """`now`: an ISO time with zone for a sweep "as of" then (operators, tests); default: now."""
    if now is None:
        at = get_app().service.clock()
    else:
        at = datetime.fromisoformat(now)
        if at.tzinfo is None:
            raise ValueError("give `now` with a time zone, e.g. 2026-12-01T09:00+07:00")
    return await escalate_due(at.astimezone(UTC), limit)
