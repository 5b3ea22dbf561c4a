"""The audit log is append-only and hash-chained: tampering is refused, or at least detected."""

import inspect
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from domain.adapters.repository import AUDIT
from domain.audit import (
    GENESIS,
    AuditEntry,
    Checkpoint,
    VerifyResult,
    canonical_json,
    checkpoint_signature_ok,
    new_signing_key,
)
from domain.bootstrap import bootstrap
from domain.config import Settings
from domain.roles import OrgLevel
from domain.service import queries
from domain.service.queries import (
    case_trail,
    checkpoint,
    iter_audit,
    verify_against_checkpoint,
    verify_audit,
)
from tests.support import DEFS, Clock, Database, World


def _some_history(world: World) -> str:
    member = world.member()
    sub = world.submit("housing", "repair", member)
    world.decide(sub.case_id, "chair_a")
    return str(sub.case_id)


def _tamper(db: Database, sql: str) -> None:
    """What a DBA could do: bypass the append-only trigger, then edit."""
    with db.engine.begin() as conn:
        if db.kind == "postgres":
            conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change")
            conn.exec_driver_sql(sql)
            conn.exec_driver_sql("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_no_change")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_entry_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_entry_no_delete")
            conn.exec_driver_sql(sql)


class TestAppendOnly:
    def test_update_of_an_audit_entry_is_refused_by_the_database(
        self, world: World, db: Database
    ) -> None:
        _some_history(world)
        with pytest.raises(DBAPIError), db.engine.begin() as conn:
            conn.execute(text("UPDATE audit_entry SET action = 'x' WHERE seq = 1"))
        assert verify_audit(world.app.engine).ok

    def test_delete_of_an_audit_entry_is_refused_by_the_database(
        self, world: World, db: Database
    ) -> None:
        _some_history(world)
        with pytest.raises(DBAPIError), db.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_entry WHERE seq = 1"))
        assert verify_audit(world.app.engine).ok


class TestTamperDetection:
    def test_editing_one_byte_of_a_payload_names_that_entry(
        self, world: World, db: Database
    ) -> None:
        case_id = _some_history(world)
        target = case_trail(world.app.engine, case_id)[1].seq
        # One byte: "passed" → "pas5ed" in the stored canonical JSON text.
        _tamper(
            db,
            f"UPDATE audit_entry SET payload = replace(payload, 'passed', 'pas5ed') WHERE seq = {target}",
        )
        result = verify_audit(world.app.engine)
        assert not result.ok
        assert result.broken_seq == target
        assert "altered" in (result.problem or "")

    def test_editing_the_actor_of_an_entry_names_that_entry(
        self, world: World, db: Database
    ) -> None:
        _some_history(world)
        _tamper(db, "UPDATE audit_entry SET actor_id = 'someone-else' WHERE seq = 3")
        assert verify_audit(world.app.engine).broken_seq == 3

    def test_deleting_an_entry_in_the_middle_is_detected(self, world: World, db: Database) -> None:
        _some_history(world)
        _tamper(db, "DELETE FROM audit_entry WHERE seq = 5")
        result = verify_audit(world.app.engine)
        assert not result.ok
        assert result.broken_seq == 6

    def test_deleting_the_newest_entries_is_detected_against_the_head(
        self, world: World, db: Database
    ) -> None:
        _some_history(world)
        _tamper(db, "DELETE FROM audit_entry WHERE seq = (SELECT max(seq) FROM audit_entry)")
        result = verify_audit(world.app.engine)
        assert not result.ok
        assert "removed" in (result.problem or "")

    def test_rewriting_the_whole_chain_is_caught_by_a_checkpoint_kept_outside(
        self, world: World, db: Database
    ) -> None:
        _some_history(world)
        private, public = new_signing_key()
        cp = checkpoint(world.app.engine, datetime.now(UTC), private)
        assert checkpoint_signature_ok(cp, public)
        forged = Checkpoint(cp.seq, "f" * 64, cp.created_at, cp.signature, cp.public_key)
        assert not checkpoint_signature_ok(forged, public)
        # An attacker edits entry 2 and recomputes every later hash and the head.
        from domain.audit import seal
        from domain.service.queries import iter_audit

        entries = list(iter_audit(world.app.engine))
        prev = entries[0].entry_hash
        rewritten = [entries[0]]
        for e in entries[1:]:
            payload = dict(e.payload)
            if e.seq == 2:
                payload["tampered"] = True
            new = seal(
                seq=e.seq,
                prev_hash=prev,
                at=e.at,
                actor_id=e.actor_id,
                actor_role=e.actor_role,
                org_unit_id=e.org_unit_id,
                action=e.action,
                entity_type=e.entity_type,
                entity_id=e.entity_id,
                policy=e.policy,
                policy_version=e.policy_version,
                payload=payload,
            )
            rewritten.append(new)
            prev = new.entry_hash
        for e in rewritten[1:]:
            _tamper(
                db,
                "UPDATE audit_entry SET payload = '"
                + json.dumps(
                    e.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                ).replace("'", "''")
                + f"', prev_hash = '{e.prev_hash}', "
                f"entry_hash = '{e.entry_hash}' WHERE seq = {e.seq}",
            )
            if db.kind == "sqlite":
                with db.engine.begin() as conn:  # put the triggers back for the next edit
                    for verb in ("UPDATE", "DELETE"):
                        conn.exec_driver_sql(
                            f"CREATE TRIGGER audit_entry_no_{verb.lower()} BEFORE {verb} ON audit_entry "
                            f"BEGIN SELECT RAISE(ABORT, 'append-only'); END"
                        )
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE audit_head SET entry_hash = '{prev}'")
        assert verify_audit(world.app.engine).ok  # self-consistent after a full rewrite...
        result = verify_against_checkpoint(world.app.engine, cp)
        assert not result.ok
        assert result.broken_seq == cp.seq


