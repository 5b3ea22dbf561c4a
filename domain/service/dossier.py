"""A case dossier for the inspection committee: everything about one case in one document.

The dossier holds the case (form included: auditors are among the roles that may read health
details), the member with the CCCD masked, document metadata and hashes, tasks, decisions,
payments, complaints, the decision trail with its hash links, and a check of every trail entry.

Exporting is itself audited (`dossier.exported`, ids and the dossier's SHA-256 only), in its own
transaction, before the dossier is handed out: an export that could not be recorded is not
given. The document is JSON-ready (times are strings in the audit chain's UTC form), and its
`sha256` is the SHA-256 of the canonical JSON (`domain.audit.canonical_json`) of the document
without the `sha256` key, so a printed or e-mailed copy can be checked against the audit log.
"""

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from domain.adapters.db import READ_ONLY
from domain.adapters.repository import COMPLAINT, MEMBER, MEMBERSHIP, TASK, Repository
from domain.audit import canonical_json, format_time
from domain.cccd import mask_cccd
from domain.model import AuditIntent
from domain.roles import Role
from domain.service.audit_search import auditor_scope, require_case_in_scope
from domain.service.queries import case_audit_entries, verify_entries
from domain.service.welfare import WelfareService

FORMAT = "union-welfare/dossier/v1"


def _t(at: datetime | None) -> str | None:
    return None if at is None else format_time(at)


