"""The inspection committee (auditors): decision trails, audit search, chain verification, dossiers.

Every route needs the role `auditor` (else 403 `permission_denied`, whatever the target); a case
outside the auditor's units answers 404 so its existence does not leak. The rules live in
domain/service/audit_search.py and domain/service/dossier.py; this module only maps HTTP.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Caller
from api.deps import CallerLang, Welfare
from api.models import ID_PATTERN, CheckOut, IdQuery
from api.problems import problems
from domain.audit import Checkpoint
from domain.service import audit_search as svc
from domain.service.dossier import export_dossier
from domain.service.queries import EntryCheck, TrailEntry

router = APIRouter(prefix="/api/v1", tags=["audit"])

IdPath = Annotated[
    str,
    Path(
        max_length=64,
        pattern=ID_PATTERN,
        description="The case id.",
        examples=["0192f7a0-6f1e-7c2a-9d1b-3e5f7a9c1b2d"],
    ),
]

HASH_EXAMPLE = "5cc6690d827b0b55a2288aead89552969106f2bf5aa099dd6b3014bc0c9747ad"


TRAIL_ENTRY_EXAMPLE: dict[str, Any] = {
    "seq": 68,
    "at": "2026-03-02T02:00:00Z",
    "action": "task.decided",
    "entity_type": "case",
    "entity_id": "0192f7a0-6f1e-7c2a-9d1b-3e5f7a9c1b2d",
    "actor_id": "0192f7a0-0000-7000-8000-000000000001",
    "actor_role": "grassroots_chair",
    "org_unit_id": "CS-A",
    "policy": "housing",
    "policy_version": 1,
    "checks": [
        {
            "rule": "frequency_cap",
            "code": "C7",
            "outcome": "passed",
            "reason": "ok",
            "params": {},
        }
    ],
    "flags": [],
    "payload": {"case": "0192f7a0-…", "status": "in_review", "action": "approve"},
    "prev_hash": HASH_EXAMPLE,
    "entry_hash": HASH_EXAMPLE,
    "content_ok": True,
    "link_ok": True,
}


class TrailEntryOut(BaseModel):
    """One entry of a case's decision trail: who, role, when, what, rule version, checks, hash link."""

    model_config = ConfigDict(json_schema_extra={"examples": [TRAIL_ENTRY_EXAMPLE]})
    seq: int = Field(description="Position in the hash chain.", examples=[68])
    at: datetime = Field(description="When (UTC).")
    action: str = Field(description="What happened.", examples=["case.submitted"])
    entity_type: str = Field(description="case | task | complaint | member | account | …")
    entity_id: str = Field(description="Id of the entity the entry is about.")
    actor_id: str | None = Field(description="Who (account id; `system` for the engine).")
    actor_role: str | None = Field(description="In which role.", examples=["grassroots_chair"])
    org_unit_id: str | None = Field(description="At which org unit the actor acted.")
    policy: str | None = Field(description="The policy of the case.", examples=["housing"])
    policy_version: int | None = Field(description="The rule version the case is filed under.")
    checks: list[CheckOut] = Field(description="Every check's result recorded in this entry.")
    flags: list[str] = Field(description="Flags this entry raised (check codes, SLA).")
    payload: dict[str, Any] = Field(
        description="The whole recorded payload (ids, amounts and hashes — never names)."
    )
    prev_hash: str = Field(description="SHA-256 of the previous entry (the hash link).")
    entry_hash: str = Field(description="SHA-256 of this entry.")
    content_ok: bool = Field(description="The stored content still matches `entry_hash`.")
    link_ok: bool = Field(description="`prev_hash` equals the stored hash of entry seq−1.")


def _checks(payload: dict[str, Any]) -> list[CheckOut]:
    raw = payload.get("checks")
    out: list[CheckOut] = []
    if isinstance(raw, list):
        for c in raw:
            if isinstance(c, dict):
                out.append(
                    CheckOut(
                        rule=str(c.get("rule", "")),
                        code=str(c.get("code", "")),
                        outcome=str(c.get("outcome", "")),
                        reason=str(c.get("reason", "")),
                        params=dict(c.get("params") or {}),
                    )
                )
    return out


