"""The read side: a case's decision trail, audit verification and checkpoints, inbox listings,
and the org-unit scope a role reaches (its units and every unit below them)."""

import os
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.engine import Connection

from domain.adapters.db import READ_ONLY
from domain.adapters.repository import (
    AUDIT,
    AUDIT_HEAD,
    CASE,
    COMPLAINT,
    GRANT,
    ORG,
    TASK,
    audit_from_row,
)
from domain.audit import (
    GENESIS,
    AuditEntry,
    Checkpoint,
    StoredRow,
    VerifyResult,
    broken_chain,
    entry_hash,
    make_checkpoint,
    verify_stored_chain,
)
from domain.roles import OrgLevel, Role
from domain.service.access import descendants

BATCH = 5_000


def iter_audit(engine: Engine, start_seq: int = 1) -> Iterator[AuditEntry]:
    """Every audit entry in order, streamed in batches so memory stays flat at millions."""
    seq = start_seq - 1
    while True:
        with engine.connect().execution_options(**READ_ONLY) as conn:
            rows = list(
                conn.execute(
                    select(AUDIT).where(AUDIT.c.seq > seq).order_by(AUDIT.c.seq).limit(BATCH)
                ).mappings()
            )
        if not rows:
            return
        for r in rows:
            yield audit_from_row(r)
        seq = rows[-1]["seq"]


VERIFY_BATCH = 20_000
# How many segments of the chain are verified at once, each on its own connection and thread.
# PostgreSQL: the server builds each entry's text in its own process per connection while this
# one waits outside the GIL, so the segments overlap (≈ 1.4-2× on this 2-core machine).
# SQLite: sqlite3 releases the GIL for every row's sqlite3_step (≈ 2.5 µs), so two threads hand
# the GIL over once a row and measured 0.8-1× one thread: one segment.
VERIFY_SEGMENTS: dict[str, int] = {"postgresql": min(4, os.cpu_count() or 1), "sqlite": 1}
# Fewer entries per segment than this are not worth another connection and thread.
VERIFY_SEGMENT_MIN = 50_000

# Each entry's canonical text (`domain.audit.fields_text`) built by the database next to the
# data, the stored payload spliced in as stored: json_quote / to_json escape strings exactly as
# Python's json does, and `at` is rendered in `format_time`'s form (SQLite stores
# 'YYYY-MM-DD HH:MM:SS.ffffff'). A row the template cannot reproduce costs a recheck, never a
# wrong verdict. Four columns instead of thirteen: the driver's per-column cost was most of it.
# The fourth column is exactly what the entry's hash covers after the domain tag — prev_hash,
# then the canonical text — as UTF-8 bytes, so Python hashes it as it comes: no str decoded by
# the driver only to be encoded again, no concatenation per entry.
_VERIFY_SELECT = {
    "sqlite": """SELECT seq, prev_hash, entry_hash, CAST(prev_hash
 || '{"action":' || json_quote(action) || ',"actor_id":' || json_quote(actor_id)
 || ',"actor_role":' || json_quote(actor_role)
 || ',"at":"' || substr(at, 1, 10) || 'T' || substr(at, 12) || 'Z"'
 || ',"entity_id":' || json_quote(entity_id) || ',"entity_type":' || json_quote(entity_type)
 || ',"org_unit_id":' || json_quote(org_unit_id) || ',"payload":' || payload
 || ',"policy":' || json_quote(policy) || ',"policy_version":' || json_quote(policy_version)
 || ',"prev_hash":' || json_quote(prev_hash) || ',"seq":' || seq || '}'
 AS BLOB) FROM audit_entry""",
    "postgresql": """SELECT seq, prev_hash, entry_hash, convert_to(prev_hash
 || '{"action":' || to_json(action)::text
 || ',"actor_id":' || coalesce(to_json(actor_id)::text, 'null')
 || ',"actor_role":' || coalesce(to_json(actor_role)::text, 'null')
 || ',"at":"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"'
 || ',"entity_id":' || to_json(entity_id)::text || ',"entity_type":' || to_json(entity_type)::text
 || ',"org_unit_id":' || coalesce(to_json(org_unit_id)::text, 'null') || ',"payload":' || payload
 || ',"policy":' || coalesce(to_json(policy)::text, 'null')
 || ',"policy_version":' || coalesce(policy_version::text, 'null')
 || ',"prev_hash":' || to_json(prev_hash)::text || ',"seq":' || seq || '}'
 , 'UTF8') FROM audit_entry""",
}


