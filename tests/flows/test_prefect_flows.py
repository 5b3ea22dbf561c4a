"""The flows through a real Prefect API (the session's test harness), on both databases."""

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort

from domain.service.commands import CaseItem, SubmitList
from domain.service.queries import case_status, open_tasks
from flows.escalation import escalation_sweep
from flows.relay import relay_flow
from flows.runtime import use_app
from tests.flows.support import Recorder, SmtpServer, address, notification_rows, outbox_rows
from tests.support import World

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]


@pytest.fixture
def flows_world(mail_world: World) -> Iterator[World]:
    use_app(mail_world.app)
    yield mail_world
    use_app(None)


async def runs_of(flow_name: str, case_id: str) -> list[str]:
    """The final state of each run of `flow_name` that was given `case_id`."""
    async with get_client() as client:
        # limit and sort given: the server under FastAPI 0.165 refuses their null defaults.
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            limit=200,
            sort=FlowRunSort.START_TIME_DESC,
        )
    return [
        r.state_type.value if r.state_type else "?"
        for r in runs
        if case_id in (r.parameters.get("case_ids") or [])
    ]


async def test_a_submitted_case_is_screened_and_its_first_task_opened_by_the_policy_flow(
    flows_world: World, smtp: SmtpServer
) -> None:
    flows_world.service.screen_inline = False
    case = flows_world.submit("housing", "repair", flows_world.member()).case_id
    assert case_status(flows_world.app.engine, case)["status"] == "screening"  # type: ignore[index]
    assert open_tasks(flows_world.app.engine, case) == []
    summary = await relay_flow()
    assert summary["dead"] == 0
    assert case_status(flows_world.app.engine, case)["status"] == "in_review"  # type: ignore[index]
    [task] = open_tasks(flows_world.app.engine, case)
    assert (task["step"], task["role"], task["org_unit_id"]) == (
        "grassroots_review",
        "grassroots_chair",
        "CS-A",
    )
    assert await runs_of("housing", case) == ["COMPLETED"]
    # The same relay run sent the new task to the chairs and the status to the submitter.
    assert summary["mail_sent"] == 3
    assert sorted(m.to[0] for m in smtp.received) == sorted(
        [address("chair_a"), address("chair_a2"), address("officer_a")]
    )


async def test_a_tet_list_screened_by_the_policy_flow_is_mailed_as_one_digest(
    flows_world: World, smtp: SmtpServer
) -> None:
    world = flows_world
    world.service.screen_inline = False
    season = world.campaign("tet", "TET-FLOW-DIGEST")
    members = [world.member(dob=date(1970, 1, 1) + timedelta(days=400 * i)) for i in range(3)]
    results = world.service.submit_list(
        world.accounts["officer_a"],
        SubmitList(
            policy="tet",
            unit_id="CS-A",
            campaign_id=season,
            items=[
                CaseItem(
                    member_id=m,
                    subtype="standard",
                    event_date=world.clock.today(),
                    form={"criterion": "low_income"},
                    documents=world.docs("tet", "standard"),
                )
                for m in members
            ],
        ),
    )
    cases = [r.case_id for r in results if r.case_id]
    assert len(cases) == 3
    summary = await relay_flow()
    assert summary["dead"] == 0
    assert {case_status(world.app.engine, c)["status"] for c in cases} == {"in_review"}  # type: ignore[index]
    assert await runs_of("tet", cases[0]) == ["COMPLETED"]
    # One mail to the officer and one to each chair for the whole list, not one a case.
    assert summary["mail_sent"] == 3
    assert sorted((m.to[0], m.subject.split("]")[0][1:3]) for m in smtp.received) == sorted(
        [(address("chair_a"), "DS"), (address("chair_a2"), "DS"), (address("officer_a"), "DS")]
    )


async def test_with_inline_screening_the_policy_flow_has_nothing_to_do(
    flows_world: World,
) -> None:
    case = flows_world.submit("housing", "repair", flows_world.member()).case_id
    await relay_flow()
    assert await runs_of("housing", case) == []
    assert {r["status"] for r in outbox_rows(flows_world)} == {"processed"}
    assert len(open_tasks(flows_world.app.engine, case)) == 1


async def test_a_task_past_due_is_escalated_and_reassigned_by_the_sweep_and_a_second_sweep_does_nothing(
    flows_world: World, smtp: SmtpServer
) -> None:
    case = flows_world.submit("housing", "repair", flows_world.member()).case_id
    await relay_flow()
    smtp.clear()
    task = flows_world.task(case)
    flows_world.clock.now = task["escalate_at"]
    first = await escalation_sweep(now=task["escalate_at"].isoformat())
    assert first == {"examined": 1, "changed": 1}
    [moved] = open_tasks(flows_world.app.engine, case)
    assert (moved["id"], moved["role"], moved["org_unit_id"], moved["escalation"]) == (
        task["id"],
        "upper_chair",
        "TP",
        "escalated",
    )
    assert "SLA" in case_status(flows_world.app.engine, case)["flags"]  # type: ignore[index, operator]
    before = len(outbox_rows(flows_world))
    again = await escalation_sweep(now=task["escalate_at"].isoformat())
    assert again == {"examined": 0, "changed": 0}
    assert len(outbox_rows(flows_world)) == before
    await relay_flow()
    # All subjects per address: upper_tp also gets the overdue notice, and two notifications
    # planned in the same millisecond are sent in no fixed order (ids are random after it).
    got: dict[str, list[str]] = {}
    for m in smtp.received:
        got.setdefault(m.to[0], []).append(m.subject)
    # At twice the SLA: the new assignees hear of it, and the auditors of the SLA flag.
    assert any("Nhiệm vụ chuyển lên cấp trên" in s for s in got[address("upper_tp")])
    assert any("gắn cờ" in s for s in got[address("auditor")])


async def test_events_produced_while_no_flow_ran_are_each_handled_once_in_case_order(
    mail_world: World,
) -> None:
    recorder = Recorder()
    use_app(mail_world.app, extra_consumers=[recorder])
    try:
        cases = [
            mail_world.submit("housing", "repair", mail_world.member()).case_id for _ in range(3)
        ]
        mail_world.decide(cases[1], "chair_a")
        mail_world.decide(cases[0], "chair_a")
        produced = outbox_rows(mail_world)
        summary = await relay_flow(mail=False)
        assert summary["processed"] == len(produced)
        assert sorted(e.id for e in recorder.handled) == sorted(r["id"] for r in produced)
        for case in cases:
            seqs = [e.seq for e in recorder.handled if e.case_id == case]
            assert seqs == sorted(seqs)
            assert seqs == [r["seq"] for r in produced if r["case_id"] == case]
        assert (await relay_flow(mail=False))["claimed"] == 0
        assert len(recorder.handled) == len(produced)
        assert notification_rows(mail_world)
    finally:
        use_app(None)
