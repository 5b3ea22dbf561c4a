"""A Tết list is mailed as one digest: one mail to its officer, one to each approver.

Before, a 10,000-member list sent its officer a status mail per case (10,000–20,000) and each
grassroots chair a new-task mail per case (10,000). Now its submission and screening send
one `list_screened` mail to the officer and one `list_tasks` mail to each approver whose
inbox got its first tasks — whether screening ran in the request or in the flows. Everything
after screening (an approver's decision, the next step's task, reminders) is still mailed
case by case, flags still reach the auditors case by case, and a single case is mailed as
before.
"""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from domain.adapters.repository import ACCOUNT, CAMPAIGN
from domain.service.commands import CaseItem, SubmitList
from domain.service.notifications import list_reference, reference, send_with_smtp
from domain.service.queries import case_status
from domain.service.relay import build_relay
from domain.service.welfare import ListItemResult
from tests.flows.support import (
    SmtpServer,
    address,
    consumed_count,
    notification_rows,
    personal_data,
    reset_outbox,
    run,
)
from tests.integration.helpers_flow import code, doc, person
from tests.support import World

TODAY = date(2026, 3, 2)
SIGNED_LIST = doc("signed_list", "CS-A-danh-sach-tet-2026-mail")


def item(member: str, subtype: str = "standard", **form: Any) -> CaseItem:
    return CaseItem(
        member_id=member,
        subtype=subtype,
        event_date=TODAY,
        form={"criterion": "low_income", **form},
        documents=[SIGNED_LIST],
    )


def submit_list(world: World, campaign: str, items: list[CaseItem]) -> list[ListItemResult]:
    return world.service.submit_list(
        world.accounts["officer_a"],
        SubmitList(policy="tet", unit_id="CS-A", campaign_id=campaign, items=items),
    )


def deliver(world: World, smtp: SmtpServer) -> list[tuple[str, str]]:
    """Relay the outbox, send the mail, and return (recipient, template) of what arrived."""
    build_relay(world.service, world.app.settings).drain()
    smtp.clear()
    run(send_with_smtp(world.app.engine, smtp.settings(), clock=world.service.clock))
    sent = {r["id"]: r["template"] for r in notification_rows(world)}
    return sorted(
        (m.to[0].split("@")[0], sent[m.message["X-Welfare-Notification"]]) for m in smtp.received
    )


def mail_to(smtp: SmtpServer, name: str) -> Any:
    [m] = [m for m in smtp.received if m.to == [address(name)]]
    return m


def batch_of(world: World, results: list[ListItemResult]) -> str:
    case_id = next(r.case_id for r in results if r.case_id)
    found = case_status(world.app.engine, case_id)
    assert found is not None
    return str(found["batch_id"])


@pytest.fixture
def flow(mail_world: World) -> Iterator[World]:
    mail_world.service.screen_inline = False
    try:
        yield mail_world
    finally:
        mail_world.service.screen_inline = True


def test_an_inline_list_mails_its_officer_once_and_each_chair_once(
    mail_world: World, smtp: SmtpServer
) -> None:
    world = mail_world
    season = world.campaign("tet", code("TET-MAIL"))
    young = person(world, joined=TODAY - timedelta(days=100))
    deliver(world, smtp)  # the set-up's events
    planned = consumed_count(world, "notify")
    results = submit_list(world, season, [*(item(person(world)) for _ in range(4)), item(young)])
    assert [r.outcome for r in results] == ["accepted"] * 4 + ["refused"]
    # Four cases screened and in the chairs' inboxes: three mails, not 4 + 8.
    assert deliver(world, smtp) == [
        ("chair_a", "list_tasks"),
        ("chair_a2", "list_tasks"),
        ("officer_a", "list_screened"),
    ]
    # The cases' twelve events are not even handed to the notifier: only the digest is.
    assert consumed_count(world, "notify") == planned + 1
    ref = list_reference(batch_of(world, results))
    officer = mail_to(smtp, "officer_a")
    assert (
        officer.subject
        == f"[{ref}] Danh sách Chăm lo Tết cho đoàn viên có hoàn cảnh khó khăn (Tết Sum vầy): đã kiểm tra tự động 4 hồ sơ"
    )
    body = officer.body
    assert "Số đoàn viên trong danh sách: 5" in body
    assert "Hồ sơ được tiếp nhận: 4" in body
    assert "Bị từ chối khi nộp: 1" in body
    assert "- Đang xét duyệt: 4 hồ sơ" in body
    assert "- Chủ tịch Công đoàn cơ sở (CĐCS Công ty CP Thủy điện Nậm Na): 4 hồ sơ" in body
    assert "không được duyệt" not in body
    assert f"/api/v1/cases?batch_id={batch_of(world, results)}" in body
    chair = mail_to(smtp, "chair_a")
    assert chair.subject.startswith(f"[{ref}] 4 hồ sơ mới chờ xét duyệt")
    assert "4 hồ sơ mới từ danh sách" in chair.body
    assert "/api/v1/inbox" in chair.body
    secrets = personal_data(world)
    for m in smtp.received:
        assert not any(s in m.subject + m.body for s in secrets)
    # Relayed again (lost acks): nothing new is planned or sent.
    reset_outbox(world)
    assert deliver(world, smtp) == []


