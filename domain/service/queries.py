"""The read side: a case's decision trail, audit verification and checkpoints, inbox listings,
and the org-unit scope a role reaches (its units and every unit below them)."""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, or_, select
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
    VerifyResult,
    entry_hash,
    make_checkpoint,
    verify_chain,
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


def verify_audit(engine: Engine) -> VerifyResult:
    """Recompute the whole chain and compare its end with the stored head."""
    result = verify_chain(iter_audit(engine))
    if not result.ok:
        return result
    with engine.connect().execution_options(**READ_ONLY) as conn:
        head_seq, head_hash = conn.execute(select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.entry_hash)).one()
    if head_seq != result.head_seq or head_hash != result.head_hash:
        return VerifyResult(
            False,
            result.checked,
            result.head_seq,
            result.head_hash,
            result.head_seq + 1,
            "the chain ends before the recorded head: entries were removed",
        )
    return result


def verify_against_checkpoint(engine: Engine, cp: Checkpoint) -> VerifyResult:
    """The chain verifies and still has, at the checkpoint's sequence, the hash kept outside."""
    result = verify_audit(engine)
    if not result.ok:
        return result
    if result.head_seq < cp.seq:
        return VerifyResult(
            False,
            result.checked,
            result.head_seq,
            result.head_hash,
            cp.seq,
            "the chain is shorter than the checkpoint: entries were removed",
        )
    for e in iter_audit(engine, cp.seq):
        if e.entry_hash != cp.entry_hash:
            return VerifyResult(
                False,
                result.checked,
                result.head_seq,
                result.head_hash,
                cp.seq,
                "the entry differs from the checkpoint: the chain was rewritten",
            )
        break
    return result


def checkpoint(engine: Engine, now: datetime, private_key_pem: bytes | None = None) -> Checkpoint:
    with engine.connect().execution_options(**READ_ONLY) as conn:
        seq, head = conn.execute(select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.entry_hash)).one()
    return make_checkpoint(int(seq), str(head), now, private_key_pem)


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


def units_below(conn: Connection, roots: Iterable[str], on: date) -> frozenset[str]:
    """`roots` and every unit below them in the org tree effective on `on`."""
    return descendants(conn, roots, on)


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
    return UnitScope(units_below(conn, [u for u, _ in rows], on), top)