@dataclass(frozen=True)
class _Segment:
    """A stretch of the chain verified on its own: the rows with `after < seq <= upto`.

    `start_seq` and `start_prev` are what its first row must carry: the sequence number and
    the hash of the entry just before the stretch (read directly, not recomputed; the segment
    before proves it by ending on that same hash).
    """

    after: int | None  # None: from the very first row, whatever its seq
    upto: int | None  # None: to the very last row, including entries appended meanwhile
    start_seq: int
    start_prev: str


_WHOLE_CHAIN = _Segment(None, None, 1, GENESIS)


def _stored_rows(
    conn: Connection,
    after: int | None = None,
    upto: int | None = None,
    stop: threading.Event | None = None,
) -> Generator[StoredRow, None, None]:
    """The audit rows with `after < seq <= upto` in chain order on the raw driver cursor,
    streamed in large batches (no bound: every row); `stop` set ends the stream early.

    PostgreSQL: a server-side (named) cursor, so a million rows never sit in memory at once.
    SQLite: one read transaction (a consistent WAL snapshot) fetched in batches. The raw
    cursor skips SQLAlchemy's per-row result processing, which cost more than the hashing.
    """
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    postgres = conn.dialect.name == "postgresql"
    bounds = [f"seq > {int(after)}"] if after is not None else []
    bounds += [f"seq <= {int(upto)}"] if upto is not None else []
    sql = (
        _VERIFY_SELECT["postgresql" if postgres else "sqlite"]
        + (" WHERE " + " AND ".join(bounds) if bounds else "")
        + " ORDER BY seq"
    )
    # Binary results on PostgreSQL: the bytea column arrives as raw bytes, not as hex text.
    cur = dbapi.cursor(name="welfare_audit_verify", binary=True) if postgres else dbapi.cursor()
    try:
        cur.execute(sql)
        while not (stop and stop.is_set()) and (batch := cur.fetchmany(VERIFY_BATCH)):
            yield from batch
    finally:
        cur.close()


def _recheck(engine: Engine) -> Callable[[int], bool]:
    """The full canonical check of one entry, for rows the fast template cannot reproduce."""

    def check(seq: int) -> bool:
        with engine.connect().execution_options(**READ_ONLY) as conn:
            row = conn.execute(select(AUDIT).where(AUDIT.c.seq == seq)).mappings().first()
        if row is None:
            return False
        try:
            e = audit_from_row(row)
        except ValueError:  # the stored payload is not even JSON any more
            return False
        return entry_hash(e.prev_hash, e.fields()) == e.entry_hash

    return check


