"""Shared fixtures: every integration test runs on SQLite and, when configured, PostgreSQL."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    POSTGRES_URL,
    Clock,
    Database,
    World,
    build_world,
    postgres_database,
    sqlite_database,
)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("WELFARE_TEST_POSTGRES_URL is not set")
        database = postgres_database()
    else:
        database = sqlite_database(tmp_path)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(db: Database, tmp_path: Path, clock: Clock) -> World:
    return build_world(db, tmp_path, clock)
