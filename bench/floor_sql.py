"""The floor: the rows the engine writes per command, issued as plain SQL on the DB-API.

Per command it reads the case row (no engine can decide without it), takes the household
lock (PostgreSQL; SQLite's writers are serialised by BEGIN IMMEDIATE, as in the engine), writes the case, task, decision, document, payment, budget and claim-key rows the unit of
work writes, appends the audit entries (SHA-256 chained, under the head lock) and the outbox
rows — in one transaction, as the engine does. It evaluates no rule and builds no object: what
no engine on the same database can beat.
"""

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from bench.core import Latencies
from bench.workload import (
    HOSPITAL_AMOUNT,
    HOUSING_DOCS,
    HOUSING_STEPS,
    ILLNESS_DOCS,
    ILLNESS_STEPS,
    REPAIR_AMOUNT,
    Lifecycle,
    actor_for,
    doc_hash,
)
from bench.world import UPPER_OF, WorldSpec

ROLE_OF = {
    "grassroots_review": ("grassroots_chair", "grassroots"),
    "upper_survey": ("upper_chair", "upper"),
    "province_decision": ("province_standing", "province"),
    "payment": ("treasurer", "province"),
    "payment_grassroots": ("treasurer", "grassroots"),
}


class Floor:
    """Plain-SQL lifecycles on one DB-API connection (sqlite3 or psycopg)."""

    def __init__(
        self, dbapi_conn: Any, postgres: bool, on_commit: Callable[[], None] | None = None
    ) -> None:
        self.c = dbapi_conn
        self.pg = postgres
        self.cur = dbapi_conn.cursor()
        # The engine's background WAL checkpointer (SQLite), told of each commit as the
        # engine's own commits tell it: the floor and the peers checkpoint as the engine does.
        self.on_commit = on_commit

    # --- plumbing --------------------------------------------------------------------

    def _v(self, value: Any) -> Any:
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        if self.pg:
            return value
        if isinstance(value, datetime):
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return int(value)
        return value

    def _sql(self, sql: str) -> str:
        return sql if self.pg else sql.replace("%s", "?")

    def x(self, sql: str, *params: Any) -> Any:
        self.cur.execute(self._sql(sql), [self._v(p) for p in params])
        return self.cur

    def xmany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cur.executemany(self._sql(sql), [[self._v(p) for p in r] for r in rows])

    def begin(self) -> None:
        if not self.pg:
            self.cur.execute("BEGIN IMMEDIATE")

    def lock_household(self, key: str) -> None:
        if self.pg:
            self.x("UPDATE household SET version = version + 1 WHERE key = %s", key)

    def commit(self) -> None:
        self.c.commit() if self.pg else self.cur.execute("COMMIT")
        if self.on_commit is not None:
            self.on_commit()

    def insert(self, table: str, row: dict[str, Any]) -> None:
        cols = ", ".join(row)
        marks = ", ".join(["%s"] * len(row))
        self.x(f"INSERT INTO {table} ({cols}) VALUES ({marks})", *row.values())

    def audit(self, now: datetime, entries: list[dict[str, Any]]) -> None:
        """Append entries to the hash chain under the head lock, as the unit of work does."""
        lock = " FOR UPDATE" if self.pg else ""
        seq, head = self.x(f"SELECT seq, entry_hash FROM audit_head WHERE id = 1{lock}").fetchone()
        rows = []
        for e in entries:
            seq += 1
            payload = json.dumps(e["payload"], sort_keys=True, separators=(",", ":"))
            fields = json.dumps(
                {**e, "payload": payload, "seq": seq, "at": now.isoformat()}, sort_keys=True
            )
            digest = hashlib.sha256(f"{head}{fields}".encode()).hexdigest()
            rows.append(
                [
                    seq,
                    now,
                    e["actor_id"],
                    e["action"],
                    "case",
                    e["case"],
                    "x",
                    1,
                    payload,
                    head,
                    digest,
                ]
            )
            head = digest
        self.xmany(
            "INSERT INTO audit_entry (seq, at, actor_id, action, entity_type, entity_id, policy,"
            " policy_version, payload, prev_hash, entry_hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        self.x("UPDATE audit_head SET seq = %s, entry_hash = %s WHERE id = 1", seq, head)

    def outbox(self, now: datetime, case_id: str, types: list[str]) -> None:
        self.xmany(
            "INSERT INTO outbox (id, type, case_id, occurred_at, data, status, attempts,"
            " available_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                [str(uuid.uuid4()), t, case_id, now, {"case": case_id}, "pending", 0, now]
                for t in types
            ],
        )

    def task(self, now: datetime, case_id: str, step: str, unit: str, tranche: int | None) -> str:
        role, level = ROLE_OF[step]
        tid = str(uuid.uuid4())
        self.insert(
            "task",
            {
                "id": tid,
                "case_id": case_id,
                "step": step,
                "kind": "payment" if step.startswith("payment") else "approval",
                "role": role,
                "level": level,
                "org_unit_id": unit,
                "opened_at": now,
                "clock": "working_days",
                "sla_seconds": 5 * 86400,
                "clock_used_before": 0,
                "remind_at": now,
                "due_at": now,
                "escalate_at": now,
                "approvals_needed": 1,
                "committee": False,
                "status": "open",
                "escalation": "none",
                "next_check_at": now,
                "tranche": tranche,
            },
        )
        return tid

    # --- the lifecycle ------------------------------------------------------------------

    def run(self, spec: WorldSpec, lc: Lifecycle, lat: Latencies) -> None:
        housing = lc.policy == "housing"
        steps = HOUSING_STEPS if housing else ILLNESS_STEPS
        total = REPAIR_AMOUNT if housing else HOSPITAL_AMOUNT
        hh = f"hh-{lc.member_id}"
        units = {"grassroots": lc.unit, "upper": UPPER_OF[lc.unit], "province": "LC"}
        budget = ("LC", "mai_am") if housing else (lc.unit, "phuc_loi")
        officer = spec.accounts[f"officer_{lc.unit}"]

        t0 = time.perf_counter()
        now = datetime.now(UTC)
        case_id = str(uuid.uuid4())
        self.begin()
        self.lock_household(hh)
        self.insert(
            "welfare_case",
            {
                "id": case_id,
                "policy": lc.policy,
                "policy_version": 1,
                "subtype": "repair" if housing else "hospital",
                "member_id": lc.member_id,
                "household_key": hh,
                "unit_id": lc.unit,
                "submitted_by": officer,
                "submitter_person": officer,
                "submitted_at": now,
                "event_date": now.date(),
                "form": {"n": lc.n},
                "entitled_amount": total,
                "paid_amount": 0,
                "status": "in_review",
                "current_step": steps[0],
                "paused_clock_used": 0,
                "flags": [],
                "reserved_amount": 0,
                "version": 0,
            },
        )
        task_id = self.task(now, case_id, steps[0], units[ROLE_OF[steps[0]][1]], None)
        self.xmany(
            "INSERT INTO document (id, case_id, kind, filename, sha256, size, content_type,"
            " sensitive, added_by, added_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                [
                    str(uuid.uuid4()),
                    case_id,
                    k,
                    f"{k}.pdf",
                    doc_hash(lc.n, k),
                    120_000,
                    "application/pdf",
                    False,
                    officer,
                    now,
                ]
                for k in (HOUSING_DOCS if housing else ILLNESS_DOCS)
            ],
        )
        self.x("DELETE FROM claim_key WHERE case_id = %s AND key <> %s", case_id, f"k{lc.n}")
        self.x("INSERT INTO claim_key (key, case_id) VALUES (%s, %s)", f"k{lc.n}", case_id)
        self.audit(
            now,
            [
                {
                    "actor_id": officer,
                    "action": "case.submitted",
                    "case": case_id,
                    "payload": {"case": case_id, "amount": total},
                },
                {
                    "actor_id": "system",
                    "action": "case.screened",
                    "case": case_id,
                    "payload": {"case": case_id, "route": steps[0]},
                },
            ],
        )
        self.outbox(now, case_id, ["case.submitted", "task.opened", "case.screened"])
        self.commit()
        lat.add("submit", time.perf_counter() - t0)

        paid = 0
        for i, step in enumerate(steps):
            actor = actor_for(spec, lc, step)
            nxt = steps[i + 1] if i + 1 < len(steps) else None
            t0 = time.perf_counter()
            now = datetime.now(UTC)
            self.begin()
            self.lock_household(hh)
            lock = " FOR UPDATE" if self.pg else ""
            row = self.x(
                f"SELECT version, status, paid_amount FROM welfare_case WHERE id = %s{lock}",
                case_id,
            ).fetchone()
            assert row[0] == i  # the version: one write per command so far
            events = ["task.decided"]
            if step.startswith("payment"):
                amount = total // 2 if housing and paid == 0 else total - paid
                paid += amount
                self.x(
                    "INSERT INTO payment (id, case_id, tranche, amount, method, reference, paid_by,"
                    " paid_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    str(uuid.uuid4()),
                    case_id,
                    i,
                    amount,
                    "bank_transfer",
                    f"UNC-{lc.n}-{i}",
                    actor,
                    now,
                )
                self.x(
                    "UPDATE budget SET reserved = reserved - %s, spent = spent + %s"
                    " WHERE org_unit_id = %s AND year = %s AND fund = %s AND reserved >= %s",
                    amount,
                    amount,
                    budget[0],
                    now.year,
                    budget[1],
                    amount,
                )
                events = ["case.payment_recorded", "case.paid" if nxt is None else "task.opened"]
                status = "paid" if nxt is None else "approved"
            else:
                status = "in_review"
                if nxt is not None and nxt.startswith("payment"):
                    self.x(
                        "UPDATE budget SET reserved = reserved + %s WHERE org_unit_id = %s"
                        " AND year = %s AND fund = %s AND amount - reserved - spent >= %s",
                        total,
                        budget[0],
                        now.year,
                        budget[1],
                        total,
                    )
                    status = "approved"
                    events.append("case.approved")
                events.append("task.opened")
            self.x(
                "UPDATE welfare_case SET status = %s, current_step = %s, approved_amount = %s,"
                " paid_amount = %s, reserved_amount = %s, version = %s WHERE id = %s AND version = %s",
                status,
                nxt or step,
                total,
                paid,
                total - paid,
                i + 1,
                case_id,
                i,
            )
            self.x(
                "UPDATE task SET status = 'done', closed_at = %s, outcome = %s, next_check_at = NULL"
                " WHERE id = %s",
                now,
                "paid" if step.startswith("payment") else "approved",
                task_id,
            )
            self.x(
                "INSERT INTO decision (id, case_id, task_id, step, actor_id, person_key, role,"
                " org_unit_id, action, amount, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                str(uuid.uuid4()),
                case_id,
                task_id,
                step,
                actor,
                actor,
                ROLE_OF[step][0],
                units[ROLE_OF[step][1]],
                "pay" if step.startswith("payment") else "approve",
                total,
                now,
            )
            if nxt is not None:
                task_id = self.task(
                    now, case_id, nxt, units[ROLE_OF[nxt][1]], 2 if nxt == step else None
                )
            self.audit(
                now,
                [
                    {
                        "actor_id": actor,
                        "action": "task.decided",
                        "case": case_id,
                        "payload": {"case": case_id, "step": step},
                    }
                ],
            )
            self.outbox(now, case_id, events)
            self.commit()
            lat.add("pay" if step.startswith("payment") else "decide", time.perf_counter() - t0)
