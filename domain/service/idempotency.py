"""Idempotency keys for writes: a retried request gets the first answer and changes nothing.

Usage (the API's `api/idempotency.py` wraps this; other entry points may use it directly):

    store = IdempotencyStore(engine, clock)
    outcome = store.begin(account_id, key, scope="POST /api/v1/cases", request_hash=h)
    if isinstance(outcome, StoredAnswer):
        ... replay outcome.status_code / outcome.body ...
    else:                      # Reserved: this request runs the command
        try: run the command
        then store.finish(account_id, key, status, body)   # a final answer: kept for replay
          or store.abandon(account_id, key)                # not final (409, 429, 5xx): retry may run

`begin` refuses with InvalidRequest `idempotency_key_reused` (422) when the key was used for a
different request, and with Conflict `idempotency_in_progress` (409) while the first request
with the key is still running (a placeholder row with status 0). A placeholder older than
`stale_after` (a process died mid-request) is taken over, so a key is never stuck for good.

Which answers are kept: 2xx, and refusals that the same request would get again
(400, 413, 415, 422). Not kept: 401/403/404 (they change when roles or data change),
409 and 429 (retrying later is the point), 5xx.

The command commits in its own transaction and the answer is stored right after, in another.
So that a process dying between the two cannot let a retry run the command twice, the command
runs inside `store.marking(account_id, key)`: its transaction also marks the placeholder as
"ran" (status -1), committed with the command or not at all. A retry then meets that mark and
is refused with Conflict `idempotency_outcome_lost` (409): the command happened, its answer is
gone, the client looks the result up. A placeholder without the mark means the command never
committed, so after `stale_after` a retry takes the key over and runs it.
"""

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from domain.adapters import tables as t
from domain.adapters.repository import _t
from domain.adapters.unit_of_work import also_in_each_commit
from domain.errors import Conflict, InvalidRequest

IDEMPOTENCY = _t(t.IdempotencyRow)
IN_PROGRESS = 0
RAN = -1
"""The command committed; its answer was not stored (yet, or ever: a crash in between)."""
FINAL_REFUSALS = frozenset({400, 413, 415, 422})


def request_hash(payload: object) -> str:
    """SHA-256 of the canonical JSON of what identifies a request (path and body)."""
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_final(status_code: int) -> bool:
    return 200 <= status_code < 300 or status_code in FINAL_REFUSALS


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: str


@dataclass(frozen=True)
class Reserved:
    pass


class IdempotencyStore:
    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        stale_after: timedelta = timedelta(minutes=5),
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.stale_after = stale_after

    def begin(
        self, account_id: str, key: str, *, scope: str, request_hash: str
    ) -> StoredAnswer | Reserved:
        now = self.clock()
        c = IDEMPOTENCY.c
        where = (c.account_id == account_id) & (c.key == key)
        try:
            with self.engine.begin() as conn:
                q = select(IDEMPOTENCY).where(where)
                if conn.dialect.name == "postgresql":
                    q = q.with_for_update()
                row = conn.execute(q).mappings().first()
                if row is None:
                    conn.execute(
                        insert(IDEMPOTENCY).values(
                            account_id=account_id,
                            key=key,
                            scope=scope[:200],
                            request_hash=request_hash,
                            status_code=IN_PROGRESS,
                            response_body="",
                            created_at=now,
                        )
                    )
                    return Reserved()
                if row["scope"] != scope[:200] or row["request_hash"] != request_hash:
                    raise InvalidRequest("idempotency_key_reused", field="Idempotency-Key")
                if row["status_code"] == RAN:
                    raise Conflict("idempotency_outcome_lost", field="Idempotency-Key")
                if row["status_code"] != IN_PROGRESS:
                    return StoredAnswer(int(row["status_code"]), str(row["response_body"]))
                if now - row["created_at"] < self.stale_after:
                    raise Conflict("idempotency_in_progress", field="Idempotency-Key")
                # The first attempt died mid-request: this one takes the key over.
                conn.execute(update(IDEMPOTENCY).where(where).values(created_at=now))
                return Reserved()
        except IntegrityError:
            # A concurrent request inserted the same key first (PostgreSQL); it is running.
            raise Conflict("idempotency_in_progress", field="Idempotency-Key") from None

    def marking(self, account_id: str, key: str) -> AbstractContextManager[None]:
        """A block whose commands, as they commit, mark the key's placeholder as "ran" in
        their own transaction."""
        c = IDEMPOTENCY.c
        mark = (
            update(IDEMPOTENCY)
            .where(c.account_id == account_id, c.key == key, c.status_code == IN_PROGRESS)
            .values(status_code=RAN)
        )

        def write(conn: Connection) -> None:
            conn.execute(mark)

        return also_in_each_commit(write)

    def finish(self, account_id: str, key: str, status_code: int, body: str) -> None:
        if not is_final(status_code):
            self.abandon(account_id, key)
            return
        c = IDEMPOTENCY.c
        with self.engine.begin() as conn:
            conn.execute(
                update(IDEMPOTENCY)
                .where(c.account_id == account_id, c.key == key)
                .values(status_code=status_code, response_body=body)
            )

    def abandon(self, account_id: str, key: str) -> None:
        """Forget a key whose request ended without a final answer: a retry runs again."""
        c = IDEMPOTENCY.c
        with self.engine.begin() as conn:
            conn.execute(
                delete(IDEMPOTENCY).where(
                    c.account_id == account_id, c.key == key, c.status_code == IN_PROGRESS
                )
            )

    def purge(self, older_than: datetime) -> int:
        """Drop records older than a retention cut-off (clients retry within minutes, not days)."""
        with self.engine.begin() as conn:
            res = conn.execute(delete(IDEMPOTENCY).where(IDEMPOTENCY.c.created_at < older_than))
            return int(res.rowcount or 0)