def _entry(e: TrailEntry, check: EntryCheck | None) -> dict[str, Any]:
    flags = e.payload.get("flags")
    return {
        "seq": e.seq,
        "at": e.at,
        "action": e.action,
        "entity_type": e.entity_type,
        "entity_id": e.entity_id,
        "actor_id": e.actor_id,
        "actor_role": e.actor_role,
        "org_unit_id": e.org_unit_id,
        "policy": e.policy,
        "policy_version": e.policy_version,
        "checks": _checks(e.payload),
        "flags": [str(f) for f in flags] if isinstance(flags, list) else [],
        "payload": e.payload,
        "prev_hash": e.prev_hash,
        "entry_hash": e.entry_hash,
        "content_ok": check.content_ok if check else True,
        "link_ok": check.link_ok if check else True,
    }


class TrailOut(BaseModel):
    """A case's whole decision trail, each entry's hash link verified."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "case_id": "0192f7a0-cccc-7000-8000-000000000010",
                    "unit_id": "LC-TANPHONG-CS1",
                    "all_ok": True,
                    "entries": [],
                }
            ]
        }
    )
    case_id: str = Field(description="The case.")
    unit_id: str = Field(description="The case's grassroots unit.", examples=["CS-A"])
    all_ok: bool = Field(description="Every entry matches its hash and links to its predecessor.")
    entries: list[TrailEntryOut] = Field(description="Every entry about the case, in chain order.")


@router.get(
    "/cases/{case_id}/trail",
    response_model=TrailOut,
    summary="A case's decision trail",
    description="Every audit entry about the case, its tasks and complaints — who, in which "
    "role, when, what, under which rule version, each check's result — with the hash links, "
    "each entry checked against its hash. Auditors only; a case outside their units is 404.",
    responses=problems(401, 403, 404, 422),
)
def trail(case_id: IdPath, app: Welfare, caller: Caller) -> TrailOut:
    t = svc.read_trail(app.engine, caller.account_id, case_id, app.service.clock())
    checks = {c.seq: c for c in t.checks}
    return TrailOut(
        case_id=t.case_id,
        unit_id=t.unit_id,
        all_ok=all(c.ok for c in t.checks),
        entries=[TrailEntryOut(**_entry(e, checks.get(e.seq))) for e in t.entries],
    )


# --- search --------------------------------------------------------------------------------


class AuditHitOut(TrailEntryOut):
    """One audit-log entry found by a search (ids and codes only, no personal data)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **TRAIL_ENTRY_EXAMPLE,
                    "case_id": TRAIL_ENTRY_EXAMPLE["entity_id"],
                    "unit_id": "CS-A",
                }
            ]
        }
    )
    case_id: str | None = Field(description="The case the entry is about, if any.")
    unit_id: str | None = Field(description="The unit the entry belongs to (the case's unit).")


