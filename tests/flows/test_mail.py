"""Sending through a real SMTP server on loopback (aiosmtpd): an outage loses nothing and
sends nothing twice; refusals are dead letters; the Message-ID names the notification."""

from collections import Counter
from datetime import date, timedelta

from domain.service.notifications import (
    claim_notifications,
    notifications,
    send_with_smtp,
)
from domain.service.relay import build_relay
from tests.flows.support import SmtpServer, address, notification_rows, run
from tests.support import World

NAMES = ["Lò Văn Hùng", "Tòng Thị Mai", "Vàng A Sử", "Lù Thị Ngọc", "Giàng Seo Phủ"]


def produce(world: World, cases: int = 3) -> list[str]:
    ids = []
    for _ in range(cases):
        # Distinct people: the same name and birth date would be flagged as a possible duplicate.
        member = world.member(
            dob=date(1970 + world.serial, 3, 1), name=NAMES[world.serial % len(NAMES)]
        )
        ids.append(world.submit("housing", "repair", member).case_id)
    build_relay(world.service, world.app.settings).drain()
    return ids


def send(world: World, smtp: SmtpServer, **kw: int):  # type: ignore[no-untyped-def]
    return run(send_with_smtp(world.app.engine, smtp.settings(), clock=world.service.clock, **kw))


def test_messages_wait_while_the_server_is_down_and_each_is_delivered_once_when_it_returns(
    mail_world: World, smtp: SmtpServer
) -> None:
    smtp.stop()
    produce(mail_world)
    rows = notification_rows(mail_world)
    assert len(rows) == 9  # per case: two chairs' new task, the submitter's status
    down = send(mail_world, smtp)
    assert down.unreachable
    assert (down.sent, down.dead) == (0, 0)
    assert down.waiting > 0
    assert {r["status"] for r in notification_rows(mail_world)} == {"pending"}
    assert all(r["attempts"] == 0 for r in notification_rows(mail_world))
    produce(mail_world, cases=1)  # more mail piles up during the outage
    assert send(mail_world, smtp).unreachable
    smtp.start()
    assert send(mail_world, smtp).sent == 0  # not before the retry time
    mail_world.clock.advance(seconds=31)
    up = send(mail_world, smtp)
    rows = notification_rows(mail_world)
    assert up.sent == len(rows) == 12
    assert not up.unreachable
    assert {r["status"] for r in rows} == {"sent"}
    ids = Counter(m.message_id for m in smtp.received)
    assert len(smtp.received) == len(rows)
    assert set(ids.values()) == {1}
    assert set(ids) == {f"<{r['id']}@congdoan-laichau.vn>" for r in rows}
    assert send(mail_world, smtp).sent == 0
    assert len(smtp.received) == len(rows)


def test_a_permanent_refusal_is_a_dead_letter_and_a_temporary_one_is_retried(
    mail_world: World, smtp: SmtpServer
) -> None:
    smtp.handler.refuse[address("chair_a")] = "550 5.1.1 mailbox unknown"
    smtp.handler.refuse[address("chair_a2")] = "451 4.3.0 try again later"
    produce(mail_world, cases=1)
    result = send(mail_world, smtp)
    assert (result.sent, result.dead, result.retried) == (1, 1, 1)
    by_address = {r["address"]: r for r in notification_rows(mail_world)}
    assert by_address[address("chair_a")]["status"] == "dead"
    assert "550" in by_address[address("chair_a")]["last_error"]
    retry = by_address[address("chair_a2")]
    assert (retry["status"], retry["attempts"]) == ("pending", 1)
    assert retry["available_at"] == mail_world.clock.now + timedelta(seconds=30)
    assert [n.address for n in notifications(mail_world.app.engine, status="dead")] == [
        address("chair_a")
    ]
    del smtp.handler.refuse[address("chair_a2")]
    mail_world.clock.advance(seconds=30)
    assert send(mail_world, smtp).sent == 1
    assert sorted(m.to[0] for m in smtp.received) == sorted(
        [address("officer_a"), address("chair_a2")]
    )


def test_a_temporary_refusal_that_never_ends_becomes_dead_after_the_attempts(
    mail_world: World, smtp: SmtpServer
) -> None:
    smtp.handler.refuse[address("chair_a2")] = "452 4.2.2 mailbox full"
    produce(mail_world, cases=1)
    for _ in range(3):
        send(mail_world, smtp, max_attempts=3)
        mail_world.clock.advance(hours=2)
    row = next(r for r in notification_rows(mail_world) if r["address"] == address("chair_a2"))
    assert (row["status"], row["attempts"]) == ("dead", 3)


def test_a_sender_that_crashed_mid_batch_leaves_its_rows_to_the_next_after_the_lease(
    mail_world: World, smtp: SmtpServer
) -> None:
    """The at-least-once window: leased rows of a crashed sender are sent after the lease."""
    produce(mail_world, cases=1)
    leased = claim_notifications(
        mail_world.app.engine, mail_world.clock.now, 10, timedelta(minutes=7)
    )
    assert len(leased) == 3
    assert send(mail_world, smtp).sent == 0  # leased by the "crashed" sender
    mail_world.clock.advance(minutes=7)
    assert send(mail_world, smtp).sent == 3
    assert sorted(m.message_id for m in smtp.received) == sorted(
        f"<{r['id']}@congdoan-laichau.vn>" for r in leased
    )


def test_messages_are_utf8_with_vietnamese_subjects_and_marked_automatic(
    mail_world: World, smtp: SmtpServer
) -> None:
    produce(mail_world, cases=1)
    send(mail_world, smtp)
    status = next(m for m in smtp.received if m.to == [address("officer_a")])
    assert status.subject.endswith("Đang xét duyệt")
    assert "Mái ấm Công đoàn" in status.subject
    assert status.message["Auto-Submitted"] == "auto-generated"
    assert "25.000.000\u00a0₫" in status.body
    assert status.message["X-Welfare-Notification"] in status.message_id