def _plan_segments(engine: Engine, segments: int, min_entries: int) -> list[_Segment]:
    """Equal stretches of `1..max(seq)`; the first and last are open-ended so that, together,
    the segments read every row exactly once, whatever the table holds."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        last = conn.execute(select(func.max(AUDIT.c.seq))).scalar()
        k = min(segments, int(last or 0) // max(1, min_entries))
        if k <= 1:
            return [_WHOLE_CHAIN]
        assert last is not None  # k > 1 implies it
        cuts = [int(last) * i // k for i in range(1, k)]
        hashes = {
            int(seq): str(h)
            for seq, h in conn.execute(
                select(AUDIT.c.seq, AUDIT.c.entry_hash).where(AUDIT.c.seq.in_(cuts))
            )
        }
    plan = []
    after, start_seq, start_prev = None, 1, GENESIS
    for cut in cuts:
        plan.append(_Segment(after, cut, start_seq, start_prev))
        # A missing entry at a cut never matches the hash the segment before ends on, so the
        # stitching in `_join` falls back to reading on from there in chain order.
        after, start_seq, start_prev = cut, cut + 1, hashes.get(cut, "")
    plan.append(_Segment(after, None, start_seq, start_prev))
    return plan


def _verify_segment(
    engine: Engine,
    segment: _Segment,
    recheck: Callable[[int], bool],
    stop: threading.Event | None = None,
) -> VerifyResult:
    with (
        engine.connect().execution_options(**READ_ONLY) as conn,
        conn.begin(),
        # its cursor closes before the connection does
        closing(_stored_rows(conn, segment.after, segment.upto, stop)) as rows,
    ):
        return verify_stored_chain(
            rows, recheck, start_seq=segment.start_seq, start_prev=segment.start_prev
        )


def _join(
    engine: Engine,
    plan: Sequence[_Segment],
    results: Sequence[VerifyResult],
    recheck: Callable[[int], bool],
) -> VerifyResult:
    """The segments' results as one pass over the whole chain would have reported them.

    Walked in chain order: the first segment that fails gives the verdict (the lowest failing
    entry, since every segment before it verified and ended exactly where it began). A segment
    that stops short of its stretch (entries missing at its end) or does not end on the hash
    the next one started from is followed by reading on from its end in chain order, so a gap
    or a broken link at a seam is reported exactly as a single pass reports it.
    """
    checked = 0
    for result, following in zip(results, [*plan[1:], None], strict=True):
        if not result.ok:
            return replace(result, checked=checked + result.checked)
        checked += result.checked
        if following is None:
            return replace(result, checked=checked)
        if (result.head_seq, result.head_hash) != (following.start_seq - 1, following.start_prev):
            rest = _verify_segment(
                engine,
                _Segment(result.head_seq, None, result.head_seq + 1, result.head_hash),
                recheck,
            )
            return replace(rest, checked=checked + rest.checked)
    raise AssertionError(f"no segments in {plan}")  # pragma: no cover - a plan has at least one


def _verify_chain_rows(engine: Engine, segments: int, min_entries: int) -> VerifyResult:
    plan = _plan_segments(engine, segments, min_entries)
    recheck = _recheck(engine)
    if len(plan) == 1:
        return _verify_segment(engine, plan[0], recheck)
    # Once a segment fails, the verdict is its own or an earlier one's (`_join`): the segments
    # after it stop reading, so a tampered chain is reported about as soon as a single pass
    # would report it.
    stops = [threading.Event() for _ in plan]

    def verify(i: int) -> VerifyResult:
        result = _verify_segment(engine, plan[i], recheck, stops[i])
        if not result.ok:
            for later in stops[i + 1 :]:
                later.set()
        return result

    with ThreadPoolExecutor(max_workers=len(plan), thread_name_prefix="audit-verify") as pool:
        results = list(pool.map(verify, range(len(plan))))
    return _join(engine, plan, results, recheck)


def _recorded_head(engine: Engine) -> tuple[int, str]:
    with engine.connect().execution_options(**READ_ONLY) as conn:
        seq, entry = conn.execute(select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.entry_hash)).one()
    return int(seq), str(entry)


def verify_audit(
    engine: Engine, *, segments: int | None = None, min_segment_entries: int | None = None
) -> VerifyResult:
    """Recompute the whole chain and compare its end with the stored head.

    A long chain is verified in up to `segments` stretches at once (`VERIFY_SEGMENTS`), each of
    at least `min_segment_entries` (`VERIFY_SEGMENT_MIN`); the verdict — which entry, what
    problem, how many entries checked before it — is the one a single pass in chain order gives.

    The engine may append while this runs. The head is therefore read before and after the
    rows: the chain read must end at or after the first reading and at or before the second,
    and where it ends on a recorded head it must end on that head's hash. So appends never
    look like removed entries, while a cut-off, rewritten or over-long tail still shows.
    """
    before = _recorded_head(engine)
    result = _verify_chain_rows(
        engine,
        VERIFY_SEGMENTS.get(engine.dialect.name, 1) if segments is None else segments,
        VERIFY_SEGMENT_MIN if min_segment_entries is None else min_segment_entries,
    )
    if not result.ok:
        return result
    after = _recorded_head(engine)
    end = (result.head_seq, result.head_hash)
    if end in (before, after) or before[0] < result.head_seq < after[0]:
        return result
    if result.head_seq < before[0]:
        at, code = result.head_seq + 1, "audit_entries_removed"
    elif result.head_seq > after[0]:
        at, code = after[0] + 1, "audit_entries_added"
    else:
        at, code = result.head_seq, "audit_newest_rewritten"
    return broken_chain(result.checked, result.head_seq, result.head_hash, at, code)


def verify_against_checkpoint(engine: Engine, cp: Checkpoint) -> VerifyResult:
    """The chain verifies and still has, at the checkpoint's sequence, the hash kept outside."""
    result = verify_audit(engine)
    if not result.ok:
        return result
    if result.head_seq < cp.seq:
        return broken_chain(
            result.checked,
            result.head_seq,
            result.head_hash,
            cp.seq,
            "audit_shorter_than_checkpoint",
        )
    if cp.seq == 0:
        # Taken on an empty chain: what it vouches for is the start, the genesis hash.
        at_checkpoint: str | None = GENESIS
    else:
        # The verified chain holds every entry from 1 to its head, so this one exists.
        with engine.connect().execution_options(**READ_ONLY) as conn:
            at_checkpoint = conn.execute(
                select(AUDIT.c.entry_hash).where(AUDIT.c.seq == cp.seq)
            ).scalar()
    if at_checkpoint != cp.entry_hash:
        return broken_chain(
            result.checked, result.head_seq, result.head_hash, cp.seq, "audit_checkpoint_differs"
        )
    return result


