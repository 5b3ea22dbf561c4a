"""The Alembic migrations and the SQLModel tables describe the same schema, on both databases.

Several people add tables at once; without this a column added to tables.py but missing from a
migration would only show as a failure on a production upgrade.
"""

from datetime import date, timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select

from domain.adapters.migrate import alembic_config, script_head, upgrade
from domain.adapters.repository import CASE, CASE_LIST, OUTBOX
from domain.adapters.tables import metadata
from domain.service.commands import CaseItem, SubmitList
from tests.support import Database, World


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