class AuditPageOut(BaseModel):
    """One page of audit-log search results, oldest first; `next_cursor` for more."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [], "next_cursor": 1200}]})
    items: list[AuditHitOut] = Field(description="Matching entries in chain order.")
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


@router.get(
    "/audit/entries",
    response_model=AuditPageOut,
    summary="Search the audit log",
    description="Entries matching every given filter, inside the auditor's units, in chain "
    "order, keyset-paginated (`cursor` = the last `seq` seen). `member_id`: entries about the "
    "member's cases (and the member record); `org_unit_id`: entries belonging to that unit or "
    "below; `flag`: entries raising the flag or recording a check with that code that did not "
    "pass (C5, SLA, …); `from`/`to`: the period (UTC unless an offset is given; `to` exclusive).",
    responses=problems(401, 403, 422),
)
def search(
    app: Welfare,
    caller: Caller,
    member_id: Annotated[str | None, IdQuery] = None,
    org_unit_id: Annotated[str | None, IdQuery] = None,
    case_id: Annotated[str | None, IdQuery] = None,
    policy: Annotated[str | None, Query(max_length=40, pattern=ID_PATTERN)] = None,
    actor_id: Annotated[str | None, IdQuery] = None,
    action: Annotated[
        str | None, Query(max_length=40, pattern=ID_PATTERN, examples=["task.decided"])
    ] = None,
    flag: Annotated[
        str | None, Query(max_length=20, pattern=r"^[A-Za-z0-9_]+$", examples=["C5"])
    ] = None,
    at_from: Annotated[datetime | None, Query(alias="from")] = None,
    at_to: Annotated[datetime | None, Query(alias="to")] = None,
    cursor: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=svc.MAX_LIMIT)] = 100,
) -> AuditPageOut:
    page = svc.search_audit(
        app.engine,
        caller.account_id,
        svc.AuditFilter(
            member_id=member_id,
            org_unit_id=org_unit_id,
            case_id=case_id,
            policy=policy,
            actor_id=actor_id,
            action=action,
            flag=flag,
            at_from=_utc(at_from),
            at_to=_utc(at_to),
        ),
        app.service.clock(),
        cursor=cursor,
        limit=limit,
    )
    return AuditPageOut(
        items=[
            AuditHitOut(**_entry(h.entry, None), case_id=h.case_id, unit_id=h.unit_id)
            for h in page.hits
        ],
        next_cursor=page.next_cursor,
    )


# --- verification --------------------------------------------------------------------------


class CheckpointIn(BaseModel):
    """A chain head kept outside the database (`welfare audit checkpoint`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "seq": 956,
                    "entry_hash": "72253e26d01ed4b397f33745fdcde462be6a875ff30a5cbf03b077a1418cca8b",
                    "created_at": "2026-11-24T00:00:00Z",
                }
            ]
        },
    )
    seq: int = Field(ge=1, le=2**62, description="Sequence of the head entry.")
    entry_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="Its SHA-256.")
    created_at: str = Field(max_length=40, description="When the checkpoint was made.")
    signature: str | None = Field(
        default=None, max_length=200, description="Base64 Ed25519 signature."
    )
    public_key: str | None = Field(
        default=None, max_length=200, description="Base64 raw public key of the signer."
    )


class VerificationIn(BaseModel):
    """Optionally a signed checkpoint and public key to verify the chain against."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {},
                {
                    "checkpoint": {
                        "seq": 68,
                        "entry_hash": HASH_EXAMPLE,
                        "created_at": "2026-03-02T02:00:00.000000Z",
                        "signature": "…base64…",
                    },
                    "public_key_pem": "-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n",
                },
            ]
        },
    )
    checkpoint: CheckpointIn | None = Field(
        default=None, description="Also prove the chain still holds this head."
    )
    public_key_pem: str | None = Field(
        default=None,
        max_length=2000,
        description="The auditors' Ed25519 public key (PEM) to check the checkpoint's signature.",
    )


class VerificationOut(BaseModel):
    """The result of verifying the audit hash chain."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": True,
                    "checked": 68,
                    "head_seq": 68,
                    "head_hash": HASH_EXAMPLE,
                    "broken_seq": None,
                    "problem": None,
                    "problem_code": None,
                    "checkpoint_seq": None,
                    "signature_ok": None,
                }
            ]
        }
    )
    ok: bool = Field(description="The whole chain verifies (and matches the checkpoint).")
    checked: int = Field(description="Entries recomputed.")
    head_seq: int = Field(description="Last good entry.")
    head_hash: str = Field(description="Its hash.")
    broken_seq: int | None = Field(description="The first broken entry, if any.")
    problem: str | None = Field(description="What is wrong there, in the caller's language.")
    problem_code: str | None = Field(
        description="The same as a stable code: audit_gap, audit_link_broken, "
        "audit_entry_altered, audit_entries_removed, audit_entries_added, "
        "audit_newest_rewritten, audit_shorter_than_checkpoint, audit_checkpoint_differs, "
        "audit_checkpoint_signature_invalid."
    )
    checkpoint_seq: int | None = Field(description="The checkpoint compared with, if given.")
    signature_ok: bool | None = Field(description="The checkpoint's signature, if a key was given.")


