"""Database engines for SQLite (embedded default) and PostgreSQL (production).

SQLite: WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for writing transactions so
concurrent writers queue for the lock instead of failing when a read lock must be upgraded.
"""

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

READ_ONLY = {"welfare_read_only": True}
"""Execution options for a connection that only reads (SQLite then takes no write lock)."""


def make_engine(
    url: str, *, echo: bool = False, connect_args: dict[str, Any] | None = None
) -> Engine:
    """The engine for `url`; `connect_args` go to the driver (e.g. a PostgreSQL search_path)."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo)
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        connect_args=connect_args or {},
    )


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_engine(url: str, echo: bool) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": 30},
        # A file database: a fresh connection is cheap, and NullPool avoids sharing one
        # connection's transaction state across threads.
        poolclass=NullPool if path == ":memory:" else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module; we issue BEGIN ourselves.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("welfare_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
