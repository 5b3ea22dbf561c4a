"""Peer 4: SpiffWorkflow 3.x running the same process as BPMN, its state kept in the same DB.

`welfare_case.bpmn` has a user task per human step and exclusive gateways for the routing.
Each step is one transaction, as in the engine: read the serialized workflow (row-locked on
PostgreSQL), deserialize, complete the ready user task, run the engine steps, serialize, write
it back, and append one hash-chained audit entry. No anti-abuse rule runs: Spiff has none.
"""

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow  # type: ignore[import-untyped]
from SpiffWorkflow.bpmn.parser import BpmnParser  # type: ignore[import-untyped]
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer  # type: ignore[import-untyped]
from SpiffWorkflow.util.task import TaskState  # type: ignore[import-untyped]

from bench.core import Figure, Latencies, RunContext, Section, percentile
from bench.dbs import Kind, fresh_db
from bench.floor_sql import Floor
from bench.lifecycles import NAMES
from bench.workload import HOUSING_STEPS, ILLNESS_STEPS, Lifecycle
from domain.adapters.db import wal_checkpointer

NAME = "spiff"
TITLE = "SpiffWorkflow 3.x with its state in the same database"
BPMN = Path(__file__).resolve().parent / "welfare_case.bpmn"


class SpiffRunner:
    def __init__(self, floor: Floor) -> None:
        parser = BpmnParser()
        parser.add_bpmn_file(str(BPMN))
        self.spec = parser.get_spec("welfare_case")
        self.ser = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure())
        self.db = floor
        self.state_bytes = 0
        floor.begin()
        floor.x(
            "CREATE TABLE IF NOT EXISTS spiff_workflow"
            " (id VARCHAR(36) PRIMARY KEY, state TEXT NOT NULL, version INTEGER NOT NULL)"
        )
        floor.commit()

    def _complete(self, wf: Any, data: dict[str, object]) -> str:
        [task] = wf.get_tasks(state=TaskState.READY, manual=True)
        task.set_data(**data)
        task.run()
        wf.do_engine_steps()
        return str(task.task_spec.name)

    def run(self, lc: Lifecycle, lat: Latencies) -> None:
        db = self.db
        wid = str(uuid.uuid4())
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        db.begin()
        wf = BpmnWorkflow(self.spec)
        wf.do_engine_steps()
        self._complete(wf, {"policy": lc.policy, "member": lc.member_id, "unit": lc.unit})
        db.x(
            "INSERT INTO spiff_workflow (id, state, version) VALUES (%s, %s, %s)",
            wid,
            self.ser.serialize_json(wf),
            0,
        )
        db.audit(
            now,
            [
                {
                    "actor_id": "officer",
                    "action": "case.submitted",
                    "case": wid,
                    "payload": {"case": wid},
                }
            ],
        )
        db.commit()
        lat.add("submit", time.perf_counter() - t0)
        steps = HOUSING_STEPS if lc.policy == "housing" else ILLNESS_STEPS
        lock = " FOR UPDATE" if db.pg else ""
        for i, step in enumerate(steps):
            t0 = time.perf_counter()
            now = datetime.now(UTC)
            db.begin()
            state, version = db.x(
                f"SELECT state, version FROM spiff_workflow WHERE id = %s{lock}", wid
            ).fetchone()
            wf = self.ser.deserialize_json(state)
            name = self._complete(wf, {"approved": True, "step": i})
            state = self.ser.serialize_json(wf)
            self.state_bytes = max(self.state_bytes, len(state))
            db.x(
                "UPDATE spiff_workflow SET state = %s, version = %s WHERE id = %s AND version = %s",
                state,
                version + 1,
                wid,
                version,
            )
            db.audit(
                now,
                [
                    {
                        "actor_id": step,
                        "action": "task.completed",
                        "case": wid,
                        "payload": {"task": name},
                    }
                ],
            )
            db.commit()
            lat.add("pay" if step.startswith("payment") else "decide", time.perf_counter() - t0)
        if not wf.is_completed():
            raise RuntimeError("SpiffWorkflow case did not complete")


def run(ctx: RunContext) -> Section:
    section = Section(NAME, TITLE)
    kinds: list[Kind] = ["sqlite", "postgres"] if ctx.postgres_url else ["sqlite"]
    n = ctx.size.spiff_lifecycles
    plan = [
        Lifecycle(i, "housing" if i % 4 == 0 else "illness", "CS-A", f"m{i}") for i in range(n + 8)
    ]
    for kind in kinds:
        with fresh_db(kind, "spiff", ctx.workdir, ctx.postgres_url) as bdb:
            engine = bdb.engine()
            raw: Any = engine.raw_connection()
            try:
                checkpointer = wal_checkpointer(engine)
                runner = SpiffRunner(
                    Floor(
                        raw.driver_connection,
                        kind == "postgres",
                        checkpointer.committed if checkpointer is not None else None,
                    )
                )
                for lc in plan[:8]:
                    runner.run(lc, Latencies())
                lat = Latencies()
                start = time.perf_counter()
                for lc in plan[8:]:
                    runner.run(lc, lat)
                seconds = time.perf_counter() - start
            finally:
                raw.close()
                engine.dispose()
        db = NAMES[kind]
        section.add(
            Figure(
                f"spiff.{kind}.lifecycles_per_s",
                f"{db}: complete lifecycles/s",
                n / seconds,
                "cases/s",
                explain="Cases from submission to payment per second with SpiffWorkflow holding "
                "the process state (JSON in the same database, one transaction per step).",
            )
        )
        section.add(
            Figure(
                f"spiff.{kind}.commands_per_s",
                f"{db}: steps/s",
                lat.count() / seconds,
                "steps/s",
                explain="Workflow steps (the engine's commands) per second.",
            )
        )
        section.add(
            Figure(
                f"spiff.{kind}.decide.p50_ms",
                f"{db}: one step p50",
                percentile(lat.by_kind["decide"], 50) * 1000,
                "ms",
                explain="Half of SpiffWorkflow's approval steps (its state read, the user task "
                "completed, its state and an audit row written) took at most this; compare the "
                "engine's decide p50, which also checks the rules and opens the next task.",
            )
        )
    section.notes.append(
        f"Serialized workflow state: up to {runner.state_bytes / 1024:.1f} KiB per case, rewritten "
        "whole at every step. SpiffWorkflow runs no eligibility or anti-abuse rule, opens no "
        "inbox task and writes no outbox event: it does less work per step than the engine."
    )
    return section
