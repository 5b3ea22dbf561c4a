"""The outbox relay as a Prefect flow: claim a batch, run the policy flows, hand events to the
consumers, then send the e-mail that is due. The logic lives in `domain.service.relay`; this
module only gives it Prefect runs, tasks and logs.
"""

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import asdict
from typing import cast

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from domain import events as ev
from domain.adapters.mail import SmtpSettings
from domain.service.notifications import send_with_smtp
from domain.service.relay import OutboxEvent, RelayResult, case_in_screening
from flows.policies import policy_flow
from flows.runtime import get_app, get_relay


async def run_policy_flows(events: list[OutboxEvent]) -> dict[str, str]:
    """Screen the batch's submitted cases that still wait, one policy flow run per policy."""
    submitted = [e for e in events if e.type == ev.CASE_SUBMITTED and e.case_id is not None]
    if not submitted:
        return {}
    engine = get_app().engine
    waiting = set(
        await asyncio.to_thread(
            case_in_screening, engine, [e.case_id for e in submitted if e.case_id]
        )
    )
    by_policy: dict[str, list[str]] = defaultdict(list)
    for e in submitted:
        if e.case_id in waiting:
            by_policy[str(e.data.get("policy"))].append(e.case_id)
    outcomes: dict[str, str] = {}
    runs: list[Awaitable[dict[str, str]]] = [
        policy_flow(policy)(ids) for policy, ids in sorted(by_policy.items())
    ]
    results = await asyncio.gather(*runs)
    for r in results:
        outcomes.update(r)
    return outcomes


@task(name="handle-events", cache_policy=NO_CACHE)
async def handle_events(events: list[OutboxEvent]) -> RelayResult:
    return await asyncio.to_thread(get_relay().process, events)


@task(name="send-mail", cache_policy=NO_CACHE)
async def send_mail(limit: int = 1_000) -> dict[str, int]:
    app = get_app()
    result = await send_with_smtp(
        app.engine,
        SmtpSettings.from_settings(app.settings),
        clock=app.service.clock,
        limit=limit,
        max_attempts=app.settings.relay_max_attempts,
    )
    return {
        "sent": result.sent,
        "retried": result.retried,
        "dead": result.dead,
        "waiting": result.waiting,
    }


@flow(name="outbox-relay", description="Outbox events → policy flows, notifications, e-mail")
async def relay_flow(max_batches: int = 20, mail: bool = True) -> dict[str, int]:
    relay = get_relay()
    total = RelayResult()
    for _ in range(max_batches):
        events = await asyncio.to_thread(relay.claim)
        if not events:
            break
        await run_policy_flows(events)
        # `quote`: Prefect otherwise walks every parameter, recursively, twice a task run,
        # looking for futures to wire up — for a batch of 500 events with their data, as
        # much CPU as handling them. The task gets the plain list; it has no upstream tasks.
        total += await handle_events(cast(list[OutboxEvent], quote(events)))
    summary = asdict(total)
    if mail:
        summary.update({f"mail_{k}": v for k, v in (await send_mail()).items()})
    return summary
