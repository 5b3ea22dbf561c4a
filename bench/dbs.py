"""The databases a benchmark runs on: a fresh SQLite file, or a fresh schema in `welfare_bench`.

PostgreSQL benchmarks never touch the test database: they create (once) the database
`welfare_bench` on the server and a throw-away schema per benchmark inside it.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from domain.adapters.db import make_engine
from domain.adapters.migrate import upgrade

Kind = Literal["sqlite", "postgres"]
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/welfare_bench"


def postgres_server_url() -> str | None:
    """URL of the bench database if a PostgreSQL server answers (creating the database)."""
    url = os.environ.get("WELFARE_BENCH_POSTGRES_URL", DEFAULT_PG)
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            exists = c.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": u.database}
            ).first()
            if not exists:
                c.exec_driver_sql(f'CREATE DATABASE "{u.database}"')
    except Exception:
        return None
    finally:
        admin.dispose()
    return url


@dataclass(frozen=True)
class BenchDb:
    """Where one benchmark's data lives; `engine()` can be called again in a child process."""

    kind: Kind
    url: str
    schema: str | None = None

    def engine(self) -> Engine:
        if self.kind == "sqlite":
            return make_engine(self.url)
        return make_engine(self.url, connect_args={"options": f"-csearch_path={self.schema}"})


@contextmanager
def fresh_db(kind: Kind, name: str, workdir: Path, pg_url: str | None) -> Iterator[BenchDb]:
    """An empty, migrated database for one benchmark; dropped (or deleted) afterwards."""
    if kind == "sqlite":
        path = workdir / f"{name}-{uuid.uuid4().hex[:6]}.db"
        db = BenchDb("sqlite", f"sqlite:///{path}")
        _migrate(db)
        try:
            yield db
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    assert pg_url is not None
    schema = f"b_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url)
    with admin.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    db = BenchDb("postgres", pg_url, schema)
    try:
        _migrate(db)
        yield db
    finally:
        with admin.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _migrate(db: BenchDb) -> None:
    engine = db.engine()
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def server_version(db: BenchDb) -> str:
    engine = db.engine()
    try:
        with engine.connect() as c:
            if db.kind == "sqlite":
                return str(c.exec_driver_sql("select sqlite_version()").scalar())
            return str(c.exec_driver_sql("show server_version").scalar())
    finally:
        engine.dispose()
