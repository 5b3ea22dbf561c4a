"""E-mail notifications: who hears about which event, what they read, and sending exactly once.

Two steps, each idempotent on its own:

1. `NotifyConsumer` (an outbox consumer) turns an event into `notification` rows — one per
   (event, address, template), unique in the database — in the same transaction that records
   the event as consumed (under the relay: the batch's transaction, with its acks). A
   replayed event adds nothing.
2. `send_pending` drains those rows through SMTP: a row is leased (`status="sending"`), sent,
   and marked `sent` in its own short transaction right after the server accepted it. While
   the server is unreachable rows wait (no attempt is counted, nothing is lost); a 4xx answer
   retries with back-off; a 5xx refusal marks the row `dead`.

At-least-once window: a crash after the server accepted a message and before it is marked
sent leaves the row leased; when the lease expires it is sent again. The Message-ID is derived
from the notification id, so such a duplicate carries the same Message-ID as the first copy
and mail systems (and people) can recognise it.

Who hears what: the submitter on every status change of their case; the holders of a task's
role on a new task, a reminder and an escalation; the next level when a task is overdue; the
auditors of the case's unit and above on a flag; all auditors on a broken audit chain; the
provincial standing committee when the yearly report is ready.

Lists are the exception (a Tết list of 10,000 members would otherwise send its officer
10,000–20,000 status mails and each grassroots chair 10,000 new-task mails). The events of a
list case's submission and screening carry the list id (`events.LIST`): `case.submitted`,
`case.screened`, a rejection or approval by screening, and the first `task.opened`. They send
nothing — `wants` declines them, so they cost no read and no consumed row — except that a case
flagged at intake still alerts the auditors. Instead, the list's one `case_list.screened`
event (recorded when none of its cases is left in screening, see `case_lists`) sends one
`list_screened` mail to the list's officer (cases by outcome, the first cases rejected at
screening by reference, a link to the list's cases) and one `list_tasks` mail to each holder
of a role the first tasks went to ("N new cases from list DS-… await you"; the same people, by
the same rules, as a `task_new`). Everything later in a list case's life — an approver's
decision, a return for information, payment, the next step's task, reminders, overdue
notices, escalations, and every flag — is mailed case by case, as for a single case.

No message carries personal data: case or list reference, policy, status, amount, step, role,
unit, counts and due time only — never a member's name, CCCD, diagnosis or form field.
"""

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import jinja2
from sqlalchemy import Engine, and_, bindparam, or_, select, update
from sqlalchemy.engine import Connection

from domain import events as ev
from domain.adapters import tables as t
from domain.adapters.db import READ_ONLY
from domain.adapters.definitions import DefinitionStore
from domain.adapters.mail import Delivery, Outcome, OutgoingMail, SmtpMailer, SmtpSettings
from domain.adapters.repository import ACCOUNT, CASE, GRANT, ORG, TASK, Repository
from domain.i18n import Lang, translate
from domain.ids import new_id
from domain.model import CaseStatus
from domain.money import format_vnd, format_vnd_en
from domain.roles import ROLE_TITLES, OrgLevel, Role
from domain.service.relay import (
    Consumed,
    OutboxEvent,
    consume_once,
    consumed,
    consumed_among,
    error_text,
)
from domain.workcalendar import VN_TZ
from domain.workflow import ApprovalStep, PaymentStep

log = logging.getLogger(__name__)

_T = TypeVar("_T")

NOTIFICATION = t.NotificationRow.__table__  # type: ignore[attr-defined]
TEMPLATES_DIR = Path(__file__).parent / "mail_templates"

# Events of the scheduled work (not engine transitions), consumed like the others.
AUDIT_VERIFICATION_FAILED = ev.AUDIT_VERIFICATION_FAILED
REPORT_READY = ev.REPORT_YEARLY_READY

