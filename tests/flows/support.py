"""Helpers for the flows tests: a real SMTP server on loopback, accounts with addresses, and
reads of the outbox, consumed events and notifications."""

import asyncio
import email
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select, text, update

from domain.adapters.mail import SmtpSettings
from domain.adapters.repository import ACCOUNT, MEMBER, OUTBOX
from domain.service.notifications import NOTIFICATION
from domain.service.relay import CONSUMED, OutboxEvent
from tests.support import World


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    to: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return str(make_header(decode_header(self.message["Subject"])))

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def body(self) -> str:
        part = self.message
        if part.is_multipart():
            part = next(p for p in part.walk() if p.get_content_type() == "text/plain")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode(part.get_content_charset() or "utf-8")


@dataclass
class Collector:
    """aiosmtpd handler: keeps every accepted message; refuses listed recipients with a code."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self.lock:
            self.received.append(
                Received(list(envelope.rcpt_tos), email.message_from_bytes(content))
            )
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 that tests stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = Collector()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()

    def settings(self) -> SmtpSettings:
        return SmtpSettings(host="127.0.0.1", port=self.port, timeout=5.0)


def give_addresses(world: World, english: tuple[str, ...] = ()) -> None:
    """Every account gets <username>@congdoan.test; the listed ones read English."""
    with world.app.engine.begin() as conn:
        conn.execute(update(ACCOUNT).values(email=ACCOUNT.c.username + "@congdoan.test"))
        if english:
            conn.execute(update(ACCOUNT).where(ACCOUNT.c.username.in_(english)).values(lang="en"))


def address(name: str) -> str:
    return f"{name}@congdoan.test"


def outbox_rows(world: World) -> list[dict[str, Any]]:
    with world.app.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(OUTBOX).order_by(OUTBOX.c.seq)).mappings()]


def notification_rows(world: World) -> list[dict[str, Any]]:
    with world.app.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(NOTIFICATION).order_by(NOTIFICATION.c.created_at, NOTIFICATION.c.id)
            ).mappings()
        ]


def consumed_count(world: World, consumer: str) -> int:
    with world.app.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(CONSUMED).where(CONSUMED.c.consumer == consumer)
            ).scalar_one()
        )


def personal_data(world: World) -> list[str]:
    """Names and CCCD of every member: none may appear in any message."""
    with world.app.engine.connect() as conn:
        rows = conn.execute(select(MEMBER.c.full_name, MEMBER.c.cccd)).all()
    return [v for r in rows for v in r if v]


def reset_outbox(world: World) -> None:
    """Pretend every ack was lost: all events pending again (a crash after the effects)."""
    with world.app.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE outbox SET status = 'pending', attempts = 0, claimed_by = NULL, "
                "lease_until = NULL"
            )
        )


@dataclass
class Recorder:
    """A test consumer that records what it handled, in order, and fails when told to."""

    name: str = "recorder"
    handled: list[OutboxEvent] = field(default_factory=list)
    fail_on: set[str] = field(default_factory=set)  # event ids
    fail_types: set[str] = field(default_factory=set)
    calls: int = 0

    def wants(self, event: OutboxEvent) -> bool:
        return True

    def handle(self, event: OutboxEvent) -> None:
        self.calls += 1
        if event.id in self.fail_on or event.type in self.fail_types:
            raise RuntimeError("the consumer is failing on purpose")
        self.handled.append(event)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def at(world: World) -> datetime:
    return world.clock.now
