"""The fast chain verifier rebuilds each entry's canonical text in SQL, next to the data; it must
reproduce the canonical path byte for byte, so honest entries never need the slow recheck."""

from datetime import UTC, datetime

import pytest

from domain.adapters.db import READ_ONLY
from domain.adapters.unit_of_work import UnitOfWork
from domain.audit import entry_hash, verify_stored_chain
from domain.model import AuditIntent
from domain.service import queries
from tests.support import Database, World

AWKWARD = [
    "Nguyễn Thị Hoà",  # Vietnamese with combining-free precomposed letters
    'quote " backslash \\ slash /',
    "control \x01\x1f tab\t newline\n return\r bell\x08 feed\x0c",
    "emoji 🏠 and ‘curly’ and \u2028 separator",
    "",
]


def _append(world: World, intents: list[AuditIntent], at: datetime) -> None:
    with UnitOfWork(world.app.engine) as uow:
        uow.record(intents)
        committed = uow.commit(at)
    # The sealing template and the canonical path agree on every entry.
    assert all(entry_hash(e.prev_hash, e.fields()) == e.entry_hash for e in committed)


def _intents() -> list[AuditIntent]:
    out = []
    for i, s in enumerate(AWKWARD):
        out.append(
            AuditIntent(
                action="case.submitted",
                entity_type="case",
                entity_id=f"case-{i}-{s[:5]}",
                actor_id=None if i % 2 else f"acc-{s[:8]}",
                actor_role=None if i % 3 else "grassroots_officer",
                org_unit_id=None if i == 4 else f"CS-{s[:3]}",
                policy=None if i == 3 else "housing",
                policy_version=None if i == 3 else i,
                payload={
                    "note": s,
                    "amount": 25_000_000 * i,
                    "flags": [True, False, None],
                    "nested": {"b": s, "a": [1, -2]},
                },
            )
        )
    return out


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 3, 2, 2, 0, tzinfo=UTC),  # no microseconds
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ],
)
def test_the_sql_template_reproduces_every_honest_entry_without_a_recheck(
    world: World, db: Database, at: datetime
) -> None:
    before = queries.verify_audit(world.app.engine).checked  # the world's own set-up entries
    _append(world, _intents(), at)
    _append(world, _intents()[:2], at)
    rechecked: list[int] = []

    def recheck(seq: int) -> bool:
        rechecked.append(seq)
        return True

    with world.app.engine.connect().execution_options(**READ_ONLY) as conn, conn.begin():
        result = verify_stored_chain(queries._stored_rows(conn), recheck)
    assert rechecked == []
    assert result.ok
    assert result.checked == before + len(AWKWARD) + 2
    assert queries.verify_audit(world.app.engine).ok


def test_a_tampered_entry_fails_the_fast_hash_and_the_recheck(world: World, db: Database) -> None:
    target = queries.verify_audit(world.app.engine).checked + 1  # the first awkward entry
    _append(world, _intents(), datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    with world.app.engine.begin() as conn:
        if db.kind == "postgres":
            conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_entry_no_update")
        # Semantically the same JSON, one byte different: the stored text is what was hashed.
        conn.exec_driver_sql(
            "UPDATE audit_entry SET payload = replace(payload, '\"amount\":0', '\"amount\":00') "
            f"WHERE seq = {target}"
        )
        if db.kind == "postgres":
            conn.exec_driver_sql("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_no_change")
    result = queries.verify_audit(world.app.engine)
    assert not result.ok
    assert result.broken_seq == target