# The submitter hears about every change of their case's status.
SUBMITTER_EVENTS = frozenset(
    {
        ev.CASE_SUBMITTED,
        ev.CASE_SCREENED,
        ev.CASE_INFO_REQUESTED,
        ev.CASE_APPROVED,
        ev.CASE_REJECTED,
        ev.CASE_WITHDRAWN,
        ev.CASE_PAYMENT_RECORDED,
        ev.CASE_PAID,
    }
)
TASK_TEMPLATES = {
    ev.TASK_OPENED: "task_new",
    ev.TASK_REMINDER: "task_reminder",
    ev.TASK_OVERDUE: "task_overdue",
    ev.TASK_ESCALATED: "task_escalated",
}
HANDLED = (
    SUBMITTER_EVENTS
    | set(TASK_TEMPLATES)
    | {
        ev.CASE_FLAGGED,
        ev.CASE_LIST_SCREENED,
        AUDIT_VERIFICATION_FAILED,
        REPORT_READY,
    }
)
# The events of a list case's submission and screening (marked with `ev.LIST`) whose news the
# list's digest carries: no mail of their own to the officer, nor a task_new to the approvers.
DIGESTED = SUBMITTER_EVENTS | {ev.TASK_OPENED}
STATUS_ORDER = {s.value: i for i, s in enumerate(CaseStatus)}


def digested(event: OutboxEvent) -> bool:
    """Whether the event's only mail is the one its list's digest replaces. Decided from the
    event alone: a 10,000-member list's 20,000–30,000 such events cost no read at all. A case
    flagged at intake still alerts the auditors, so its `case.submitted` is planned."""
    return (
        event.type in DIGESTED
        and bool(event.data.get(ev.LIST))
        and not (event.type == ev.CASE_SUBMITTED and event.data.get("flagged"))
    )


@dataclass(frozen=True)
class Recipient:
    account_id: str
    address: str
    lang: str


@dataclass(frozen=True)
class Planned:
    recipient: Recipient
    template: str
    context: dict[str, Any]


def reference(case_id: str) -> str:
    """The short case reference people quote on the phone: HS-1A2B3C4D (the random end of
    the id; its start is a timestamp that cases filed together share)."""
    return f"HS-{case_id.replace('-', '')[-8:].upper()}"


def list_reference(list_id: str) -> str:
    """A list's short reference, DS-1A2B3C4D ("danh sách"), made as a case's is."""
    return f"DS-{list_id.replace('-', '')[-8:].upper()}"


def holders(conn: Connection, role: Role | str, units: Sequence[str], on: date) -> list[Recipient]:
    """Active accounts with an e-mail address holding `role` at one of `units` on `on`."""
    if not units:
        return []
    g, a = GRANT.c, ACCOUNT.c
    rows = conn.execute(
        select(a.id, a.email, a.lang)
        .select_from(GRANT.join(ACCOUNT, a.id == g.account_id))
        .where(
            g.role == str(role),
            g.org_unit_id.in_(list(units)),
            g.valid_from <= on,
            or_(g.valid_to.is_(None), g.valid_to >= on),
            a.active.is_(True),
            a.email.is_not(None),
        )
        .order_by(a.id)
    ).all()
    return _unique([Recipient(r[0], r[1], r[2] or "vi") for r in rows])


def _unique(recipients: Sequence[Recipient]) -> list[Recipient]:
    seen: set[str] = set()
    out = []
    for r in recipients:
        key = r.address.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(r)
    return out


# Built once with bind parameters: the relay plans one event at a time, and building these
# per event cost more than running them.
_SEL_ACCOUNT = select(ACCOUNT.c.id, ACCOUNT.c.email, ACCOUNT.c.lang).where(
    ACCOUNT.c.id == bindparam("b_id"), ACCOUNT.c.active.is_(True)
)
# Only the columns a notification reads: the case's form, documents' metadata and the like are
# JSON that would be decoded for every event (and may hold personal data mail never carries).
_SEL_CASE = select(
    *(
        CASE.c[k]
        for k in (
            "id",
            "policy",
            "policy_version",
            "unit_id",
            "status",
            "approved_amount",
            "entitled_amount",
            "flags",
            "submitted_by",
        )
    )
).where(CASE.c.id == bindparam("b_id"))
_SEL_TASK = select(
    *(TASK.c[k] for k in ("id", "kind", "step", "role", "level", "org_unit_id", "due_at"))
).where(TASK.c.id == bindparam("b_id"))
_SEL_UNIT_NAME = select(ORG.c.name).where(ORG.c.id == bindparam("b_id"))


def _account(conn: Connection, account_id: str) -> Recipient | None:
    r = conn.execute(_SEL_ACCOUNT, {"b_id": account_id}).first()
    if r is None or not r[1]:
        return None
    return Recipient(r[0], r[1], r[2] or "vi")


@dataclass
class _NotifyBatch:
    consumed: set[str]
    records: list[Consumed] = field(default_factory=list)
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    reader: Connection | None = None


