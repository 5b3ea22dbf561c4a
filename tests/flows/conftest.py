"""Fixtures of the flows tests: a real SMTP server, and — only for tests marked `prefect` —
one Prefect test harness for the whole session (~13 s to start on two cores)."""

import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before Prefect is imported anywhere: no analytics, quiet logs.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")

from tests.flows.support import SmtpServer, free_port, give_addresses
from tests.support import World

HERE = Path(__file__).parent

# Warnings Prefect's own machinery raises in a test process (not our code's): ignored for
# these tests only, so `filterwarnings = error` keeps guarding everything else.
PREFECT_WARNINGS = (
    "ignore::DeprecationWarning:prefect.*",
    "ignore::DeprecationWarning:pydantic.*",
    "ignore::pytest.PytestUnraisableExceptionWarning",
    "ignore::ResourceWarning",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE) and item.get_closest_marker("prefect"):
            for spec in PREFECT_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect API for the session: `prefect server start` on a free loopback port and a
    temporary SQLite database — what `prefect_test_harness` does, but with the same start-up
    code `welfare up` uses, so that code is tested too.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.serve import start_local_server, stop

    home = tmp_path_factory.mktemp("prefect")
    server, url = start_local_server(home, port=free_port(), timeout=120)
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
            _drain_prefect_workers()
    finally:
        stop(server)
        # Prefect's background clients leave their sockets to the garbage collector.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def _drain_prefect_workers() -> None:
    """Flush Prefect's log and event workers before the server goes (as its harness does)."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        try:
            logs = APILogWorker.instance().drain()
            if inspect.isawaitable(logs):
                await logs
        except RuntimeError:
            pass  # never started
        events = EventsWorker.drain_all()
        if inspect.isawaitable(events):
            await events

    run_coro_as_sync(drain())


@pytest.fixture(autouse=True)
def _collect_prefect_sockets(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a Prefect test, collect the sockets Prefect's clients dropped, warnings off:
    left to a later collection they would fail an unrelated test with a ResourceWarning."""
    yield
    if request.node.get_closest_marker("prefect"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mail_world(world: World, smtp: SmtpServer) -> World:
    """The test world with an address on every account, sending to the loopback server."""
    give_addresses(world, english=("upper_tp2",))
    world.app.settings = world.app.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port}
    )
    return world