@router.post(
    "/audit/verification",
    response_model=VerificationOut,
    summary="Verify the audit chain",
    description="Recompute every entry's hash and link, compare the end with the recorded "
    "head, and — when a checkpoint kept outside the database is given — prove the chain still "
    "holds it (with its Ed25519 signature when a public key is given). Changes nothing. "
    "Auditors only.",
    responses=problems(400, 401, 403, 422),
)
def verification(
    app: Welfare, caller: Caller, lang: CallerLang, body: VerificationIn | None = None
) -> VerificationOut:
    body = body or VerificationIn()
    cp = None
    if body.checkpoint is not None:
        c = body.checkpoint
        cp = Checkpoint(c.seq, c.entry_hash, c.created_at, c.signature, c.public_key)
    v = svc.verify(
        app.engine,
        caller.account_id,
        app.service.clock(),
        cp,
        body.public_key_pem.encode() if body.public_key_pem is not None else None,
    )
    r = v.result
    return VerificationOut(
        ok=r.ok,
        checked=r.checked,
        head_seq=r.head_seq,
        head_hash=r.head_hash,
        broken_seq=r.broken_seq,
        problem=r.problem_in(lang),
        problem_code=r.problem_code,
        checkpoint_seq=cp.seq if cp else None,
        signature_ok=v.signature_ok,
    )


# --- dossier ---------------------------------------------------------------------------------


class DossierOut(BaseModel):
    """The whole case for the inspection committee; its export is recorded in the audit log."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "format": "union-welfare/dossier/v1",
                    "generated_at": "2026-03-02T02:00:00.000000Z",
                    "generated_by": "0192f7a0-…",
                    "case": {"id": "0192f7a0-…", "policy": "housing", "status": "paid"},
                    "member": {"id": "0192f7a0-…", "cccd_masked": "••••••••0001"},
                    "documents": [],
                    "tasks": [],
                    "decisions": [],
                    "payments": [],
                    "complaints": [],
                    "trail": [],
                    "verification": {"entries_checked": 3, "all_ok": True, "broken_seqs": []},
                    "sha256": HASH_EXAMPLE,
                    "audit_seq": 69,
                }
            ]
        }
    )
    format: str = Field(description="`union-welfare/dossier/v1`.")
    generated_at: str = Field(description="When (UTC, the audit chain's time format).")
    generated_by: str = Field(description="The auditor's account id.")
    case: dict[str, Any] = Field(
        description="The case: policy and rule version, status, amounts, flags, dates and the "
        "form (health fields included: auditors may read them)."
    )
    member: dict[str, Any] = Field(
        description="The member: id, name, CCCD masked to its last 4 digits, birth date, "
        "household, memberships."
    )
    documents: list[dict[str, Any]] = Field(description="Document metadata with SHA-256.")
    tasks: list[dict[str, Any]] = Field(description="Every task with its outcome.")
    decisions: list[dict[str, Any]] = Field(description="Every decision, vote and payment act.")
    payments: list[dict[str, Any]] = Field(description="Payments by tranche.")
    complaints: list[dict[str, Any]] = Field(description="Complaints and feedback on the case.")
    trail: list[dict[str, Any]] = Field(
        description="The decision trail with hash links; `content_ok`/`link_ok` per entry."
    )
    verification: dict[str, Any] = Field(
        description="`entries_checked`, `all_ok`, `broken_seqs` for the trail entries."
    )
    sha256: str = Field(
        description="SHA-256 of the canonical JSON of this document without `sha256` and "
        "`audit_seq`; recorded in the audit entry of the export."
    )
    audit_seq: int = Field(description="The audit entry (`dossier.exported`) of this export.")


@router.get(
    "/cases/{case_id}/dossier",
    response_model=DossierOut,
    summary="Export a case dossier",
    description="One JSON document with the case, the member (CCCD masked), documents "
    "(metadata and hashes), tasks, decisions, payments, complaints and the trail with its hash "
    "links and their check. The export is itself audited (`dossier.exported`, with the "
    "dossier's SHA-256). Auditors only; a case outside their units is 404.",
    responses=problems(401, 403, 404, 422),
)
def dossier(case_id: IdPath, app: Welfare, caller: Caller) -> DossierOut:
    d = export_dossier(app.service, caller.account_id, case_id)
    return DossierOut(**d.document, audit_seq=d.audit_seq)
