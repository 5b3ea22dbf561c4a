"""The auditors' read side: search the audit log, read a case's trail, verify the chain.

Who may read: the inspection committee (role `auditor`), at the units where the role is held
and every unit below (a provincial auditor reaches the whole province and also the entries
that belong to no unit). A caller without the role is refused (403, whatever the target); an
auditor asking about a case outside their units gets NotFound (404), so existence does not leak.

An entry belongs to a unit through what it is about: entries on a case, one of its tasks or a
complaint on it belong to the case's grassroots unit; an org-unit entry to that unit; anything
else to the unit recorded on the entry (where the actor acted), or to no unit.

The flag filter matches an entry whose payload lists the flag in `flags`, or holds a check with
that code whose outcome was not `passed` (flagged or failed). The payload is canonical JSON
text, so the database narrows candidates with a LIKE on the quoted code and the exact test runs
here on the parsed payload; the audit table stays append-only with no side index to keep in
step. Pagination is keyset on the chain sequence (`cursor` = the last `seq` seen).
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import ColumnElement, Engine, and_, false, or_, select
from sqlalchemy import case as sa_case
from sqlalchemy.engine import Connection
from sqlalchemy.sql.functions import coalesce

from domain.adapters.db import READ_ONLY
from domain.adapters.repository import AUDIT, CASE, COMPLAINT, TASK, audit_from_row
from domain.audit import (
    Checkpoint,
    VerifyResult,
    broken_chain,
    checkpoint_signature_ok,
)
from domain.errors import InvalidRequest, NotFound, PermissionDenied
from domain.roles import Role
from domain.service.access import descendants
from domain.service.queries import (
    EntryCheck,
    TrailEntry,
    UnitScope,
    case_audit_entries,
    role_scope,
    trail_entry,
    verify_against_checkpoint,
    verify_audit,
    verify_entries,
)
from domain.workcalendar import VN_TZ

MAX_LIMIT = 500
FLAG_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,20}$")


def auditor_scope(conn: Connection, account_id: str, now: datetime) -> UnitScope:
    """The auditor's reach; PermissionDenied when the account holds no auditor role now."""
    scope = role_scope(conn, account_id, [Role.AUDITOR], now.astimezone(VN_TZ).date())
    if scope.empty:
        raise PermissionDenied("permission_denied")
    return scope


def case_unit(conn: Connection, case_id: str) -> str:
    unit = conn.execute(select(CASE.c.unit_id).where(CASE.c.id == case_id)).scalar()
    if unit is None:
        raise NotFound("case", case_id)
    return str(unit)


def require_case_in_scope(conn: Connection, scope: UnitScope, case_id: str) -> str:
    """The case's unit, or NotFound when the case is missing or outside the scope (no leak)."""
    unit = case_unit(conn, case_id)
    if not scope.covers(unit):
        raise NotFound("case", case_id)
    return unit


# --- a case's trail --------------------------------------------------------------------------


@dataclass(frozen=True)
class Trail:
    case_id: str
    unit_id: str
    entries: list[TrailEntry]
    checks: list[EntryCheck]


