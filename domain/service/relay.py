"""The outbox relay: domain events, written in each command's transaction, handed to consumers.

Delivery is at least once, effects at most once:

* **claim** — in one short transaction, take a batch of due rows in `seq` order (`FOR UPDATE
  SKIP LOCKED` on PostgreSQL, so several relays run side by side on disjoint rows; SQLite
  writers queue on `BEGIN IMMEDIATE`) and lease them (`status="claimed"`, `claimed_by`,
  `lease_until`). A crashed relay's lease expires and the rows return to the pool.
* **process** — outside that transaction (the consumers send service commands, which need
  the SQLite write lock themselves), each event goes to every consumer that wants it. A
  consumer records `(consumer, event id)` in `consumed_event` in the transaction of its
  effect, so a replayed event changes nothing.
* **ack** — `processed`; or, on failure, back to `pending` with `attempts + 1` and an
  exponential back-off; after `max_attempts` the row is `dead` and waits for an administrator
  (`dead_events`, `retry_dead`, CLI `welfare outbox dead|retry`).

Per-case order: a case's events are handled in `seq` order. A row is claimed only when every
earlier unfinished (pending or claimed) event of its case is claimed in the same batch; when
one of them fails, the later ones of that case are released untouched and wait for it.

A dead event does not block anything: neither other cases nor the later events of its own
case (the built-in consumers do not depend on order for correctness — screening checks the
case's state, notifications describe the state at their event's time), so one poisoned event
cannot stall a case's mail for good. Retrying a dead event handles it late, out of order.
"""

import logging
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from domain.adapters import tables as t
from domain.adapters.db import READ_ONLY
from domain.adapters.repository import CASE, OUTBOX
from domain.errors import Conflict

if TYPE_CHECKING:
    from domain.config import Settings
    from domain.service.welfare import WelfareService

log = logging.getLogger(__name__)

CONSUMED = t.ConsumedEventRow.__table__  # type: ignore[attr-defined]

# Built once with bind parameters: per event, building a statement (and its cache key) cost
# more than running it.
_SEL_CONSUMED = select(CONSUMED.c.event_id).where(
    CONSUMED.c.consumer == bindparam("b_consumer"), CONSUMED.c.event_id == bindparam("b_event")
)
_INS_CONSUMED = insert(CONSUMED).values(
    consumer=bindparam("b_consumer"), event_id=bindparam("b_event"), at=bindparam("b_at")
)

PENDING, CLAIMED, PROCESSED, DEAD = "pending", "claimed", "processed", "dead"


@dataclass(frozen=True)
class OutboxEvent:
    """One outbox row as consumers see it: ids and small values only, never personal data."""

    seq: int
    id: str
    type: str
    case_id: str | None
    occurred_at: datetime
    data: dict[str, Any]
    attempts: int


class Consumer(Protocol):
    """Something done once per event. `handle` must be idempotent by event id."""

    name: str

    def wants(self, event: OutboxEvent) -> bool: ...

    def handle(self, event: OutboxEvent) -> None: ...


@dataclass
class RelayResult:
    claimed: int = 0
    processed: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0

    def __iadd__(self, other: "RelayResult") -> "RelayResult":
        self.claimed += other.claimed
        self.processed += other.processed
        self.retried += other.retried
        self.dead += other.dead
        self.deferred += other.deferred
        return self


def _event(r: Any) -> OutboxEvent:
    return OutboxEvent(
        seq=int(r["seq"]),
        id=r["id"],
        type=r["type"],
        case_id=r["case_id"],
        occurred_at=r["occurred_at"],
        data=dict(r["data"] or {}),
        attempts=int(r["attempts"]),
    )