def test_a_flow_screened_list_names_its_cases_rejected_at_screening(
    flow: World, smtp: SmtpServer
) -> None:
    world = flow
    season = world.campaign("tet", code("TET-MAIL-FLOW"), quotas={"CS-A": 3})
    results = submit_list(world, season, [item(person(world)) for _ in range(3)])
    cases = [r.case_id for r in results if r.case_id]
    with world.app.engine.begin() as conn:  # the quota cut to 2 before screening
        params = conn.execute(select(CAMPAIGN.c.params).where(CAMPAIGN.c.id == season)).scalar()
        assert isinstance(params, dict)
        conn.execute(
            update(CAMPAIGN)
            .where(CAMPAIGN.c.id == season)
            .values(params={**params, "quotas": {"CS-A": 2}})
        )
    world.service.screen_many(cases)  # the tet policy flow's screening
    assert deliver(world, smtp) == [
        ("chair_a", "list_tasks"),
        ("chair_a2", "list_tasks"),
        ("officer_a", "list_screened"),
    ]
    [rejected] = [
        c for c in cases if (case_status(world.app.engine, c) or {}).get("status") == "rejected"
    ]
    body = mail_to(smtp, "officer_a").body
    assert "- Đang xét duyệt: 2 hồ sơ" in body
    assert "- Không được duyệt: 1 hồ sơ" in body
    assert f"Hồ sơ không được duyệt khi kiểm tra tự động: {reference(rejected)}." in body
    assert "2 hồ sơ mới từ danh sách" in mail_to(smtp, "chair_a").body


def test_the_relays_own_screening_of_a_list_mails_the_digest_too(
    flow: World, smtp: SmtpServer
) -> None:
    world = flow
    season = world.campaign("tet", code("TET-MAIL-RELAY"))
    submit_list(world, season, [item(person(world)) for _ in range(3)])
    with world.app.engine.begin() as conn:
        conn.execute(update(ACCOUNT).where(ACCOUNT.c.username == "chair_a2").values(lang="en"))
    assert deliver(world, smtp) == [
        ("chair_a", "list_tasks"),
        ("chair_a2", "list_tasks"),
        ("officer_a", "list_screened"),
    ]
    english = mail_to(smtp, "chair_a2")
    assert "3 new cases await review" in english.subject
    assert "- Grassroots union chair (CĐCS Công ty CP Thủy điện Nậm Na): 3" in english.body


def test_after_screening_a_list_case_is_mailed_case_by_case(
    mail_world: World, smtp: SmtpServer
) -> None:
    world = mail_world
    season = world.campaign("tet", code("TET-MAIL-LATER"))
    results = submit_list(world, season, [item(person(world)) for _ in range(2)])
    deliver(world, smtp)
    case = next(r.case_id for r in results if r.case_id)
    assert case is not None
    world.decide(case, "chair_a")
    # The upper-level step's task is news of its own: the ward chairs hear of this case.
    assert deliver(world, smtp) == [("upper_tp", "task_new"), ("upper_tp2", "task_new")]
    world.decide(case, "upper_tp", action="reject", reason="không đủ điều kiện")
    assert deliver(world, smtp) == [("officer_a", "case_status")]
    # Reminders stay per task (a digest of them is not built).
    other = results[1].case_id
    assert other is not None
    world.clock.now = world.task(other)["remind_at"]
    world.service.escalate_due(world.clock.now)
    assert deliver(world, smtp) == [("chair_a", "task_reminder"), ("chair_a2", "task_reminder")]


def test_a_list_case_flagged_at_intake_still_alerts_the_auditors(
    mail_world: World, smtp: SmtpServer
) -> None:
    world = mail_world
    season = world.campaign("tet", code("TET-MAIL-FLAG"))
    results = submit_list(
        world,
        season,
        [item(person(world)), item(person(world), "special_hardship", disaster_area=True)],
    )
    assert [r.outcome for r in results] == ["accepted", "flagged"]
    got = deliver(world, smtp)
    # Flagged at intake (C5: 4,000,000 đ over the season's cap): the auditors of its unit
    # and above hear of that case itself, as of a single case (screening finds no new flag).
    assert got.count(("auditor", "case_flagged")) == 1
    assert got.count(("auditor_tp", "case_flagged")) == 1
    assert [g for g in got if g[1] != "case_flagged"] == [
        ("chair_a", "list_tasks"),
        ("chair_a2", "list_tasks"),
        ("officer_a", "list_screened"),
    ]
    flagged = next(r.case_id for r in results if r.outcome == "flagged")
    assert flagged is not None
    assert all(
        reference(flagged) in m.subject for m in smtp.received if m.to == [address("auditor")]
    )


def test_a_single_case_is_still_mailed_as_before(mail_world: World, smtp: SmtpServer) -> None:
    world = mail_world
    season = world.campaign("tet", code("TET-MAIL-ONE"))
    world.submit(
        "tet", "standard", person(world), campaign_id=season, form={"criterion": "low_income"}
    )
    assert deliver(world, smtp) == [
        ("chair_a", "task_new"),
        ("chair_a2", "task_new"),
        ("officer_a", "case_status"),
    ]
