"""Lists of cases filed in one request (a Tết list): their record, and one digest of screening.

A list is a `case_list` row, written by `WelfareService.submit_list` in the list's own
transaction (its id is the cases' `batch_id`). Its `tally` says what screening made of the
list's cases: added to by every transaction that takes cases of the list out of `screening`
(inline at submission; the policy flows' `screen_many`; the relay's screening consumer; a
withdrawal before screening), under the list row's lock.

The transaction after which none of the list's cases is left in screening sets `screened_at`
and records the list's digest: one `case_list.screened` event (what the notifier turns into
one mail to the officer and one to each approver with new tasks, instead of one a case) and
one `batch.screened` audit entry. The lock comes first, the "any case still in screening?"
read after it: on PostgreSQL (READ COMMITTED) two transactions screening the last cases of a
list queue on the lock, and the second one's read sees what the first committed, so exactly
one of them finds nothing left. A redelivered batch finds its cases screened already and
takes none out of screening: it adds nothing and announces nothing.

A list none of whose items was accepted has nothing to screen: its row is written screened,
and nothing is announced (the answer to the request listed every refusal).

A known gap: a case whose screening keeps failing stays in screening and holds its list back.
Its `case.submitted` is retried by the relay and goes dead after the last attempt (≈ 40 min
with the defaults); nothing sweeps cases left in screening. Until an administrator retries
that event (`welfare outbox retry`, once the cause is fixed) or the officer withdraws the case,
the list is not announced: neither its officer nor its approvers get a mail about it (the
other cases' tasks are in the approvers' inboxes all the same).

The digest holds counts, roles, units and case ids only — never a member's name or data.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from domain import events as ev
from domain.engine.context import SYSTEM
from domain.model import AuditIntent, CaseAggregate, CaseStatus

REJECTED_SHOWN = 50
"""Cases rejected at screening named in a digest; the rest are only counted."""


def new_tally() -> dict[str, Any]:
    return {"statuses": {}, "tasks": {}, "rejected": []}


def tally_key(role: str, level: str, unit: str) -> str:
    return f"{role}|{level}|{unit}"


def add_to_tally(tally: Mapping[str, Any], aggs: Iterable[CaseAggregate]) -> dict[str, Any]:
    """`tally` with these cases, which have just left screening, added (a new dict)."""
    statuses: dict[str, int] = dict(tally.get("statuses") or {})
    tasks: dict[str, int] = dict(tally.get("tasks") or {})
    rejected: list[str] = list(tally.get("rejected") or [])
    for agg in aggs:
        status = agg.case.status.value
        statuses[status] = statuses.get(status, 0) + 1
        # A case leaves screening with no task before, so its open tasks are the first ones.
        for task in agg.open_tasks():
            key = tally_key(task.role.value, task.level.value, task.org_unit_id)
            tasks[key] = tasks.get(key, 0) + 1
        if agg.case.status is CaseStatus.REJECTED and len(rejected) < REJECTED_SHOWN:
            rejected.append(agg.case.id)
    return {"statuses": statuses, "tasks": tasks, "rejected": rejected}


def digest(row: Mapping[str, Any], tally: Mapping[str, Any]) -> dict[str, ev.JsonValue]:
    """The `case_list.screened` event's data: the list, and what screening made of it."""
    tasks: list[ev.JsonValue] = []
    for key, count in sorted((tally.get("tasks") or {}).items()):
        role, level, unit = key.split("|", 2)
        tasks.append({"role": role, "level": level, "unit": unit, "count": int(count)})
    statuses: dict[str, ev.JsonValue] = {
        str(k): int(v) for k, v in sorted((tally.get("statuses") or {}).items())
    }
    rejected: list[ev.JsonValue] = [str(c) for c in tally.get("rejected") or []]
    return {
        ev.LIST: row["id"],
        "policy": row["policy"],
        "policy_version": int(row["policy_version"]),
        "unit": row["unit_id"],
        "campaign": row["campaign_id"],
        "submitted_by": row["submitted_by"],
        "items": int(row["items"]),
        "accepted": int(row["accepted"]),
        "statuses": statuses,
        "tasks": tasks,
        "rejected": rejected,
    }


def announce(
    row: Mapping[str, Any], tally: Mapping[str, Any], now: datetime
) -> tuple[AuditIntent, ev.Event]:
    """The audit entry and the outbox event of a list whose screening is complete."""
    data = digest(row, tally)
    payload = {
        k: v for k, v in data.items() if k not in (ev.LIST, "policy", "policy_version", "unit")
    }
    audit = AuditIntent(
        action="batch.screened",
        entity_type="batch",
        entity_id=row["id"],
        actor_id=SYSTEM.account_id,
        actor_role=None,
        org_unit_id=row["unit_id"],
        policy=row["policy"],
        policy_version=int(row["policy_version"]),
        payload=payload,
    )
    return audit, ev.Event(type=ev.CASE_LIST_SCREENED, occurred_at=now, data=data)
