"""The layering of DESIGN.md is kept: every import contract in pyproject.toml holds."""

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every declared contract was checked (a typo'd contract table would silently vanish).
    assert f"Contracts: {len(contracts)} kept, 0 broken" in result.stdout


# Imported only to migrate: ≈ 11 MB of every worker's memory (bench/NOTES.md, "API worker").
MIGRATION_ONLY = ("alembic", "mako", "pygments")

API_WORKER = """
import json, sys
from api.app import create_app
create_app()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {names!r})))
"""


def _api_worker_imports(tmp_path: Path, db: Path) -> list[str]:
    """The migration-only modules an API worker (uvicorn's `api.app:create_app`) has loaded
    once started on the SQLite database `db`."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "WELFARE_DATABASE_URL": f"sqlite:///{db}",
        "WELFARE_DATA_DIR": str(tmp_path / "data"),
        "WELFARE_SECRET_KEY": "architecture-test-secret-key-0123456789abcdef",
    }
    code = API_WORKER.format(names=set(MIGRATION_ONLY))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    names: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return names


def test_an_api_worker_on_a_migrated_database_never_imports_alembic(tmp_path: Path) -> None:
    """Every worker upgrades on start; at the head revision it must not load Alembic to see
    that. On an empty database it still migrates (and so loads it): the check is real."""
    db = tmp_path / "welfare.db"
    assert set(_api_worker_imports(tmp_path, db)) >= {"alembic"}  # migrated the empty file
    assert _api_worker_imports(tmp_path, db) == []  # started again: already at head