def error_text(exc: BaseException) -> str:
    """A short error description for `last_error`, without the SQL parameters an error may quote."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).split("\n[SQL:", 1)[0].strip()
    return f"{type(exc).__name__}: {text}"[:500]


# --- consumed events -----------------------------------------------------------------------


def is_consumed(engine: Engine, consumer: str, event_id: str) -> bool:
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return consumed(conn, consumer, event_id)


def consumed(conn: Connection, consumer: str, event_id: str) -> bool:
    row = conn.execute(_SEL_CONSUMED, {"b_consumer": consumer, "b_event": event_id}).first()
    return row is not None


def consume_once(
    engine: Engine,
    consumer: str,
    event_id: str,
    now: datetime,
    effect: Callable[[Connection], None] = lambda _conn: None,
) -> bool:
    """Apply `effect` and record the event as consumed, in one transaction; False if done before.

    The consumed row goes in first: a concurrent duplicate then waits on its key (PostgreSQL)
    or on the write lock (SQLite) and fails on the primary key instead of applying twice.
    """
    try:
        with engine.begin() as conn:
            conn.execute(_INS_CONSUMED, {"b_consumer": consumer, "b_event": event_id, "b_at": now})
            effect(conn)
    except IntegrityError:
        if is_consumed(engine, consumer, event_id):
            return False
        raise
    return True


# --- the relay -----------------------------------------------------------------------------


def default_worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{uuid.uuid4().hex[:8]}"


class Relay:
    def __init__(
        self,
        engine: Engine,
        consumers: Sequence[Consumer],
        *,
        clock: Callable[[], datetime],
        batch_size: int = 500,
        max_attempts: int = 8,
        lease: timedelta = timedelta(minutes=5),
        backoff: timedelta = timedelta(seconds=10),
        max_backoff: timedelta = timedelta(hours=1),
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.consumers = list(consumers)
        self.clock = clock
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.lease = lease
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.worker_id = worker_id or default_worker_id()
        self.postgres = engine.dialect.name == "postgresql"

    def retry_delay(self, attempts: int) -> timedelta:
        """10 s, 20 s, 40 s, … capped at an hour."""
        delay: timedelta = self.backoff * (2 ** max(attempts - 1, 0))
        return min(delay, self.max_backoff)

    # --- claim ---

    def claim(self, now: datetime | None = None) -> list[OutboxEvent]:
        """Lease a batch of due events, respecting per-case order; [] when nothing is due."""
        now = now or self.clock()
        o = OUTBOX.c
        due = or_(
            and_(o.status == PENDING, o.available_at <= now),
            and_(o.status == CLAIMED, o.lease_until < now),
        )
        with self.engine.begin() as conn:
            q = select(OUTBOX).where(due).order_by(o.seq).limit(self.batch_size)
            if self.postgres:
                q = q.with_for_update(skip_locked=True)
            rows = list(conn.execute(q).mappings())
            if not rows:
                return []
            # A lease that expired max_attempts times means the event kills its relay.
            worn = [
                r["seq"]
                for r in rows
                if r["status"] == CLAIMED and r["attempts"] >= self.max_attempts
            ]
            if worn:
                conn.execute(
                    update(OUTBOX)
                    .where(o.seq.in_(worn))
                    .values(
                        status=DEAD,
                        claimed_by=None,
                        lease_until=None,
                        last_error="lease expired: the relay handling it stopped",
                    )
                )
            taken = {int(r["seq"]) for r in rows if r["seq"] not in worn}
            blocked = self._first_unfinished_elsewhere(conn, rows, taken)
            chosen = [
                r
                for r in rows
                if r["seq"] in taken
                and (r["case_id"] is None or r["seq"] < blocked.get(r["case_id"], r["seq"] + 1))
            ]
            if not chosen:
                return []
            conn.execute(
                update(OUTBOX)
                .where(o.seq.in_([r["seq"] for r in chosen]))
                .values(
                    status=CLAIMED,
                    claimed_by=self.worker_id,
                    lease_until=now + self.lease,
                    attempts=o.attempts + 1,
                )
            )
        return [_event({**r, "attempts": r["attempts"] + 1, "data": r["data"]}) for r in chosen]

    def _first_unfinished_elsewhere(
        self, conn: Connection, rows: Sequence[Any], taken: set[int]
    ) -> dict[str, int]:
        """Per case, the lowest seq of an unfinished event this claim does not hold.

        Events waiting for a retry, leased by another relay, or locked by one claiming now
        (SKIP LOCKED hid them from us) all count: nothing of that case after them may run.
        """
        case_ids = sorted({r["case_id"] for r in rows if r["case_id"] is not None})
        if not case_ids:
            return {}
        top = max(taken) if taken else 0
        o = OUTBOX.c
        out: dict[str, int] = {}
        for i in range(0, len(case_ids), 500):
            chunk = case_ids[i : i + 500]
            for case_id, seq in conn.execute(
                select(o.case_id, o.seq).where(
                    o.case_id.in_(chunk), o.status.in_((PENDING, CLAIMED)), o.seq < top
                )
            ):
                if seq not in taken and seq < out.get(case_id, seq + 1):
                    out[case_id] = int(seq)
        return out

    # --- process ---

    def process(self, events: Iterable[OutboxEvent]) -> RelayResult:
        result = RelayResult()
        failed_cases: set[str] = set()
        # Acks are written together at the end of the batch (one statement, not one
        # transaction an event: that was a third of the relay's time). A crash before then
        # re-delivers the batch's handled events, which the consumers ignore by event id.
        done: list[int] = []
        try:
            for ev in sorted(events, key=lambda e: e.seq):
                result.claimed += 1
                if ev.case_id is not None and ev.case_id in failed_cases:
                    self._release(ev)
                    result.deferred += 1
                    continue
                try:
                    for consumer in self.consumers:
                        if consumer.wants(ev):
                            consumer.handle(ev)
                except Exception as exc:
                    # The relay is the place where failures become retries and dead letters.
                    if ev.case_id is not None:
                        failed_cases.add(ev.case_id)
                    if self._fail(ev, exc):
                        result.dead += 1
                    else:
                        result.retried += 1
                    continue
                done.append(ev.seq)
                result.processed += 1
        finally:
            self._ack(done)
        return result

    def run_once(self) -> RelayResult:
        return self.process(self.claim())

    def drain(self, max_batches: int = 1_000) -> RelayResult:
        """Handle batches until nothing is due (events that consumers produce included)."""
        total = RelayResult()
        for _ in range(max_batches):
            events = self.claim()
            if not events:
                break
            total += self.process(events)
        return total

    # --- ack, retry, dead ---

    def _mine(self, ev: OutboxEvent) -> Any:
        # Only the lease holder may settle a row: after an expired lease another relay owns it.
        return and_(OUTBOX.c.seq == ev.seq, OUTBOX.c.claimed_by == self.worker_id)

    def _ack(self, seqs: Sequence[int]) -> None:
        """Mark handled events processed, those this relay still holds (see `_mine`)."""
        if not seqs:
            return
        o = OUTBOX.c
        with self.engine.begin() as conn:
            for i in range(0, len(seqs), 500):
                conn.execute(
                    update(OUTBOX)
                    .where(o.seq.in_(seqs[i : i + 500]), o.claimed_by == self.worker_id)
                    .values(status=PROCESSED, processed_at=self.clock(), lease_until=None)
                )

    def _release(self, ev: OutboxEvent) -> None:
        """Back to the pool untouched (an earlier event of its case failed in this batch)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(self._mine(ev))
                .values(
                    status=PENDING,
                    claimed_by=None,
                    lease_until=None,
                    attempts=OUTBOX.c.attempts - 1,
                )
            )

    def _fail(self, ev: OutboxEvent, exc: BaseException) -> bool:
        """Schedule a retry, or park the event as dead; True when it is dead now."""
        now = self.clock()
        dead = ev.attempts >= self.max_attempts
        log.warning(
            "outbox event %s (%s) failed, attempt %d/%d: %s",
            ev.id,
            ev.type,
            ev.attempts,
            self.max_attempts,
            type(exc).__name__,
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(self._mine(ev))
                .values(
                    status=DEAD if dead else PENDING,
                    available_at=now if dead else now + self.retry_delay(ev.attempts),
                    claimed_by=None,
                    lease_until=None,
                    last_error=error_text(exc),
                )
            )
        return dead


