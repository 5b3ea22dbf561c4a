"""The audit chain: canonical JSON, SHA-256 links, verification and signed checkpoints.

Each entry's hash covers a domain tag, the previous entry's hash and the canonical JSON of every
stored field, so changing any byte of any column — or deleting, inserting or reordering an
entry — breaks verification at that entry. The chain only proves anything against a head that
someone holds outside the database: hence checkpoints, signed with the auditors' Ed25519 key.
"""

import base64
import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64
DOMAIN_TAG = b"union-welfare/audit/v1\x00"


def _normalise(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, float):
        # Money is integer đồng; a float in an audit payload is a bug, not a rounding question.
        raise TypeError("floats are not allowed in audit payloads")
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, NFC strings, integers only: the same bytes everywhere."""
    return json.dumps(
        _normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def format_time(at: datetime) -> str:
    """UTC, microseconds, 'Z': the one textual form of a timestamp inside the chain."""
    if at.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor_id: str | None
    actor_role: str | None
    org_unit_id: str | None
    action: str
    entity_type: str
    entity_id: str
    policy: str | None
    policy_version: int | None
    payload: Mapping[str, Any]
    prev_hash: str
    entry_hash: str

    def fields(self) -> dict[str, Any]:
        """Everything the hash covers (all stored columns except the hash itself)."""
        return {
            "seq": self.seq,
            "at": format_time(self.at),
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "org_unit_id": self.org_unit_id,
            "action": self.action,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "policy": self.policy,
            "policy_version": self.policy_version,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
        }


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(
        DOMAIN_TAG + prev_hash.encode("ascii") + canonical_json(fields)
    ).hexdigest()


def seal(
    *,
    seq: int,
    prev_hash: str,
    at: datetime,
    actor_id: str | None,
    actor_role: str | None,
    org_unit_id: str | None,
    action: str,
    entity_type: str,
    entity_id: str,
    policy: str | None,
    policy_version: int | None,
    payload: Mapping[str, Any],
) -> AuditEntry:
    """A new entry linked to `prev_hash`; the payload is normalised the way it will be stored."""
    # Round-trip through canonical JSON so what we hash is exactly what reads back from the DB.
    stored_payload = json.loads(canonical_json(payload))
    stored_at = datetime.strptime(format_time(at), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    draft = AuditEntry(
        seq,
        stored_at,
        actor_id,
        actor_role,
        org_unit_id,
        action,
        entity_type,
        entity_id,
        policy,
        policy_version,
        stored_payload,
        prev_hash,
        "",
    )
    return AuditEntry(**{**draft.__dict__, "entry_hash": entry_hash(prev_hash, draft.fields())})


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None


def verify_chain(
    entries: Iterable[AuditEntry], *, start_seq: int = 1, start_prev: str = GENESIS
) -> VerifyResult:
    """Recompute every link; report the first entry whose hash, link or sequence is wrong."""
    expected_seq, prev = start_seq, start_prev
    checked = 0
    for e in entries:
        if e.seq != expected_seq:
            return VerifyResult(
                False,
                checked,
                expected_seq - 1,
                prev,
                e.seq,
                f"sequence gap: expected {expected_seq}, found {e.seq}",
            )
        if e.prev_hash != prev:
            return VerifyResult(
                False,
                checked,
                expected_seq - 1,
                prev,
                e.seq,
                "previous-hash link does not match the entry before it",
            )
        if entry_hash(e.prev_hash, e.fields()) != e.entry_hash:
            return VerifyResult(
                False,
                checked,
                expected_seq - 1,
                prev,
                e.seq,
                "content does not match its hash (the entry was altered)",
            )
        prev, expected_seq = e.entry_hash, expected_seq + 1
        checked += 1
    return VerifyResult(True, checked, expected_seq - 1, prev)


# --- checkpoints ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The chain head at a moment, to be kept outside the database (e-mail, paper, WORM store)."""

    seq: int
    entry_hash: str
    created_at: str
    signature: str | None = None  # base64 Ed25519 over the canonical JSON of the other fields
    public_key: str | None = None  # base64 raw public key, so a reader can tell which key signed

    def signed_bytes(self) -> bytes:
        return canonical_json(
            {"seq": self.seq, "entry_hash": self.entry_hash, "created_at": self.created_at}
        )

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def make_checkpoint(
    seq: int, head: str, now: datetime, private_key_pem: bytes | None = None
) -> Checkpoint:
    cp = Checkpoint(seq, head, format_time(now))
    if private_key_pem is None:
        return cp
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the checkpoint key must be an Ed25519 private key")
    raw_pub = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return Checkpoint(
        cp.seq,
        cp.entry_hash,
        cp.created_at,
        base64.b64encode(key.sign(cp.signed_bytes())).decode(),
        base64.b64encode(raw_pub).decode(),
    )


def checkpoint_signature_ok(cp: Checkpoint, public_key_pem: bytes) -> bool:
    if cp.signature is None:
        return False
    key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the checkpoint key must be an Ed25519 public key")
    try:
        key.verify(base64.b64decode(cp.signature), cp.signed_bytes())
    except InvalidSignature:
        return False
    return True


def new_signing_key() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) for the auditors: the private half never lives with IT."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public