def _d(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


@dataclass(frozen=True)
class Dossier:
    document: dict[str, Any]
    sha256: str
    audit_seq: int  # the audit entry recording this export


def export_dossier(service: WelfareService, account_id: str, case_id: str) -> Dossier:
    """Build the dossier of a case for an auditor in scope, and record the export."""
    now = service.clock()
    engine = service.engine
    with engine.connect().execution_options(**READ_ONLY) as conn:
        scope = auditor_scope(conn, account_id, now)
        unit = require_case_in_scope(conn, scope, case_id)
        repo = Repository(conn)
        agg = repo.load_case(case_id, lock=False)
        c = agg.case
        member = conn.execute(select(MEMBER).where(MEMBER.c.id == c.member_id)).mappings().one()
        memberships = list(
            conn.execute(
                select(MEMBERSHIP)
                .where(MEMBERSHIP.c.member_id == c.member_id)
                .order_by(MEMBERSHIP.c.joined_on)
            ).mappings()
        )
        complaints = list(
            conn.execute(
                select(COMPLAINT)
                .where(COMPLAINT.c.case_id == case_id)
                .order_by(COMPLAINT.c.filed_at)
            ).mappings()
        )
        tasks = list(
            conn.execute(
                select(TASK).where(TASK.c.case_id == case_id).order_by(TASK.c.opened_at)
            ).mappings()
        )
        entries = case_audit_entries(conn, case_id)
    checks = {c.seq: c for c in verify_entries(engine, entries)}
    doc: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": _t(now),
        "generated_by": account_id,
        "case": {
            "id": c.id,
            "policy": c.policy,
            "policy_version": c.policy_version,
            "subtype": c.subtype,
            "unit_id": unit,
            "campaign_id": c.campaign_id,
            "status": c.status.value,
            "current_step": c.current_step,
            "event_date": _d(c.event_date),
            "submitted_at": _t(c.submitted_at),
            "submitted_by": c.submitted_by,
            "entitled_amount": c.entitled_amount,
            "approved_amount": c.approved_amount,
            "paid_amount": c.paid_amount,
            "flags": list(c.flags),
            "form": dict(c.form),
            "closed_at": _t(c.closed_at),
            "outcome_reason": c.outcome_reason,
        },
        "member": {
            "id": member["id"],
            "full_name": member["full_name"],
            "cccd_masked": mask_cccd(member["cccd"]),
            "dob": _d(member["dob"]),
            "sex": member["sex"],
            "household_key": member["household_key"],
            "memberships": [
                {
                    "unit_id": m["unit_id"],
                    "joined_on": _d(m["joined_on"]),
                    "left_on": _d(m["left_on"]),
                }
                for m in memberships
            ],
        },
        "documents": [
            {
                "id": d.id,
                "kind": d.kind,
                "filename": d.filename,
                "sha256": d.sha256,
                "size": d.size,
                "content_type": d.content_type,
                "sensitive": d.sensitive,
                "added_by": d.added_by,
                "added_at": _t(d.added_at),
            }
            for d in agg.documents
        ],
        "tasks": [
            {
                "id": x["id"],
                "step": x["step"],
                "kind": x["kind"],
                "role": x["role"],
                "org_unit_id": x["org_unit_id"],
                "status": x["status"],
                "opened_at": _t(x["opened_at"]),
                "due_at": _t(x["due_at"]),
                "closed_at": _t(x["closed_at"]),
                "outcome": x["outcome"],
                "assignee_id": x["assignee_id"],
                "escalation": x["escalation"],
            }
            for x in tasks
        ],
        "decisions": [
            {
                "id": d.id,
                "task_id": d.task_id,
                "step": d.step,
                "actor_id": d.actor_id,
                "role": d.role.value if d.role else None,
                "org_unit_id": d.org_unit_id,
                "action": d.action,
                "amount": d.amount,
                "reason": d.reason,
                "at": _t(d.at),
            }
            for d in agg.decisions
        ],
        "payments": [
            {
                "id": p.id,
                "tranche": p.tranche,
                "amount": p.amount,
                "method": p.method,
                "reference": p.reference,
                "paid_by": p.paid_by,
                "paid_at": _t(p.paid_at),
            }
            for p in agg.payments
        ],
        "complaints": [
            {
                "id": k["id"],
                "kind": k["kind"],
                "status": k["status"],
                "filed_by": k["filed_by"],
                "filed_at": _t(k["filed_at"]),
                "handling_unit_id": k["handling_unit_id"],
                "text": k["text"],
                "resolution": k["resolution"],
                "resolved_by": k["resolved_by"],
                "resolved_at": _t(k["resolved_at"]),
            }
            for k in complaints
        ],
        "trail": [
            {
                "seq": e.seq,
                "at": _t(e.at),
                "action": e.action,
                "entity_type": e.entity_type,
                "entity_id": e.entity_id,
                "actor_id": e.actor_id,
                "actor_role": e.actor_role,
                "org_unit_id": e.org_unit_id,
                "policy": e.policy,
                "policy_version": e.policy_version,
                "payload": dict(e.payload),
                "prev_hash": e.prev_hash,
                "entry_hash": e.entry_hash,
                "content_ok": checks[e.seq].content_ok,
                "link_ok": checks[e.seq].link_ok,
            }
            for e in entries
        ],
        "verification": {
            "entries_checked": len(entries),
            "all_ok": all(x.ok for x in checks.values()),
            "broken_seqs": [s for s, x in sorted(checks.items()) if not x.ok],
        },
    }
    digest = hashlib.sha256(canonical_json(doc)).hexdigest()
    sensitive = [d.id for d in agg.documents if d.sensitive]
    with service._uow() as uow:
        # Re-check the role inside the writing transaction: a grant revoked meanwhile stops here.
        auditor_scope(uow.conn, account_id, now)
        uow.record(
            audit=[
                AuditIntent(
                    action="dossier.exported",
                    entity_type="case",
                    entity_id=case_id,
                    actor_id=account_id,
                    actor_role=Role.AUDITOR.value,
                    org_unit_id=unit,
                    policy=c.policy,
                    policy_version=c.policy_version,
                    payload={"case": case_id, "sha256": digest, "sensitive_documents": sensitive},
                )
            ]
        )
        written = uow.commit(now)
    return Dossier({**doc, "sha256": digest}, digest, written[-1].seq)
