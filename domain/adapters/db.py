"""Database engines for SQLite (embedded default) and PostgreSQL (production).

SQLite: WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for writing transactions so
concurrent writers queue for the lock instead of failing when a read lock must be upgraded.
"""

import sqlite3
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from domain.adapters.wal_checkpointer import WalCheckpointer
from domain.config import Settings, SqliteSynchronous

READ_ONLY = {"welfare_read_only": True}
"""Execution options for a connection that only reads (SQLite then takes no write lock)."""


def make_engine(
    url: str,
    *,
    echo: bool = False,
    connect_args: dict[str, Any] | None = None,
    sqlite_synchronous: SqliteSynchronous | None = None,
) -> Engine:
    """The engine for `url`; `connect_args` go to the driver (e.g. a PostgreSQL search_path).

    `sqlite_synchronous`: SQLite's durability setting; default `WELFARE_SQLITE_SYNCHRONOUS`
    (see `Settings.sqlite_synchronous` for what each value risks).
    """
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo, sqlite_synchronous or Settings().sqlite_synchronous)
    return create_engine(
        url,
        echo=echo,
        # Kept on although it costs one round trip per checkout (1 of a command's 7; switched
        # off, 3 interleaved pairs of 1,125 commands moved by -1 to +12 %, inside the noise):
        # without it, the first command on each pooled connection after a PostgreSQL restart
        # or failover fails (a 500 to the client) instead of reconnecting.
        # pool_pre_ping=False + pool_recycle only covers idle timeouts.
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        connect_args=connect_args or {},
    )


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


_CHECKPOINTERS: "weakref.WeakKeyDictionary[Engine, WalCheckpointer]" = weakref.WeakKeyDictionary()


def wal_checkpointer(engine: Engine) -> WalCheckpointer | None:
    """The background WAL checkpointer of a file SQLite engine (None for others)."""
    return _CHECKPOINTERS.get(engine)


def _sqlite_engine(url: str, echo: bool, synchronous: SqliteSynchronous) -> Engine:
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError(f"sqlite synchronous must be NORMAL or FULL, not {synchronous!r}")
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
        cur.execute(f"PRAGMA synchronous={synchronous}")  # one of two literals, checked above
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # Checkpoint (copy the WAL into the file, and fsync it) every ≈ 40 MB of WAL instead of
        # SQLite's 4 MB: a command dirties ≈ 25 pages, so the default checkpointed every ≈ 40
        # commands and its fsync was most of a commit's cost under disk load (≈ 15 % of
        # throughput in bench/NOTES.md). The WAL is cut back to 64 MB after each checkpoint.
        # Since session 4 a thread checkpoints every 64 commits (`WalCheckpointer`); this
        # automatic checkpoint is the backstop if it falls behind.
        cur.execute("PRAGMA wal_autocheckpoint=10000")
        cur.execute("PRAGMA journal_size_limit=67108864")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        sql = (
            "BEGIN" if conn.get_execution_options().get("welfare_read_only") else "BEGIN IMMEDIATE"
        )
        # On the driver's connection: exec_driver_sql's machinery cost as much as the BEGIN.
        try:
            conn.connection.dbapi_connection.execute(sql)  # type: ignore[union-attr]
        except sqlite3.Error as err:
            # "database is locked" after busy_timeout: SQLAlchemy's OperationalError, as before.
            conn._handle_dbapi_exception(err, sql, (), None, None)

    if path and path != ":memory:":
        _attach_checkpointer(engine, path)
    return engine


def _attach_checkpointer(engine: Engine, path: str) -> None:
    checkpointer = WalCheckpointer(path)
    _CHECKPOINTERS[engine] = checkpointer

    @event.listens_for(engine, "commit")
    def _on_commit(_conn: Connection) -> None:
        checkpointer.committed()

    @event.listens_for(engine, "engine_disposed")
    def _on_dispose(_engine: Engine) -> None:
        checkpointer.stop()  # started again if the engine is used after dispose()

    # An engine dropped without dispose() still ends its thread (which holds no reference to
    # the engine).
    weakref.finalize(engine, checkpointer.stop)
