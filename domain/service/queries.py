"""The read side: a case's decision trail, audit verification and checkpoints, inbox listings."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from domain.adapters.db import READ_ONLY
from domain.adapters.repository import AUDIT, AUDIT_HEAD, CASE, TASK, audit_from_row
from domain.audit import AuditEntry, Checkpoint, VerifyResult, make_checkpoint, verify_chain

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


def case_trail(engine: Engine, case_id: str) -> list[TrailEntry]:
    """Every audit entry about a case (and its tasks), in order, with the hash links."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        task_ids = [r[0] for r in conn.execute(select(TASK.c.id).where(TASK.c.case_id == case_id))]
        rows = conn.execute(
            select(AUDIT)
            .where(
                ((AUDIT.c.entity_type == "case") & (AUDIT.c.entity_id == case_id))
                | ((AUDIT.c.entity_type == "task") & AUDIT.c.entity_id.in_(task_ids or [""]))
            )
            .order_by(AUDIT.c.seq)
        ).mappings()
        out = []
        for r in rows:
            e = audit_from_row(r)
            out.append(
                TrailEntry(
                    e.seq,
                    e.at,
                    e.action,
                    e.actor_id,
                    e.actor_role,
                    e.org_unit_id,
                    e.policy_version,
                    dict(e.payload),
                    e.prev_hash,
                    e.entry_hash,
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