def _seal_again(e: AuditEntry, **changes: Any) -> AuditEntry:
    """The entry with `changes`, sealed on its own prev_hash: a consistent forgery."""
    from domain.audit import seal

    fields = {name: getattr(e, name) for name in inspect.signature(seal).parameters}
    return seal(**{**fields, **changes})


class TestTheTail:
    """The newest entries are where a chain check meets the recorded head."""

    def test_appends_while_verifying_are_not_taken_for_removed_entries(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _some_history(world)
        read_rows = queries._verify_chain_rows

        def rows_then_append(*args: Any) -> VerifyResult:
            result = read_rows(*args)
            _some_history(world)  # committed after the rows were read, before the head is
            return result

        monkeypatch.setattr(queries, "_verify_chain_rows", rows_then_append)
        result = verify_audit(world.app.engine)
        assert result.ok, result.problem
        monkeypatch.undo()
        assert verify_audit(world.app.engine).head_seq > result.head_seq

    def test_appends_before_the_rows_are_read_are_verified_with_them(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _some_history(world)
        read_rows = queries._verify_chain_rows
        before = queries._recorded_head(world.app.engine)

        def append_then_rows(*args: Any) -> VerifyResult:
            _some_history(world)  # committed after the head was first read
            return read_rows(*args)

        monkeypatch.setattr(queries, "_verify_chain_rows", append_then_rows)
        result = verify_audit(world.app.engine)
        assert result.ok, result.problem
        assert result.head_seq > before[0]

    def test_rewriting_the_newest_entry_and_its_hash_is_detected_against_the_head(
        self, world: World, db: Database
    ) -> None:
        _some_history(world)
        newest = list(iter_audit(world.app.engine))[-1]
        forged = _seal_again(newest, actor_id="someone-else")
        _tamper(
            db,
            f"UPDATE audit_entry SET actor_id = 'someone-else', entry_hash = '{forged.entry_hash}'"
            f" WHERE seq = {newest.seq}",
        )
        result = verify_audit(world.app.engine)
        assert not result.ok
        assert result.broken_seq == newest.seq
        assert "rewritten" in (result.problem or "")

    def test_entries_added_past_the_head_around_the_engine_are_detected(
        self, world: World, db: Database
    ) -> None:
        _some_history(world)
        newest = list(iter_audit(world.app.engine))[-1]
        extra = _seal_again(newest, seq=newest.seq + 1, prev_hash=newest.entry_hash)
        row = {col.name: getattr(extra, col.name) for col in AUDIT.c}
        with db.engine.begin() as conn:
            conn.execute(AUDIT.insert(), {**row, "payload": canonical_json(extra.payload).decode()})
        result = verify_audit(world.app.engine)
        assert not result.ok
        assert result.broken_seq == newest.seq + 1
        assert "past the recorded head" in (result.problem or "")


class TestCheckpointOfAnEmptyChain:
    def test_it_still_verifies_once_entries_exist(
        self, db: Database, tmp_path: Path, clock: Clock
    ) -> None:
        engine = db.engine
        app = bootstrap(
            Settings(database_url=db.url, definitions_dir=DEFS, data_dir=tmp_path),
            engine=engine,
            clock=clock,
        )
        cp = checkpoint(engine, datetime.now(UTC))
        assert (cp.seq, cp.entry_hash) == (0, GENESIS)
        assert verify_against_checkpoint(engine, cp).ok
        app.admin.add_org_unit("test", "VN", "Tổng Liên đoàn", OrgLevel.FEDERATION, None)
        result = verify_against_checkpoint(engine, cp)
        assert result.ok, result.problem
        assert result.head_seq >= 1
        # A checkpoint claiming another start is still refused.
        other = Checkpoint(0, "f" * 64, cp.created_at)
        assert "rewritten" in (verify_against_checkpoint(engine, other).problem or "")


def test_cli_audit_verify_exits_1_and_names_the_broken_entry(
    world: World, db: Database, tmp_path: Path
) -> None:
    if db.kind != "sqlite":
        pytest.skip("the CLI is exercised on the embedded default")
    _some_history(world)
    env = {**os.environ, "WELFARE_DATABASE_URL": db.url, "WELFARE_LANG": "en"}
    ok = subprocess.run(
        [sys.executable, "-m", "domain.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "Audit chain verified" in ok.stdout
    # Exactly one byte: the third character of entry #4's stored payload.
    _tamper(
        db,
        "UPDATE audit_entry SET payload = substr(payload, 1, 2) || 'Z' || substr(payload, 4) WHERE seq = 4",
    )
    bad = subprocess.run(
        [sys.executable, "-m", "domain.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "AUDIT CHAIN BROKEN at entry #4" in bad.stdout
    vi = subprocess.run(
        [sys.executable, "-m", "domain.cli", "audit", "verify"],
        env={**env, "WELFARE_LANG": "vi"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "CHUỖI NHẬT KÝ BỊ HỎNG tại mục #4: nội dung không khớp với mã băm" in vi.stdout
