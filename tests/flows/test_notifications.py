"""Who hears what: the submitter on status changes, approvers on new, due and escalated tasks,
auditors on flags — in their language, and never a name, CCCD or diagnosis."""

from datetime import datetime, timedelta

from sqlalchemy import update

from domain.adapters.repository import ACCOUNT
from domain.service.notifications import send_with_smtp
from domain.service.relay import build_relay
from tests.flows.support import (
    SmtpServer,
    address,
    notification_rows,
    personal_data,
    run,
)
from tests.support import World

ILLNESS_FORM = {"diagnosis_category": "cancer"}


def sweep(world: World, at: datetime) -> None:
    world.clock.now = at
    world.service.escalate_due(at)


def deliver(world: World, smtp: SmtpServer) -> list[tuple[str, str]]:
    """Relay the outbox, send the mail, and return (recipient, template) of what arrived."""
    build_relay(world.service, world.app.settings).drain()
    smtp.clear()
    run(send_with_smtp(world.app.engine, smtp.settings(), clock=world.service.clock))
    sent = {r["id"]: r["template"] for r in notification_rows(world)}
    return sorted(
        (m.to[0].split("@")[0], sent[m.message["X-Welfare-Notification"]]) for m in smtp.received
    )


def test_an_approval_tells_the_next_approvers_and_a_final_one_the_submitter(
    mail_world: World, smtp: SmtpServer
) -> None:
    case = mail_world.submit("housing", "repair", mail_world.member()).case_id
    assert deliver(mail_world, smtp) == [
        ("chair_a", "task_new"),
        ("chair_a2", "task_new"),
        ("officer_a", "case_status"),
    ]
    mail_world.decide(case, "chair_a")
    # Still in review: the submitter hears nothing; the upper-level chairs get the task.
    assert deliver(mail_world, smtp) == [("upper_tp", "task_new"), ("upper_tp2", "task_new")]
    english = next(m for m in smtp.received if m.to == [address("upper_tp2")])
    assert english.subject.startswith("[HS-")
    assert "New task" in english.subject
    assert "Due:" in english.body
    assert "Vietnam time" in english.body
    mail_world.decide(case, "upper_tp")
    assert deliver(mail_world, smtp) == [
        ("province_standing", "task_new"),
        ("province_standing2", "task_new"),
    ]
    mail_world.decide(case, "province_standing")
    assert deliver(mail_world, smtp) == [
        ("officer_a", "case_status"),
        ("treasurer_province", "task_new"),
    ]
    approved = next(m for m in smtp.received if m.to == [address("officer_a")])
    assert "Đã được duyệt" in approved.subject
    assert "25.000.000" in approved.body


def test_no_message_carries_a_name_a_cccd_or_a_diagnosis(
    mail_world: World, smtp: SmtpServer
) -> None:
    member = mail_world.member(name="Lò Thị Hồng Nhung")
    case = mail_world.submit(
        "illness", "serious_illness", member, form=ILLNESS_FORM, amount=6_000_000
    ).case_id
    deliver(mail_world, smtp)
    mail_world.decide(case, "chair_a")
    deliver(mail_world, smtp)
    rows = notification_rows(mail_world)
    assert rows
    assert all(r["status"] == "sent" for r in rows)
    secrets = [*personal_data(mail_world), "cancer", "ung thư"]
    assert "Lò Thị Hồng Nhung" in secrets
    for row in rows:
        assert not any(s in str(row["context"]) for s in secrets)
    assert len(smtp.received) > 0
    for m in smtp.received:
        text = m.subject + m.body + str(m.message)
        assert not any(s in text for s in secrets), m.subject


def test_the_sla_ladder_notifies_approvers_then_the_next_level_then_the_new_assignees(
    mail_world: World, smtp: SmtpServer
) -> None:
    case = mail_world.submit("housing", "repair", mail_world.member()).case_id
    deliver(mail_world, smtp)
    task = mail_world.task(case)
    sweep(mail_world, task["remind_at"])
    assert deliver(mail_world, smtp) == [
        ("chair_a", "task_reminder"),
        ("chair_a2", "task_reminder"),
    ]
    sweep(mail_world, task["due_at"])
    assert deliver(mail_world, smtp) == [
        ("upper_tp", "task_overdue"),
        ("upper_tp2", "task_overdue"),
    ]
    overdue = next(m for m in smtp.received if m.to == [address("upper_tp")])
    assert "Quá hạn" in overdue.subject
    assert "Chủ tịch Công đoàn cấp trên" in overdue.body
    sweep(mail_world, task["escalate_at"])
    # Reassigned to the escalation target, and the case flagged "SLA" for the auditors.
    assert deliver(mail_world, smtp) == [
        ("auditor", "case_flagged"),
        ("auditor_tp", "case_flagged"),
        ("upper_tp", "task_escalated"),
        ("upper_tp2", "task_escalated"),
    ]
    flagged = next(m for m in smtp.received if m.to == [address("auditor")])
    assert "SLA" in flagged.body
    sweep(mail_world, task["escalate_at"])
    assert deliver(mail_world, smtp) == []


def test_a_case_flagged_at_intake_alerts_the_auditors_of_its_unit_and_above(
    mail_world: World, smtp: SmtpServer
) -> None:
    member = mail_world.member()
    today = mail_world.clock.today()
    mail_world.submit("housing", "repair", member, event_date=today - timedelta(days=100))
    assert ("auditor", "case_flagged") not in deliver(mail_world, smtp)
    flagged = mail_world.submit("housing", "build", member)
    assert flagged.flags == ["C4"]
    got = deliver(mail_world, smtp)
    assert ("auditor", "case_flagged") in got
    assert ("auditor_tp", "case_flagged") in got
    alert = next(m for m in smtp.received if m.to == [address("auditor")])
    assert "C4" in alert.body
    assert "gắn cờ" in alert.subject


def test_an_account_without_an_address_or_inactive_gets_nothing(
    mail_world: World, smtp: SmtpServer
) -> None:
    mail_world.submit("housing", "repair", mail_world.member())
    with mail_world.app.engine.begin() as conn:
        conn.execute(update(ACCOUNT).where(ACCOUNT.c.username == "chair_a2").values(email=None))
        conn.execute(update(ACCOUNT).where(ACCOUNT.c.username == "officer_a").values(active=False))
    assert deliver(mail_world, smtp) == [("chair_a", "task_new")]
