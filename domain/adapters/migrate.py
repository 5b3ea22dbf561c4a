"""Apply the Alembic migrations (`welfare db upgrade`, and automatically on start).

Alembic (with mako and pygments, ≈ 11 MB of a process's memory) is imported only when there is
something to migrate: every process that bootstraps — each API worker, each flow worker —
upgrades on start, and almost always finds the database already at the head revision, which
`_at_head` tells from the `alembic_version` row and the revision files without Alembic.
"""

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_REVISION = re.compile(r"^revision(?:\s*:\s*[\w\s|\[\]]+)?\s*=\s*['\"]([^'\"]+)['\"]\s*$", re.M)
_DOWN = re.compile(r"^down_revision(?:\s*:[^=]+)?\s*=\s*(None|['\"]([^'\"]+)['\"])\s*$", re.M)


def alembic_config(url: str = "") -> "Config":
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def script_head() -> str | None:
    """The single head revision of the migration files, read without Alembic; None when the
    files do not say it plainly (a merge, several heads, an unusual header): Alembic decides."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        rev, down = _REVISION.findall(text), _DOWN.findall(text)
        if len(rev) != 1 or len(down) != 1:
            return None
        revisions.add(rev[0])
        if down[0][0] != "None":
            parents.add(down[0][1])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _at_head(conn: Connection) -> bool:
    head = script_head()
    if head is None or not inspect(conn).has_table("alembic_version"):
        return False
    versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    return list(versions) == [head]


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        if revision == "head" and _at_head(conn):
            return
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