class NotifyConsumer:
    """Outbox consumer "notify": an event → the notification rows for its recipients."""

    name = "notify"

    def __init__(
        self,
        engine: Engine,
        definitions: DefinitionStore,
        *,
        clock: Callable[[], datetime],
        base_url: str = "http://127.0.0.1:8000",
    ) -> None:
        self.engine = engine
        self.definitions = definitions
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self._batch: _NotifyBatch | None = None

    def wants(self, event: OutboxEvent) -> bool:
        # An event the list's digest stands for is not even handed over (no consumed row).
        return event.type in HANDLED and not digested(event)

    def begin_batch(self, events: Sequence[OutboxEvent]) -> None:
        self._batch = _NotifyBatch(consumed_among(self.engine, self.name, [e.id for e in events]))

    def end_batch(self) -> list[Consumed]:
        batch, self._batch = self._batch, None
        if batch is None:
            return []
        if batch.reader is not None:
            batch.reader.close()
        return batch.records

    @contextmanager
    def _reader(self) -> Iterator[Connection]:
        """A read-only connection for planning one event, its read transaction ended after.

        Read first, on a read-only connection: the write transaction stays short. Each event
        reads in a transaction of its own, so it sees what the consumers before this one did
        with it (the screening that may just have run); within a batch the connection itself
        is kept (opening one an event was a tenth of the relay's time).
        """
        batch = self._batch
        if batch is None:
            with self.engine.connect().execution_options(**READ_ONLY) as conn:
                yield conn
            return
        reader = batch.reader or self.engine.connect().execution_options(**READ_ONLY)
        batch.reader = None
        try:
            yield reader
            reader.rollback()
        except BaseException:
            reader.close()  # perhaps broken: the next event opens a fresh one
            raise
        batch.reader = reader

    def handle(self, event: OutboxEvent) -> None:
        batch = self._batch
        if batch is not None and event.id in batch.consumed:
            return
        with self._reader() as conn:
            if batch is None and consumed(conn, self.name, event.id):
                return
            planned = self.plan(conn, event)
        now = self.clock()
        record = Consumed(
            self.name, event.id, event.seq, now, NOTIFICATION, self._rows(event, planned, now)
        )
        if batch is not None:
            batch.records.append(record)  # written by the relay with the batch's acks
        else:
            consume_once(self.engine, self.name, event.id, now, record.effect)

    @staticmethod
    def _rows(
        event: OutboxEvent, planned: Sequence[Planned], now: datetime
    ) -> tuple[dict[str, Any], ...]:
        return tuple(
            {
                "id": new_id(),
                "event_id": event.id,
                "case_id": event.case_id,
                "account_id": p.recipient.account_id,
                "address": p.recipient.address,
                "template": p.template,
                "lang": p.recipient.lang if p.recipient.lang in ("vi", "en") else "vi",
                "context": p.context,
                "status": "pending",
                "attempts": 0,
                "available_at": now,
                "created_at": now,
            }
            for p in planned
        )

    def _memo(self, key: tuple[Any, ...], read: Callable[[], _T]) -> _T:
        """`read()`, remembered for the rest of the batch (outside a batch: not remembered).

        Within one batch (a fraction of a second) the recipients of a role at a unit, an
        account's address and a unit's name and ancestry are read once, not once an event:
        most events of a batch go to the same few people.
        """
        batch = self._batch
        if batch is None:
            return read()
        if key not in batch.memo:
            batch.memo[key] = read()
        value: _T = batch.memo[key]
        return value

    # --- who hears what ---

    def plan(self, conn: Connection, event: OutboxEvent) -> list[Planned]:
        if event.type == AUDIT_VERIFICATION_FAILED:
            return self._to_all_auditors(conn, event)
        if event.type == REPORT_READY:
            return self._to_standing_committee(conn, event)
        if event.type == ev.CASE_LIST_SCREENED:
            return self._list_screened(conn, event)
        if event.case_id is None:
            return []
        case = conn.execute(_SEL_CASE, {"b_id": event.case_id}).mappings().first()
        if case is None:
            return []
        defn = self.definitions.get(case["policy"], case["policy_version"])
        today = self.clock().astimezone(VN_TZ).date()
        ancestry: dict[OrgLevel, str] = self._memo(
            ("ancestry", case["unit_id"], today),
            lambda: dict(Repository(conn).ancestry(case["unit_id"], today)),
        )
        base: dict[str, Any] = {
            "event": event.type,
            "case_id": case["id"],
            "reference": reference(case["id"]),
            "policy": case["policy"],
            "policy_title": {"vi": defn.title.vi, "en": defn.title.en},
            "status": event.data.get("status") or case["status"],
            "amount": case["approved_amount"]
            if case["approved_amount"] is not None
            else case["entitled_amount"],
            "link": f"{self.base_url}/api/v1/cases/{case['id']}",
        }
        if event.type in SUBMITTER_EVENTS:
            # A list case's submission: its officer hears in the list's digest.
            listed = bool(event.data.get(ev.LIST))
            planned = [] if listed else self._to_submitter(conn, event, case, base)
            if event.type == ev.CASE_SUBMITTED and event.data.get("flagged"):
                # Flags raised at intake come with the submission, not as case.flagged.
                planned += self._to_auditors(conn, ancestry, today, base, case["flags"] or [])
            return planned
        if event.type == ev.CASE_FLAGGED:
            flags = str(event.data.get("flags") or ",".join(case["flags"] or []))
            return self._to_auditors(conn, ancestry, today, base, flags.split(","))
        template = TASK_TEMPLATES.get(event.type)
        task_id = event.data.get("task")
        if template is None or not isinstance(task_id, str):
            return []
        task = conn.execute(_SEL_TASK, {"b_id": task_id}).mappings().first()
        if task is None or task["kind"] == "member_input":
            return []  # the submitter hears about a return for information as a status change
        step = defn.steps.get(task["step"])
        role, units = Role(task["role"]), self._reach(ancestry, OrgLevel(task["level"]))
        if event.type == ev.TASK_OVERDUE:
            # The next level hears that the task is overdue.
            notify_unit = event.data.get("notify_unit")
            if isinstance(step, (ApprovalStep, PaymentStep)):
                role = step.escalate_to.role
            units = [notify_unit] if isinstance(notify_unit, str) else []
        unit_name = self._memo(
            ("unit_name", task["org_unit_id"]), lambda: self._unit_name(conn, task["org_unit_id"])
        )
        ctx = {
            **base,
            "task_id": task["id"],
            "step_title": {"vi": step.title.vi, "en": step.title.en}
            if step is not None and hasattr(step, "title")
            else {"vi": task["step"], "en": task["step"]},
            "role": str(task["role"]),
            "unit_name": unit_name,
            "due_at": task["due_at"].isoformat(),
            "escalated_role": str(role) if event.type == ev.TASK_OVERDUE else None,
        }
        people = [
            r
            for r in self._holders(conn, role, units, today)
            if r.account_id != case["submitted_by"]
        ]
        planned = [Planned(r, template, ctx) for r in people]
        if event.type == ev.TASK_ESCALATED:
            # Reassignment at twice the SLA flags the case "SLA" for the auditors.
            planned += self._to_auditors(conn, ancestry, today, base, ["SLA"])
        return planned

    def _list_screened(self, conn: Connection, event: OutboxEvent) -> list[Planned]:
        """A list's screening digest: one `list_screened` mail to its officer (the outcome),
        one `list_tasks` mail to each approver who holds a role its first tasks went to (how
        many new cases await them) — the same people a `task_new` reaches, once a list."""
        d = event.data
        list_id, unit = str(d[ev.LIST]), str(d["unit"])
        defn = self.definitions.get(str(d["policy"]), int(d["policy_version"]))
        today = self.clock().astimezone(VN_TZ).date()
        ancestry: dict[OrgLevel, str] = self._memo(
            ("ancestry", unit, today), lambda: dict(Repository(conn).ancestry(unit, today))
        )

        def unit_name(unit_id: str) -> str:
            return self._memo(("unit_name", unit_id), lambda: self._unit_name(conn, unit_id))

        items, accepted = int(d["items"]), int(d["accepted"])
        base: dict[str, Any] = {
            "event": event.type,
            "list_id": list_id,
            "list_reference": list_reference(list_id),
            "policy": d["policy"],
            "policy_title": {"vi": defn.title.vi, "en": defn.title.en},
            "unit_name": unit_name(unit),
            "items": items,
            "accepted": accepted,
            "refused": items - accepted,
        }
        groups: list[dict[str, Any]] = [
            {
                "role": str(g["role"]),
                "level": str(g["level"]),
                "unit_name": unit_name(str(g["unit"])),
                "count": int(g["count"]),
            }
            for g in d.get("tasks") or []
            if isinstance(g, dict)
        ]
        statuses = d.get("statuses") or {}
        assert isinstance(statuses, dict)
        rejected = [reference(str(c)) for c in d.get("rejected") or []]
        planned: list[Planned] = []
        submitted_by = str(d["submitted_by"])
        officer = self._memo(("account", submitted_by), lambda: _account(conn, submitted_by))
        if officer is not None:
            ctx = {
                **base,
                "statuses": {str(k): int(v) for k, v in statuses.items()},
                "tasks": groups,
                "rejected": rejected,
                "rejected_more": max(int(statuses.get("rejected") or 0) - len(rejected), 0),
                "link": f"{self.base_url}/api/v1/cases?batch_id={list_id}",
            }
            planned.append(Planned(officer, "list_screened", ctx))
        # One mail a person however many of the groups they hold a role for, keyed by address
        # as a notification is (two accounts may share one).
        people: dict[str, tuple[Recipient, list[dict[str, Any]]]] = {}
        for g in groups:
            units = self._reach(ancestry, OrgLevel(g["level"]))
            for r in self._holders(conn, g["role"], units, today):
                if r.account_id != submitted_by:
                    people.setdefault(r.address.strip().lower(), (r, []))[1].append(g)
        for r, mine in people.values():
            ctx = {
                **base,
                "groups": mine,
                "count": sum(g["count"] for g in mine),
                "link": f"{self.base_url}/api/v1/inbox",
            }
            planned.append(Planned(r, "list_tasks", ctx))
        return planned

    def _to_submitter(
        self, conn: Connection, event: OutboxEvent, case: Any, base: dict[str, Any]
    ) -> list[Planned]:
        if event.type == ev.CASE_WITHDRAWN and not event.data.get("expired"):
            return []  # the submitter withdrew it themselves
        if event.type == ev.CASE_SUBMITTED and case["status"] != "screening":
            return []  # already screened: the case.screened mail says where it stands
        ctx = dict(base)
        if event.type == ev.CASE_PAYMENT_RECORDED:
            ctx["paid_amount"] = event.data.get("amount")
            ctx["tranche"] = event.data.get("tranche")
        submitter = self._memo(
            ("account", case["submitted_by"]), lambda: _account(conn, case["submitted_by"])
        )
        return [Planned(submitter, "case_status", ctx)] if submitter else []

    def _holders(
        self, conn: Connection, role: Role | str, units: Sequence[str], on: date
    ) -> list[Recipient]:
        return self._memo(
            ("holders", str(role), tuple(units), on), lambda: holders(conn, role, units, on)
        )

    def _to_auditors(
        self,
        conn: Connection,
        ancestry: Any,
        today: date,
        base: dict[str, Any],
        flags: Sequence[str],
    ) -> list[Planned]:
        """The inspection committees at the case's unit and above."""
        ctx = {**base, "flags": [f for f in flags if f]}
        auditors = self._holders(conn, Role.AUDITOR, list(ancestry.values()), today)
        return [Planned(r, "case_flagged", ctx) for r in auditors]

    @staticmethod
    def _reach(ancestry: Any, level: OrgLevel) -> list[str]:
        """Units a role may be held at to act on a task at `level` (the engine's reach)."""
        return [u for lvl, u in ancestry.items() if lvl.rank <= level.rank]

    @staticmethod
    def _unit_name(conn: Connection, unit_id: str) -> str:
        name = conn.execute(_SEL_UNIT_NAME, {"b_id": unit_id}).scalar()
        return str(name or unit_id)

    def _to_all_auditors(self, conn: Connection, event: OutboxEvent) -> list[Planned]:
        today = self.clock().astimezone(VN_TZ).date()
        units = [r[0] for r in conn.execute(select(ORG.c.id))]
        ctx = {"event": event.type, **dict(event.data)}
        return [Planned(r, "audit_alert", ctx) for r in holders(conn, Role.AUDITOR, units, today)]

    def _to_standing_committee(self, conn: Connection, event: OutboxEvent) -> list[Planned]:
        today = self.clock().astimezone(VN_TZ).date()
        units = [r[0] for r in conn.execute(select(ORG.c.id).where(ORG.c.level == "province"))]
        ctx = {"event": event.type, **dict(event.data)}
        people = holders(conn, Role.PROVINCE_STANDING, units, today)
        return [Planned(r, "report_ready", ctx) for r in people]