def checkpoint(engine: Engine, now: datetime, private_key_pem: bytes | None = None) -> Checkpoint:
    seq, head = _recorded_head(engine)
    return make_checkpoint(seq, head, now, private_key_pem)


@dataclass(frozen=True)
class TrailEntry:
    seq: int
    at: datetime
    action: str
    actor_id: str | None
    actor_role: str | None
    org_unit_id: str | None
    policy_version: int | None
    payload: dict[str, object]
    prev_hash: str
    entry_hash: str
    entity_type: str = "case"
    entity_id: str = ""
    policy: str | None = None


def trail_entry(e: AuditEntry) -> TrailEntry:
    return TrailEntry(
        seq=e.seq,
        at=e.at,
        action=e.action,
        actor_id=e.actor_id,
        actor_role=e.actor_role,
        org_unit_id=e.org_unit_id,
        policy_version=e.policy_version,
        payload=dict(e.payload),
        prev_hash=e.prev_hash,
        entry_hash=e.entry_hash,
        entity_type=e.entity_type,
        entity_id=e.entity_id,
        policy=e.policy,
    )


def case_audit_entries(conn: Connection, case_id: str) -> list[AuditEntry]:
    """Every audit entry about a case, its tasks and its complaints, in chain order."""
    task_ids = [r[0] for r in conn.execute(select(TASK.c.id).where(TASK.c.case_id == case_id))]
    complaint_ids = [
        r[0] for r in conn.execute(select(COMPLAINT.c.id).where(COMPLAINT.c.case_id == case_id))
    ]
    rows = conn.execute(
        select(AUDIT)
        .where(
            ((AUDIT.c.entity_type == "case") & (AUDIT.c.entity_id == case_id))
            | ((AUDIT.c.entity_type == "task") & AUDIT.c.entity_id.in_(task_ids or [""]))
            | ((AUDIT.c.entity_type == "complaint") & AUDIT.c.entity_id.in_(complaint_ids or [""]))
        )
        .order_by(AUDIT.c.seq)
    ).mappings()
    return [audit_from_row(r) for r in rows]


