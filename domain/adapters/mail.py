"""Sending e-mail: the `emails` package with its async aiosmtplib backend (never `smtplib`).

`SmtpMailer.send` answers how the server took one message — accepted, try again later, or
refused for good — and never raises for SMTP trouble, so the caller records each outcome in
the database right after the server answered.
"""

from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

import aiosmtplib
from emails.backend.smtp.aio_backend import AsyncSMTPBackend
from emails.message import Message

from domain.config import Settings


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None = None
    password: str | None = None
    tls: bool = False  # STARTTLS after connecting
    mail_from: str = "Công đoàn Lai Châu <no-reply@congdoan-laichau.vn>"
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, s: Settings) -> "SmtpSettings":
        return cls(
            host=s.smtp_host,
            port=s.smtp_port,
            user=s.smtp_user,
            password=s.smtp_password,
            tls=s.smtp_tls,
            mail_from=s.mail_from,
        )

    @property
    def sender_domain(self) -> str:
        address = self.mail_from.rsplit("<", 1)[-1].rstrip(">").strip()
        return address.rsplit("@", 1)[-1] if "@" in address else "localhost"


class Delivery(StrEnum):
    SENT = "sent"  # the server accepted the message (250 after DATA)
    UNREACHABLE = "unreachable"  # no connection, or it broke: the server may be down
    RETRY = "retry"  # a 4xx answer for this message: try it again later
    REFUSED = "refused"  # a 5xx answer: retrying will not help


@dataclass(frozen=True)
class Outcome:
    delivery: Delivery
    detail: str = ""


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    text: str
    message_id: str  # derived from the notification id: a resent duplicate is recognisable
    headers: tuple[tuple[str, str], ...] = ()


class SmtpMailer:
    """One SMTP connection reused for a batch of messages (`async with SmtpMailer(...)`)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._backend: Any = None

    async def __aenter__(self) -> "SmtpMailer":
        s = self.settings
        kwargs: dict[str, Any] = {"host": s.host, "port": s.port, "timeout": s.timeout}
        if s.tls:
            kwargs["tls"] = True
        if s.user:
            kwargs["user"] = s.user
            kwargs["password"] = s.password or ""
        self._backend = AsyncSMTPBackend(fail_silently=True, **kwargs)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._backend is not None:
            await self._backend.close()
            self._backend = None

    def build(self, mail: OutgoingMail) -> Any:
        return Message(
            subject=mail.subject,
            mail_from=self.settings.mail_from,
            mail_to=mail.to,
            text=mail.text,
            charset="utf-8",
            message_id=mail.message_id,
            headers={"Auto-Submitted": "auto-generated", **dict(mail.headers)},
        )

    async def send(self, mail: OutgoingMail) -> Outcome:
        assert self._backend is not None, "use `async with SmtpMailer(...)`"
        message = self.build(mail)
        try:
            response = await message.send_async(smtp=self._backend)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # A connection lost mid-message: whether the server kept it is unknown; retrying
            # may duplicate it, which the unchanged Message-ID makes recognisable.
            await self._reset()
            return Outcome(Delivery.UNREACHABLE, f"{type(exc).__name__}: {exc}"[:300])
        if response is not None and response.success:
            return Outcome(Delivery.SENT)
        code = getattr(response, "status_code", None)
        error = getattr(response, "error", None)
        detail = f"{code or ''} {type(error).__name__ if error else ''}: {error or ''}".strip()
        if code is None:
            await self._reset()
            return Outcome(Delivery.UNREACHABLE, detail[:300])
        if 500 <= code < 600:
            return Outcome(Delivery.REFUSED, detail[:300])
        return Outcome(Delivery.RETRY, detail[:300])

    async def _reset(self) -> None:
        """Drop a broken connection so the next message reconnects."""
        if self._backend is not None:
            await self._backend.close()