# --- rendering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


class MailRenderer:
    """Jinja2 templates `mail_templates/<lang>/<template>.txt.j2`, blocks `subject` and `body`."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain-text mail; the context holds only our own codes and numbers
            keep_trailing_newline=True,
        )

    def render(self, template: str, lang: str, context: dict[str, Any]) -> Rendered:
        lg: Lang = "en" if lang == "en" else "vi"
        tmpl = self.env.get_template(f"{lg}/{template}.txt.j2")
        ctx = tmpl.new_context(present(context, lg))
        subject = "".join(tmpl.blocks["subject"](ctx)).strip()
        body = "".join(tmpl.blocks["body"](ctx)).strip() + "\n"
        return Rendered(" ".join(subject.split()), body)


def present(context: dict[str, Any], lang: Lang) -> dict[str, Any]:
    """The stored context, formatted for one language: money, local time, titles."""
    out = dict(context)
    for key in ("amount", "paid_amount"):
        if isinstance(out.get(key), int):
            out[key] = format_vnd(out[key]) if lang == "vi" else format_vnd_en(out[key])
    for key in ("policy_title", "step_title"):
        if isinstance(out.get(key), dict):
            out[key] = out[key].get(lang) or out[key].get("vi")
    if isinstance(out.get("status"), str):
        out["status_title"] = translate(f"status_{out['status']}", lang)
    for key in ("role", "escalated_role"):
        if isinstance(out.get(key), str):
            out[f"{key}_title"] = _role_title(out[key], lang)
    if isinstance(out.get("statuses"), dict):
        # A list digest's cases by status, in the order of a case's life.
        out["status_lines"] = [
            {"title": translate(f"status_{s}", lang), "count": n}
            for s, n in sorted(out["statuses"].items(), key=lambda i: STATUS_ORDER.get(i[0], 99))
        ]
    for key in ("tasks", "groups"):
        if isinstance(out.get(key), list):
            out[key] = [{**g, "role_title": _role_title(g["role"], lang)} for g in out[key]]
    if isinstance(out.get("problem_code"), str):  # what an audit verification found wrong
        out["problem"] = translate(out["problem_code"], lang, **(out.get("problem_params") or {}))
    if isinstance(out.get("due_at"), str):
        local = datetime.fromisoformat(out["due_at"]).astimezone(VN_TZ)
        out["due"] = local.strftime("%H:%M %d/%m/%Y") + (
            " (giờ Việt Nam)" if lang == "vi" else " (Vietnam time)"
        )
    return out


def _role_title(role: str, lang: Lang) -> str:
    titles = ROLE_TITLES.get(Role(role))
    return (titles[0] if lang == "vi" else titles[1]) if titles else role


# --- sending -------------------------------------------------------------------------------


class Mailer(Protocol):
    async def send(self, mail: OutgoingMail) -> Outcome: ...


@dataclass
class SendResult:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    waiting: int = 0  # put back because the server was unreachable
    unreachable: bool = False
    errors: list[str] = field(default_factory=list)


def claim_notifications(
    engine: Engine, now: datetime, limit: int, lease: timedelta
) -> list[dict[str, Any]]:
    """Lease up to `limit` due rows (an expired lease of a crashed sender counts as due)."""
    n = NOTIFICATION.c
    due = and_(n.status.in_(("pending", "sending")), n.available_at <= now)
    with engine.begin() as conn:
        q = select(NOTIFICATION).where(due).order_by(n.created_at, n.id).limit(limit)
        if engine.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = [dict(r) for r in conn.execute(q).mappings()]
        if rows:
            conn.execute(
                update(NOTIFICATION)
                .where(n.id.in_([r["id"] for r in rows]))
                .values(status="sending", available_at=now + lease)
            )
    return rows


def _settle(engine: Engine, notification_id: str, **values: Any) -> None:
    n = NOTIFICATION.c
    with engine.begin() as conn:
        conn.execute(
            update(NOTIFICATION)
            .where(n.id == notification_id, n.status == "sending")
            .values(**values)
        )


def message_id(notification_id: str, domain: str) -> str:
    return f"<{notification_id}@{domain}>"


async def send_pending(
    engine: Engine,
    mailer: Mailer,
    *,
    clock: Callable[[], datetime],
    domain: str = "localhost",
    renderer: MailRenderer | None = None,
    batch: int = 20,
    limit: int = 1_000,
    max_attempts: int = 8,
    timeout: float = 10.0,
    unreachable_delay: timedelta = timedelta(seconds=30),
) -> SendResult:
    """Send due notifications until none is due, `limit` is reached, or the server is down."""
    renderer = renderer or MailRenderer()
    result = SendResult()
    # A lease outlives the slowest batch, so only a crashed sender's rows are taken over.
    lease = timedelta(seconds=batch * timeout * 2 + 60)
    while result.sent + result.retried + result.dead < limit:
        now = clock()
        rows = await asyncio.to_thread(claim_notifications, engine, now, batch, lease)
        if not rows:
            break
        for i, row in enumerate(rows):
            outcome = await _send_one(mailer, renderer, row, domain)
            now = clock()
            if outcome.delivery is Delivery.SENT:
                await asyncio.to_thread(
                    _settle,
                    engine,
                    row["id"],
                    status="sent",
                    sent_at=now,
                    attempts=row["attempts"] + 1,
                    last_error=None,
                )
                result.sent += 1
                continue
            result.errors.append(outcome.detail)
            if outcome.delivery is Delivery.UNREACHABLE:
                # The server is down: this and the rest of the batch wait, no attempt counted.
                for rest in rows[i:]:
                    await asyncio.to_thread(
                        _settle,
                        engine,
                        rest["id"],
                        status="pending",
                        available_at=now + unreachable_delay,
                        last_error=outcome.detail if rest is row else rest["last_error"],
                    )
                result.waiting += len(rows) - i
                result.unreachable = True
                return result
            attempts = row["attempts"] + 1
            if outcome.delivery is Delivery.REFUSED or attempts >= max_attempts:
                await asyncio.to_thread(
                    _settle,
                    engine,
                    row["id"],
                    status="dead",
                    attempts=attempts,
                    available_at=now,
                    last_error=outcome.detail,
                )
                result.dead += 1
            else:
                delay = min(timedelta(seconds=30) * 2 ** (attempts - 1), timedelta(hours=1))
                await asyncio.to_thread(
                    _settle,
                    engine,
                    row["id"],
                    status="pending",
                    attempts=attempts,
                    available_at=now + delay,
                    last_error=outcome.detail,
                )
                result.retried += 1
    return result


async def _send_one(
    mailer: Mailer, renderer: MailRenderer, row: dict[str, Any], domain: str
) -> Outcome:
    try:
        rendered = renderer.render(row["template"], row["lang"], dict(row["context"] or {}))
    except jinja2.TemplateError as exc:
        # A broken template will not mend itself: park the row for an administrator.
        log.error("notification %s: template %s failed", row["id"], row["template"])
        return Outcome(Delivery.REFUSED, error_text(exc))
    mail = OutgoingMail(
        to=row["address"],
        subject=rendered.subject,
        text=rendered.text,
        message_id=message_id(row["id"], domain),
        headers=(("X-Welfare-Notification", row["id"]),),
    )
    return await mailer.send(mail)


async def send_with_smtp(
    engine: Engine,
    smtp: SmtpSettings,
    *,
    clock: Callable[[], datetime],
    limit: int = 1_000,
    max_attempts: int = 8,
) -> SendResult:
    """`send_pending` over one SMTP connection built from the settings."""
    async with SmtpMailer(smtp) as mailer:
        return await send_pending(
            engine,
            mailer,
            clock=clock,
            domain=smtp.sender_domain,
            limit=limit,
            max_attempts=max_attempts,
            timeout=smtp.timeout,
        )


@dataclass(frozen=True)
class NotificationView:
    id: str
    event_id: str
    case_id: str | None
    address: str
    template: str
    status: str
    attempts: int
    last_error: str | None


def notifications(
    engine: Engine, *, status: str | None = None, limit: int = 100
) -> list[NotificationView]:
    """Notification rows for administrators (dead ones first of interest)."""
    n = NOTIFICATION.c
    q = select(
        n.id, n.event_id, n.case_id, n.address, n.template, n.status, n.attempts, n.last_error
    ).order_by(n.created_at, n.id)
    if status is not None:
        q = q.where(n.status == status)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return [NotificationView(*r) for r in conn.execute(q.limit(limit))]
