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
  Batch consumers (`BatchConsumer`: screening and notifications) hand that record (`Consumed`:
  the consumed row and the effect's rows) to the relay instead, which writes it with the ack.
* **ack** — `processed`, in one transaction per batch together with the batch consumers'
  records: a batch costs one commit, not one an event. Should that transaction fail (a
  duplicate from a relay whose lease expired, a refused row), each event's record is written
  in a transaction of its own (`consume_once`: a duplicate is skipped), and an event whose
  record cannot be written fails alone. A failed event goes back to `pending` with
  `attempts + 1` and an exponential back-off; after `max_attempts` the row is `dead` and waits
  for an administrator (`dead_events`, `retry_dead`, CLI `welfare outbox dead|retry`).

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
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sqlalchemy import Engine, Table, and_, bindparam, func, insert, or_, select, update
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


@dataclass(frozen=True)
class Consumed:
    """What a consumer did with one event, for the relay to write with the batch's acks: the
    `consumed_event` row, and the rows its effect adds to `table` (none: `rows` empty)."""

    consumer: str
    event_id: str
    seq: int
    at: datetime
    table: Table | None = None
    rows: tuple[dict[str, Any], ...] = ()

    def effect(self, conn: Connection) -> None:
        if self.table is not None and self.rows:
            conn.execute(insert(self.table), list(self.rows))


@runtime_checkable
class BatchConsumer(Consumer, Protocol):
    """A consumer whose records the relay writes per batch (one commit a batch, not an event).

    Between `begin_batch` and `end_batch`, `handle` reads what it needs (the batch's consumed
    events in one query, not one an event) and returns its record instead of committing it;
    `end_batch` hands the records over. Outside a batch, `handle` commits as a `Consumer` does.
    A batch consumer belongs to one relay: its batch state is not shared between threads.
    """

    def begin_batch(self, events: Sequence[OutboxEvent]) -> None: ...

    def end_batch(self) -> list[Consumed]: ...


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


def consumed_among(engine: Engine, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """The events among `event_ids` that `consumer` has consumed already (one query a 500)."""
    out: set[str] = set()
    if not event_ids:
        return out
    c = CONSUMED.c
    with engine.connect().execution_options(**READ_ONLY) as conn:
        for i in range(0, len(event_ids), 500):
            chunk = list(event_ids[i : i + 500])
            out.update(
                r[0]
                for r in conn.execute(
                    select(c.event_id).where(c.consumer == consumer, c.event_id.in_(chunk))
                )
            )
    return out


def write_consumed(conn: Connection, records: Sequence[Consumed]) -> None:
    """Every record's consumed row, then its effect rows: a few multi-row statements.

    The consumed rows go first, as in `consume_once`: a duplicate fails on their key before
    any effect is written.
    """
    if not records:
        return
    conn.execute(
        insert(CONSUMED),
        [{"consumer": r.consumer, "event_id": r.event_id, "at": r.at} for r in records],
    )
    by_table: dict[Table, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r.table is not None:
            by_table[r.table].extend(r.rows)
    for table, rows in by_table.items():
        if rows:
            conn.execute(insert(table), rows)


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
        ordered = sorted(events, key=lambda e: e.seq)
        batched = self._begin_batch(ordered)
        failed_cases: set[str] = set()
        # Acks and the batch consumers' records are written together at the end of the batch
        # (one transaction, not one an event: per-event commits were most of the relay's
        # time). A crash before then re-delivers the batch's events with nothing of theirs
        # recorded: they are handled again (screening finds its cases screened by state).
        done: list[OutboxEvent] = []
        try:
            for ev in ordered:
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
                done.append(ev)
                result.processed += 1
        finally:
            records = [r for bc in batched for r in bc.end_batch()]
            for dead in self._settle(done, records):
                result.processed -= 1
                if dead:
                    result.dead += 1
                else:
                    result.retried += 1
        return result

    def _begin_batch(self, events: Sequence[OutboxEvent]) -> list[BatchConsumer]:
        """The batch consumers that could read their batch state; the others (and any whose
        reads failed) handle each event on its own, committing it themselves."""
        started: list[BatchConsumer] = []
        for consumer in self.consumers:
            if not isinstance(consumer, BatchConsumer):
                continue
            try:
                consumer.begin_batch([e for e in events if consumer.wants(e)])
            except Exception as exc:
                log.warning("consumer %s: batch reads failed: %s", consumer.name, error_text(exc))
                continue
            started.append(consumer)
        return started

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

    def _settle(self, done: Sequence[OutboxEvent], records: Sequence[Consumed]) -> list[bool]:
        """Write the batch's records and acks in one transaction; per event if that fails.

        Returns, for each handled event whose record could not be written (it is scheduled
        for a retry, or dead), whether it is dead now.
        """
        try:
            with self.engine.begin() as conn:
                write_consumed(conn, records)
                self._ack_in(conn, [e.seq for e in done])
            return []
        except Exception as exc:
            if not records:
                raise
            # Another relay recorded one of these events after our lease expired (a duplicate
            # key), or one event's rows are refused: find out event by event.
            log.warning("relay batch write failed (%s); writing event by event", type(exc).__name__)
        by_seq: dict[int, list[Consumed]] = defaultdict(list)
        for r in records:
            by_seq[r.seq].append(r)
        acked: list[int] = []
        outcome: list[bool] = []
        for ev in done:
            try:
                for r in by_seq.pop(ev.seq, []):
                    consume_once(self.engine, r.consumer, r.event_id, r.at, r.effect)
            except Exception as err:
                outcome.append(self._fail(ev, err))
                continue
            acked.append(ev.seq)
        for rest in by_seq.values():  # records of events that failed in a later consumer
            for r in rest:
                try:
                    consume_once(self.engine, r.consumer, r.event_id, r.at, r.effect)
                except Exception as err:  # the event is retried anyway; this consumer with it
                    log.warning(
                        "outbox event %s: record of %s not written: %s",
                        r.event_id,
                        r.consumer,
                        type(err).__name__,
                    )
        self._ack(acked)
        return outcome

    def _ack(self, seqs: Sequence[int]) -> None:
        """Mark handled events processed, those this relay still holds (see `_mine`)."""
        if not seqs:
            return
        with self.engine.begin() as conn:
            self._ack_in(conn, seqs)

    def _ack_in(self, conn: Connection, seqs: Sequence[int]) -> None:
        o = OUTBOX.c
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
        self._batch: _ScreeningBatch | None = None

    def wants(self, event: OutboxEvent) -> bool:
        return event.type == "case.submitted" and event.case_id is not None

    def begin_batch(self, events: Sequence[OutboxEvent]) -> None:
        ids = [e.case_id for e in events if e.case_id is not None]
        self._batch = _ScreeningBatch(
            consumed=consumed_among(self.engine, self.name, [e.id for e in events]),
            # Read once for the batch: a case screened meanwhile makes `screen` refuse with
            # transition_not_allowed (ignored below), and none enters screening again.
            waiting=set(case_in_screening(self.engine, ids)),
        )

    def end_batch(self) -> list[Consumed]:
        batch, self._batch = self._batch, None
        return batch.records if batch is not None else []

    def handle(self, event: OutboxEvent) -> None:
        assert event.case_id is not None
        batch = self._batch
        if batch is not None:
            if event.id in batch.consumed:
                return
            waiting = event.case_id in batch.waiting
        else:
            with self.engine.connect().execution_options(**READ_ONLY) as conn:
                if consumed(conn, self.name, event.id):
                    return
                waiting = bool(_in_screening(conn, [event.case_id]))
        if waiting:
            try:
                self.screen(event.case_id)
            except Conflict as err:
                # Screened meanwhile (by the policy flow): the command is idempotent by state.
                if err.message_key != "transition_not_allowed":
                    raise
        if batch is not None:
            batch.records.append(Consumed(self.name, event.id, event.seq, self.clock()))
        else:
            consume_once(self.engine, self.name, event.id, self.clock())


@dataclass
class _ScreeningBatch:
    consumed: set[str]
    waiting: set[str]
    records: list[Consumed] = field(default_factory=list)


def case_in_screening(engine: Engine, case_ids: Sequence[str]) -> list[str]:
    """The cases among `case_ids` still waiting for their automatic step."""
    if not case_ids:
        return []
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return _in_screening(conn, case_ids)


def _in_screening(conn: Connection, case_ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    for i in range(0, len(case_ids), 500):  # bounded IN lists (a Tết list has 10,000 cases)
        chunk = list(case_ids[i : i + 500])
        out.extend(
            r[0]
            for r in conn.execute(
                select(CASE.c.id).where(CASE.c.id.in_(chunk), CASE.c.status == "screening")
            )
        )
    return out


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
