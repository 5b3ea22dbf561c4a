"""SQLite's WAL is checkpointed by a thread of the engine, not inside a command's commit."""

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from domain.adapters.db import make_engine, wal_checkpointer
from domain.adapters.wal_checkpointer import EVERY_COMMITS, WalCheckpointer


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-wal-checkpointer"]


def _commit_rows(engine: Engine, n: int) -> None:
    for i in range(n):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 500 + str(i)})


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield engine
    engine.dispose()


def test_every_64th_commit_has_the_wal_checkpointed_in_the_background(engine: Engine) -> None:
    checkpointer = wal_checkpointer(engine)
    assert checkpointer is not None
    _commit_rows(engine, EVERY_COMMITS - 2)  # with the CREATE TABLE: one short of a round
    assert checkpointer.runs == 0
    assert not _threads()  # an idle engine runs no thread
    _commit_rows(engine, 1)
    assert checkpointer.wait_idle(10)
    assert checkpointer.runs == 1
    assert checkpointer.last is not None
    busy, in_wal, copied = checkpointer.last
    assert busy == 0
    assert in_wal > 0
    assert copied == in_wal  # every frame copied into the database file
    # What was committed is all there, read by a connection of its own.
    path = engine.url.database
    assert path is not None
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM t").fetchone()[0] == EVERY_COMMITS - 1


def test_dispose_ends_the_thread_and_a_reused_engine_starts_it_again(engine: Engine) -> None:
    checkpointer = wal_checkpointer(engine)
    assert checkpointer is not None
    _commit_rows(engine, EVERY_COMMITS)
    assert checkpointer.wait_idle(10)
    assert len(_threads()) == 1
    engine.dispose()
    assert not _threads()
    _commit_rows(engine, EVERY_COMMITS)  # the pool reconnects after dispose()
    assert checkpointer.wait_idle(10)
    assert checkpointer.runs == 2
    assert len(_threads()) == 1


def test_a_failing_checkpoint_is_logged_and_commits_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpointer = WalCheckpointer(str(tmp_path / "missing" / "x.db"))
    with caplog.at_level(logging.WARNING, logger="domain.adapters.wal_checkpointer"):
        checkpointer.request()
        assert checkpointer.wait_idle(10)
    checkpointer.stop()
    assert checkpointer.runs == 0
    assert "background WAL checkpoint failed" in caplog.text
    assert not _threads()


def test_only_a_file_database_has_a_checkpointer(tmp_path: Path) -> None:
    memory = make_engine("sqlite:///:memory:")
    try:
        assert wal_checkpointer(memory) is None
    finally:
        memory.dispose()