# --- administration: dead letters and counts ------------------------------------------------


@dataclass(frozen=True)
class DeadEvent:
    seq: int
    id: str
    type: str
    case_id: str | None
    occurred_at: datetime
    attempts: int
    last_error: str | None


def dead_events(engine: Engine, limit: int = 100, offset: int = 0) -> list[DeadEvent]:
    """Events that failed `max_attempts` times, oldest first — for administrators."""
    o = OUTBOX.c
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(
            select(o.seq, o.id, o.type, o.case_id, o.occurred_at, o.attempts, o.last_error)
            .where(o.status == DEAD)
            .order_by(o.seq)
            .limit(limit)
            .offset(offset)
        ).all()
    return [DeadEvent(*r) for r in rows]


def retry_dead(engine: Engine, event_id: str, now: datetime) -> bool:
    """Give a dead event a fresh set of attempts; False when no dead event has that id."""
    o = OUTBOX.c
    with engine.begin() as conn:
        res = conn.execute(
            update(OUTBOX)
            .where(o.id == event_id, o.status == DEAD)
            .values(status=PENDING, attempts=0, available_at=now)
        )
        return bool(res.rowcount == 1)


def outbox_counts(engine: Engine) -> dict[str, int]:
    """Rows per status (pending, claimed, processed, dead)."""
    o = OUTBOX.c
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(select(o.status, func.count()).group_by(o.status)).all()
    return {str(s): int(n) for s, n in rows}


