"""The Alembic migrations and the SQLModel tables describe the same schema, on both databases.

Several people add tables at once; without this a column added to tables.py but missing from a
migration would only show as a failure on a production upgrade.
"""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from domain.adapters.migrate import alembic_config, script_head, upgrade
from domain.adapters.tables import metadata
from tests.support import Database


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