def read_trail(engine: Engine, account_id: str, case_id: str, now: datetime) -> Trail:
    """An auditor's view of a case's decision trail, each entry checked against its hash."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        scope = auditor_scope(conn, account_id, now)
        unit = require_case_in_scope(conn, scope, case_id)
        entries = case_audit_entries(conn, case_id)
    return Trail(case_id, unit, [trail_entry(e) for e in entries], verify_entries(engine, entries))


# --- search ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    member_id: str | None = None
    org_unit_id: str | None = None
    case_id: str | None = None
    policy: str | None = None
    actor_id: str | None = None
    action: str | None = None
    flag: str | None = None
    at_from: datetime | None = None  # inclusive
    at_to: datetime | None = None  # exclusive


@dataclass(frozen=True)
class Hit:
    entry: TrailEntry
    case_id: str | None
    unit_id: str | None


@dataclass(frozen=True)
class AuditPage:
    hits: list[Hit]
    next_cursor: int | None


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def flag_matches(payload: Mapping[str, object], flag: str) -> bool:
    flags = payload.get("flags")
    if isinstance(flags, list) and flag in flags:
        return True
    checks = payload.get("checks")
    if isinstance(checks, list):
        for c in checks:
            if isinstance(c, Mapping) and c.get("code") == flag and c.get("outcome") != "passed":
                return True
    return False


def _subject_case() -> ColumnElement[str | None]:
    """The case an entry is about (directly, through a task, or through a complaint)."""
    return sa_case(
        (AUDIT.c.entity_type == "case", AUDIT.c.entity_id),
        (
            AUDIT.c.entity_type == "task",
            select(TASK.c.case_id).where(TASK.c.id == AUDIT.c.entity_id).scalar_subquery(),
        ),
        (
            AUDIT.c.entity_type == "complaint",
            select(COMPLAINT.c.case_id)
            .where(COMPLAINT.c.id == AUDIT.c.entity_id)
            .scalar_subquery(),
        ),
        else_=None,
    )


def _entities_of_cases(conn: Connection, case_ids: Sequence[str]) -> ColumnElement[bool]:
    """Entries about these cases, their tasks and complaints (uses the entity index)."""
    if not case_ids:
        return false()
    tasks = [r[0] for r in conn.execute(select(TASK.c.id).where(TASK.c.case_id.in_(case_ids)))]
    complaints = [
        r[0] for r in conn.execute(select(COMPLAINT.c.id).where(COMPLAINT.c.case_id.in_(case_ids)))
    ]
    parts = [and_(AUDIT.c.entity_type == "case", AUDIT.c.entity_id.in_(case_ids))]
    if tasks:
        parts.append(and_(AUDIT.c.entity_type == "task", AUDIT.c.entity_id.in_(tasks)))
    if complaints:
        parts.append(and_(AUDIT.c.entity_type == "complaint", AUDIT.c.entity_id.in_(complaints)))
    return or_(*parts)


def _validate(f: AuditFilter, limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(
            "invalid_field", field="limit", params={"field": "limit", "reason": f"1–{MAX_LIMIT}"}
        )
    if f.flag is not None and not FLAG_PATTERN.match(f.flag):
        raise InvalidRequest(
            "invalid_field",
            field="flag",
            params={"field": "flag", "reason": "a check code such as C5 or SLA"},
        )
    if f.at_from and f.at_to and _aware(f.at_to) <= _aware(f.at_from):
        raise InvalidRequest(
            "invalid_field",
            field="to",
            params={"field": "to", "reason": "must be after 'from'"},
        )


def search_audit(
    engine: Engine,
    account_id: str,
    f: AuditFilter,
    now: datetime,
    *,
    cursor: int | None = None,
    limit: int = 100,
) -> AuditPage:
    """Audit entries matching every given filter, inside the auditor's scope, in chain order."""
    _validate(f, limit)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        scope = auditor_scope(conn, account_id, now)
        subject_case = _subject_case()
        subject_unit = coalesce(
            CASE.c.unit_id,
            sa_case((AUDIT.c.entity_type == "org_unit", AUDIT.c.entity_id), else_=None),
            AUDIT.c.org_unit_id,
        )
        in_scope = subject_unit.in_(sorted(scope.units))
        where: list[ColumnElement[bool]] = [
            or_(in_scope, subject_unit.is_(None)) if scope.top else in_scope
        ]
        if f.member_id is not None:
            cases = [
                r[0] for r in conn.execute(select(CASE.c.id).where(CASE.c.member_id == f.member_id))
            ]
            where.append(
                or_(
                    _entities_of_cases(conn, cases),
                    and_(AUDIT.c.entity_type == "member", AUDIT.c.entity_id == f.member_id),
                )
            )
        if f.case_id is not None:
            where.append(_entities_of_cases(conn, [f.case_id]))
        if f.org_unit_id is not None:
            below = descendants(conn, [f.org_unit_id], now.astimezone(VN_TZ).date())
            where.append(subject_unit.in_(sorted(below & scope.units)))
        if f.policy is not None:
            where.append(AUDIT.c.policy == f.policy)
        if f.actor_id is not None:
            where.append(AUDIT.c.actor_id == f.actor_id)
        if f.action is not None:
            where.append(AUDIT.c.action == f.action)
        if f.flag is not None:
            # Candidates only; the exact test is flag_matches below.
            where.append(AUDIT.c.payload.like(f'%"{f.flag}"%'))
        if f.at_from is not None:
            where.append(AUDIT.c.at >= _aware(f.at_from))
        if f.at_to is not None:
            where.append(AUDIT.c.at < _aware(f.at_to))
        base = (
            select(AUDIT, subject_case.label("subject_case"), subject_unit.label("subject_unit"))
            .select_from(AUDIT.outerjoin(CASE, CASE.c.id == subject_case))
            .where(*where)
            .order_by(AUDIT.c.seq)
        )
        hits: list[Hit] = []
        position = cursor if cursor is not None else 0
        batch = limit + 1 if f.flag is None else max(4 * limit, 200)
        while len(hits) <= limit:
            rows = list(conn.execute(base.where(AUDIT.c.seq > position).limit(batch)).mappings())
            for r in rows:
                e = audit_from_row(r)
                if f.flag is not None and not flag_matches(e.payload, f.flag):
                    continue
                hits.append(Hit(trail_entry(e), r["subject_case"], r["subject_unit"]))
                if len(hits) > limit:
                    break
            if len(rows) < batch:
                break
            position = rows[-1]["seq"]
    more = len(hits) > limit
    hits = hits[:limit]
    return AuditPage(hits, hits[-1].entry.seq if more else None)


