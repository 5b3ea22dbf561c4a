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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the Prefect API run last, in their collected order.

    The API's session fixture leaves Prefect's client threads running until the session
    ends, and its events websocket draws keepalive ping payloads from the global `random`.
    Hypothesis refuses an example during whose draw that state changed, so a property test
    running beside those threads failed now and then (FlakyStrategyDefinition). After them,
    nothing else runs."""
    items.sort(key=lambda item: item.get_closest_marker("prefect") is not None)


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
