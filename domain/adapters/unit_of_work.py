"""One command, one transaction: aggregates, audit entries and outbox events commit together.

Audit entries are sealed at commit time under the chain-head lock, so their sequence has no
gaps and no forks however many commands run at once.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from domain.adapters.repository import Repository
from domain.audit import AuditEntry, seal
from domain.errors import Conflict, DomainError
from domain.events import Event
from domain.model import AuditIntent, CaseAggregate

AUDIT_CHUNK = 500
"""Audit entries sealed and inserted, and outbox rows inserted, per batch at commit."""

_ALSO_AT_COMMIT: ContextVar[tuple[Callable[[Connection], None], ...]] = ContextVar(
    "welfare_also_at_commit", default=()
)


@contextmanager
def also_in_each_commit(write: Callable[[Connection], None]) -> Iterator[None]:
    """Within this block, every unit of work that commits runs `write` in its own transaction
    first: what must commit with a command or not at all (an idempotency key's "ran" mark)."""
    token = _ALSO_AT_COMMIT.set((*_ALSO_AT_COMMIT.get(), write))
    try:
        yield
    finally:
        _ALSO_AT_COMMIT.reset(token)


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._audit: list[AuditIntent] = []
        self._events: list[Event] = []
        self._at_commit: list[CaseAggregate] = []
        self._many_at_commit: list[CaseAggregate] = []
        self.committed: list[AuditEntry] = []

    def __enter__(self) -> "UnitOfWork":
        self.conn: Connection = self.engine.connect()
        self.tx = self.conn.begin()
        self.repo = Repository(self.conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.tx.is_active:
                self.tx.rollback()
        finally:
            self.conn.close()
        if isinstance(exc, IntegrityError):
            # A unique key or check constraint caught a race the checks could not see.
            raise Conflict("conflict") from exc
        if isinstance(exc, OperationalError) and "deadlock" in str(exc).lower():
            raise Conflict("conflict") from exc

    def save(self, agg: CaseAggregate) -> None:
        self.repo.save(agg)
        self._take_records(agg)

    def _take_records(self, agg: CaseAggregate) -> None:
        """Move the aggregate's audit intents and events to this unit of work, in order."""
        self._audit.extend(agg.audit)
        self._events.extend(agg.events)
        agg.audit.clear()
        agg.events.clear()

    def save_at_commit(self, agg: CaseAggregate) -> None:
        """`save`, but the rows are written by `commit`, with the audit head lock in the same
        round trip on PostgreSQL. For a command that reads nothing after saving; a failed
        version or budget check then surfaces from `commit`.
        """
        self._at_commit.append(agg)
        self._take_records(agg)

    def save_many(self, aggs: Sequence[CaseAggregate]) -> None:
        """Save several aggregates in batched statements; audit and events keep their order.

        On PostgreSQL the rows are written by `commit`, after the audit head is locked and
        without waiting for them: the server updates the rows while the entries are sealed
        (the SLA sweep's batches; nothing is read after saving). A failed version check then
        surfaces from `commit`, before the COMMIT is sent.
        """
        if self.repo.postgres:
            self._many_at_commit.extend(aggs)
        else:
            self.repo.save_many(aggs)
        for agg in aggs:
            self._take_records(agg)

    def record(self, audit: Sequence[AuditIntent] = (), events: Sequence[Event] = ()) -> None:
        self._audit.extend(audit)
        self._events.extend(events)

    def write_events(self, now: datetime) -> None:
        """Insert the outbox rows of the events queued so far, now, in this transaction.

        For a long command (a campaign list) that would otherwise hold every event until
        commit: outbox rows need no lock and no sequence, unlike audit entries, whose
        sealing waits for commit and the audit-head lock. Their rows are the ones `commit`
        would write (`available_at` is the `now` given, as there), and they commit or roll
        back with the rest of the transaction.
        """
        events, self._events = self._events, []
        for start in range(0, len(events), AUDIT_CHUNK):
            self.repo.add_outbox(events[start : start + AUDIT_CHUNK], now)

    def commit(self, now: datetime) -> list[AuditEntry]:
        """Write what `save_at_commit` and `save_many` deferred, seal the audit entries, write
        them and the outbox events, and commit.

        Returns the sealed entries of a small commit (≤ AUDIT_CHUNK; a dossier reads its one
        entry back). A big one — a campaign list — returns [] rather than hold them all.
        """
        seq, head = 0, ""
        for write in _ALSO_AT_COMMIT.get():
            write(self.conn)
        many, self._many_at_commit = self._many_at_commit, []
        # The deferred aggregates' writes and the head lock in one round trip; their checks
        # are tested when this batch ends, before anything is sealed or committed.
        with self.repo.x.batch():
            for agg in self._at_commit:
                self.repo.save(agg)
            if self._audit:
                seq, head = self.repo.lock_audit_head()
            if many:
                # Sent after the head's answer and not waited for: the server writes the
                # batch's rows while the entries are sealed and sent behind them. The version
                # checks are tested when this batch ends, so the COMMIT goes after it.
                self.repo.save_many(many)
                self._write_records(seq, head, now, commit=False)
        self._at_commit.clear()
        if many:
            self.tx.commit()
        else:
            self._write_records(seq, head, now, commit=True)
        return self.committed

    def _write_records(self, seq: int, head: str, now: datetime, *, commit: bool) -> None:
        """Seal the audit entries after `seq`/`head`, write them and the outbox events, and
        (if `commit`) COMMIT in the same batch."""
        keep = len(self._audit) <= AUDIT_CHUNK
        # Taken out and consumed as they are written, AUDIT_CHUNK at a time: a 10,000-member
        # list's intents, sealed entries and INSERT rows are never all held at once (≈ 17 kB
        # a member at the commit's peak before, the API worker's largest allocation).
        intents, self._audit = self._audit, []
        events, self._events = self._events, []
        intents.reverse()  # popped from the end, in order
        # The entries, the events and the COMMIT go in one round trip on PostgreSQL (a batch
        # with no row-count checks, so nothing is left to test after the commit: a statement
        # that fails aborts the COMMIT behind it). Inside the batch of `commit` with deferred
        # `save_many` rows, it joins that batch, no COMMIT.
        with self.repo.x.batch():
            while intents:
                chunk: list[AuditEntry] = []
                for _ in range(min(AUDIT_CHUNK, len(intents))):
                    intent = intents.pop()
                    seq += 1
                    entry = seal(
                        seq=seq,
                        prev_hash=head,
                        at=now,
                        actor_id=intent.actor_id,
                        actor_role=intent.actor_role,
                        org_unit_id=intent.org_unit_id,
                        action=intent.action,
                        entity_type=intent.entity_type,
                        entity_id=intent.entity_id,
                        policy=intent.policy,
                        policy_version=intent.policy_version,
                        payload=intent.payload,
                    )
                    chunk.append(entry)
                    head = entry.entry_hash
                self.repo.append_audit(chunk)
                if keep:
                    self.committed = chunk
            for start in range(0, len(events), AUDIT_CHUNK):
                self.repo.add_outbox(events[start : start + AUDIT_CHUNK], now)
            if commit:
                self.repo.x.queue_commit()
        if commit:
            self.tx.commit()  # sends nothing if the COMMIT went with the batch


__all__ = ["DomainError", "UnitOfWork"]