# --- the screening consumer ------------------------------------------------------------------


class ScreeningConsumer:
    """`case.submitted` → the policy's automatic step, unless it already ran.

    With WELFARE_SCREENING=inline the submit command screened the case itself, and with the
    Prefect relay the policy flow has usually screened it just before: then this records the
    event as consumed and does nothing else. A case still in screening is screened here.
    """

    name = "screening"

    def __init__(
        self,
        engine: Engine,
        screen: Callable[[str], None],
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.screen = screen
        self.clock = clock

    def wants(self, event: OutboxEvent) -> bool:
        return event.type == "case.submitted" and event.case_id is not None

    def handle(self, event: OutboxEvent) -> None:
        assert event.case_id is not None
        with self.engine.connect().execution_options(**READ_ONLY) as conn:
            if consumed(conn, self.name, event.id):
                return
            waiting = _in_screening(conn, [event.case_id])
        if waiting:
            try:
                self.screen(event.case_id)
            except Conflict as err:
                # Screened meanwhile (by the policy flow): the command is idempotent by state.
                if err.message_key != "transition_not_allowed":
                    raise
        consume_once(self.engine, self.name, event.id, self.clock())


def case_in_screening(engine: Engine, case_ids: Sequence[str]) -> list[str]:
    """The cases among `case_ids` still waiting for their automatic step."""
    if not case_ids:
        return []
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return _in_screening(conn, case_ids)


def _in_screening(conn: Connection, case_ids: Sequence[str]) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            select(CASE.c.id).where(CASE.c.id.in_(list(case_ids)), CASE.c.status == "screening")
        )
    ]


# --- wiring ------------------------------------------------------------------------------------


def build_relay(
    service: "WelfareService",
    settings: "Settings",
    *,
    extra: Sequence[Consumer] = (),
    worker_id: str | None = None,
) -> Relay:
    """The relay with the product's consumers: screening, then notifications, then `extra`."""
    from domain.service.notifications import NotifyConsumer

    consumers: list[Consumer] = [
        ScreeningConsumer(service.engine, service.screen, service.clock),
        NotifyConsumer(
            service.engine,
            service.definitions,
            clock=service.clock,
            base_url=settings.base_url(),
        ),
        *extra,
    ]
    return Relay(
        service.engine,
        consumers,
        clock=service.clock,
        batch_size=settings.relay_batch_size,
        max_attempts=settings.relay_max_attempts,
        worker_id=worker_id,
    )
