"""The Alembic migrations and the SQLModel tables describe the same schema, on both databases.

Several people add tables at once; without this a column added to tables.py but missing from a
migration would only show as a failure on a production upgrade.
"""

from datetime import date, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from domain.adapters.migrate import alembic_config, script_head, upgrade
from domain.adapters.repository import CASE, CASE_LIST, OUTBOX
from domain.adapters.tables import metadata
from domain.service.commands import CaseItem, SubmitList
from domain.service.queries import verify_audit
from tests.support import Database, World, query_plan


def test_migrated_schema_matches_the_tables(db: Database) -> None:
    upgrade(db.engine)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_twice_is_a_no_op(db: Database) -> None:
    upgrade(db.engine)
    upgrade(db.engine)
    with db.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    assert version == _head()


def test_the_head_read_without_alembic_is_alembics() -> None:
    # `upgrade` skips Alembic when the database is at this revision: it must be the head.
    assert script_head() == _head()


def test_a_database_at_an_older_revision_is_still_upgraded(db: Database) -> None:
    upgrade(db.engine, "0003")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0003"
    upgrade(db.engine)
    with db.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert (version, diff) == (_head(), [])


def _head() -> str:
    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def test_lists_filed_before_0005_get_their_row_and_one_still_screening_is_announced(
    world: World,
) -> None:
    """Downgraded to 0004 (no case_list) with one list screened and one still in screening,
    then upgraded: both lists get a row; the first counts as screened (nothing announced for
    it), the second is announced once its last case is screened."""
    engine = world.app.engine
    season = world.campaign("tet", "TET-MIGRATE")

    def file_list(n: int) -> list[str]:
        items = [
            CaseItem(
                member_id=world.member(dob=date(1960, 1, 1) + timedelta(days=97 * world.serial)),
                subtype="standard",
                event_date=world.clock.today(),
                form={"criterion": "low_income"},
                documents=world.docs("tet", "standard"),
            )
            for _ in range(n)
        ]
        results = world.service.submit_list(
            world.accounts["officer_a"],
            SubmitList(policy="tet", unit_id="CS-A", campaign_id=season, items=items),
        )
        return [r.case_id for r in results if r.case_id]

    done = file_list(2)
    world.service.screen_inline = False
    waiting = file_list(3)
    world.service.screen_many(waiting[:1])
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    upgrade(engine)
    with engine.connect() as conn:
        batch = {
            r[0]: r[1]
            for r in conn.execute(
                select(CASE.c.id, CASE.c.batch_id).where(CASE.c.batch_id.is_not(None))
            )
        }
        rows = {r["id"]: dict(r) for r in conn.execute(select(CASE_LIST)).mappings()}
    first, second = rows[batch[done[0]]], rows[batch[waiting[0]]]
    assert (first["items"], first["accepted"], first["policy"]) == (2, 2, "tet")
    assert first["screened_at"] is not None
    assert first["tally"]["statuses"] == {"in_review": 2}
    assert second["screened_at"] is None
    assert second["tally"]["statuses"] == {"in_review": 1}
    world.service.screen_many(waiting[1:])
    with engine.connect() as conn:
        announced = [
            r[0]["list"]
            for r in conn.execute(
                select(OUTBOX.c.data).where(OUTBOX.c.type == "case_list.screened")
            )
        ]
    assert announced.count(second["id"]) == 1
    assert announced.count(first["id"]) == 1  # at its submission, before the downgrade


# --- 0006: fewer B-trees written per command -------------------------------------------------

_PARTIAL_INDEXES = {
    "ix_case_batch_status": "batch_id",
    "ix_welfare_case_campaign_id": "campaign_id",
    "ix_task_next_check": "next_check_at",
    "ix_task_assignee_id": "assignee_id",
}

# The queries each partial index serves, as the service asks them (`=` or `<=` on the column;
# the SLA sweep's own statement is checked in test_sla_escalation.py).
_SERVED = {
    "ix_task_next_check": "SELECT id FROM task WHERE next_check_at <= '2026-01-01' "
    "ORDER BY next_check_at LIMIT 200",
    "ix_task_assignee_id": "SELECT case_id FROM task WHERE assignee_id = 'a'",
    "ix_case_batch_status": "SELECT id FROM welfare_case WHERE batch_id = 'b' "
    "AND status = 'screening'",
    "ix_welfare_case_campaign_id": "SELECT id FROM welfare_case WHERE campaign_id = 'c'",
}


def _index_definitions(db: Database) -> dict[str, str]:
    with db.engine.connect() as conn:
        if db.kind == "sqlite":
            rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        else:
            rows = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            )
        return {str(name): str(sql or "") for name, sql in rows}


def test_mostly_empty_columns_are_indexed_only_where_set_and_the_queries_still_use_them(
    db: Database,
) -> None:
    upgrade(db.engine)
    found = _index_definitions(db)
    for name, column in _PARTIAL_INDEXES.items():
        assert f"WHERE {column} IS NOT NULL" in found[name].replace("(", "").replace(")", "")
        assert name in query_plan(db, _SERVED[name])


def test_after_0006_a_sqlite_audit_entry_writes_no_index_of_its_own_for_seq(db: Database) -> None:
    upgrade(db.engine)
    with db.engine.connect() as conn:
        if db.kind != "sqlite":
            pytest.skip("PostgreSQL tables have no rowid: seq stays BIGINT with its index")
        auto = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE tbl_name = 'audit_entry' "
            "AND name LIKE 'sqlite_autoindex%'"
        ).all()
        seq_type = conn.exec_driver_sql(
            "SELECT type FROM pragma_table_info('audit_entry') WHERE name = 'seq'"
        ).scalar_one()
    assert (auto, seq_type) == ([], "INTEGER")


def _chain(engine: Engine) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        return [
            (int(seq), str(h), str(p))
            for seq, h, p in conn.exec_driver_sql(
                "SELECT seq, entry_hash, payload FROM audit_entry ORDER BY seq"
            )
        ]


def test_an_audit_chain_written_before_0006_is_kept_whole_and_append_only(
    world: World, db: Database
) -> None:
    """Down to 0005 with a history, up again: the same entries, the chain verifies, the
    database still refuses to change an entry, new entries chain on, and the round trip
    leaves the schema as the tables describe it."""
    engine = world.app.engine
    member = world.member()
    case_id = str(world.submit("housing", "repair", member).case_id)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    before = _chain(engine)
    assert len(before) >= 3
    assert verify_audit(engine).ok
    indexes = _index_definitions(db)
    assert "IS NOT NULL" not in indexes["ix_task_assignee_id"]  # 0005's full indexes
    upgrade(engine)
    assert _chain(engine) == before
    assert verify_audit(engine).ok
    for sql in ("UPDATE audit_entry SET action = 'x' WHERE seq = 1", "DELETE FROM audit_entry"):
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.exec_driver_sql(sql)
    world.decide(case_id, "chair_a")
    after = _chain(engine)
    assert after[: len(before)] == before
    assert len(after) > len(before)
    assert verify_audit(engine).ok
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
