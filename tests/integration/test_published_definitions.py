"""A published (policy, version) never changes; cases keep the version they were filed under."""

import shutil
from pathlib import Path

import pytest

from domain.adapters.definitions import load_store
from domain.errors import DefinitionError
from domain.service.queries import case_status
from tests.support import DEFS, Clock, Database, build_world


def _copy_defs(tmp_path: Path) -> Path:
    target = tmp_path / "defs"
    shutil.copytree(DEFS, target)
    return target


def test_changing_a_published_version_is_refused_and_a_new_version_is_published(
    db: Database, tmp_path: Path
) -> None:
    defs = _copy_defs(tmp_path)
    world = build_world(db, tmp_path, Clock(), definitions_dir=defs)
    member = world.member()
    old_case = world.submit("housing", "repair", member).case_id

    housing = defs / "housing.yaml"
    housing.write_text(
        housing.read_text(encoding="utf-8").replace("25000000", "26000000"), encoding="utf-8"
    )
    with pytest.raises(DefinitionError) as err, db.engine.begin() as conn:
        load_store(conn, defs, world.clock())
    assert any(
        "already published" in p.message and "housing.yaml" in p.location
        for p in err.value.problems
    )

    housing.write_text(
        housing.read_text(encoding="utf-8").replace("version: 1", "version: 2", 1), encoding="utf-8"
    )
    with db.engine.begin() as conn:
        store = load_store(conn, defs, world.clock())
    assert store.current("housing").version == 2
    assert store.get("housing", 1).subtypes["repair"].amount.fixed == 25_000_000
    status = case_status(world.app.engine, old_case)
    assert status is not None
    assert status["policy_version"] == 1