# --- verification -----------------------------------------------------------------------------


def _require_ed25519(public_key_pem: bytes) -> None:
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidRequest(
            "invalid_field",
            field="public_key",
            params={"field": "public_key", "reason": "an Ed25519 public key in PEM"},
        )


@dataclass(frozen=True)
class Verification:
    result: VerifyResult
    checkpoint: Checkpoint | None = None
    signature_ok: bool | None = None  # None: no public key given


def verify(
    engine: Engine,
    account_id: str,
    now: datetime,
    checkpoint: Checkpoint | None = None,
    public_key_pem: bytes | None = None,
) -> Verification:
    """Recompute the whole chain; against a checkpoint (and its signature) when one is given.

    Any auditor may run it: the result names a sequence number and a hash, nothing about a
    case. A signature that does not verify is reported, and the chain is not then compared
    with a checkpoint nobody can vouch for.
    """
    if public_key_pem is not None and checkpoint is None:
        raise InvalidRequest(
            "invalid_field",
            field="public_key",
            params={"field": "public_key", "reason": "only with a checkpoint"},
        )
    with engine.connect().execution_options(**READ_ONLY) as conn:
        auditor_scope(conn, account_id, now)
    if checkpoint is None:
        return Verification(verify_audit(engine))
    signature_ok: bool | None = None
    if public_key_pem is not None:
        _require_ed25519(public_key_pem)
        try:
            signature_ok = checkpoint_signature_ok(checkpoint, public_key_pem)
        except ValueError:  # the signature is not even base64: it cannot be valid
            signature_ok = False
        if not signature_ok:
            head = verify_audit(engine)
            return Verification(
                broken_chain(
                    head.checked,
                    head.head_seq,
                    head.head_hash,
                    checkpoint.seq,
                    "audit_checkpoint_signature_invalid",
                ),
                checkpoint,
                False,
            )
    return Verification(verify_against_checkpoint(engine, checkpoint), checkpoint, signature_ok)


__all__ = [
    "MAX_LIMIT",
    "AuditFilter",
    "AuditPage",
    "Hit",
    "Trail",
    "Verification",
    "auditor_scope",
    "read_trail",
    "require_case_in_scope",
    "search_audit",
    "verify",
]