def case_trail(engine: Engine, case_id: str) -> list[TrailEntry]:
    """Every audit entry about a case (its tasks and complaints too), in order, with hash links."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return [trail_entry(e) for e in case_audit_entries(conn, case_id)]


@dataclass(frozen=True)
class EntryCheck:
    """One entry checked on its own: its content matches its hash, and it links to its predecessor."""

    seq: int
    content_ok: bool
    link_ok: bool

    @property
    def ok(self) -> bool:
        return self.content_ok and self.link_ok


def verify_entries(engine: Engine, entries: Sequence[AuditEntry]) -> list[EntryCheck]:
    """Check a selection of entries (a case's trail) without walking the whole chain.

    Each entry's hash is recomputed from its stored fields, and its `prev_hash` is compared
    with the stored hash of the entry before it, so an edited entry, or one whose neighbour
    was edited and re-hashed, shows up here. Only the full `verify_audit` proves nothing was
    removed or rewritten elsewhere in the chain.
    """
    wanted = sorted({e.seq - 1 for e in entries if e.seq > 1})
    previous: dict[int, str] = {}
    with engine.connect().execution_options(**READ_ONLY) as conn:
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            for seq, h in conn.execute(
                select(AUDIT.c.seq, AUDIT.c.entry_hash).where(AUDIT.c.seq.in_(chunk))
            ):
                previous[int(seq)] = str(h)
    out = []
    for e in entries:
        expected_prev = GENESIS if e.seq == 1 else previous.get(e.seq - 1)
        out.append(
            EntryCheck(
                e.seq,
                entry_hash(e.prev_hash, e.fields()) == e.entry_hash,
                expected_prev is not None and expected_prev == e.prev_hash,
            )
        )
    return out


def case_status(engine: Engine, case_id: str) -> dict[str, object] | None:
    with engine.connect().execution_options(**READ_ONLY) as conn:
        r = conn.execute(select(CASE).where(CASE.c.id == case_id)).mappings().first()
        return dict(r) if r else None


def open_tasks(engine: Engine, case_id: str) -> list[dict[str, object]]:
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(TASK).where(TASK.c.case_id == case_id, TASK.c.status == "open")
            ).mappings()
        ]


# --- org scope ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitScope:
    """The org units a role reaches: where it is held, and every unit below (as of a date).

    `top` is true when the role is held at the province (or federation): such a holder also
    reaches records that belong to no unit (accounts, campaigns, system entries).
    """

    units: frozenset[str]
    top: bool = False

    def covers(self, unit_id: str | None) -> bool:
        return self.top if unit_id is None else unit_id in self.units

    @property
    def empty(self) -> bool:
        return not self.units


NO_SCOPE = UnitScope(frozenset())


def role_scope(conn: Connection, account_id: str, roles: Iterable[Role], on: date) -> UnitScope:
    """Where an account's grants of any of `roles`, valid on `on`, reach."""
    wanted = [r.value for r in roles]
    rows = conn.execute(
        select(GRANT.c.org_unit_id, ORG.c.level)
        .join(ORG, ORG.c.id == GRANT.c.org_unit_id)
        .where(
            GRANT.c.account_id == account_id,
            GRANT.c.role.in_(wanted),
            GRANT.c.valid_from <= on,
            or_(GRANT.c.valid_to.is_(None), GRANT.c.valid_to >= on),
        )
    ).all()
    if not rows:
        return NO_SCOPE
    top = any(OrgLevel(level).rank <= OrgLevel.PROVINCE.rank for _, level in rows)
    return UnitScope(descendants(conn, [u for u, _ in rows], on), top)
