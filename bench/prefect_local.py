"""A throw-away Prefect server for one benchmark: `flows.serve.start_local_server` on a free
loopback port, its SQLite database under the run's scratch directory, stopped afterwards."""

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from bench.core import own_peak_rss_mb
from flows.serve import start_local_server, stop

__all__ = ["own_peak_rss_mb"]  # kept importable from here for the worker scripts

QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_UI_ENABLED": "false",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_env(home: Path, api: str) -> dict[str, str]:
    """Environment of a process that talks to the server at `api`."""
    return {**os.environ, **QUIET, "PREFECT_HOME": str(home), "PREFECT_API_URL": api}


def tree_rss_mb(pid: int) -> float:
    try:
        p = psutil.Process(pid)
        return float(sum(x.memory_info().rss for x in [p, *p.children(recursive=True)])) / 2**20
    except psutil.Error:
        return 0.0


@contextmanager
def prefect_server(home: Path) -> Iterator[tuple[int, str]]:
    """(server pid, API URL) of a Prefect server running for the duration of the block."""
    saved = {k: os.environ.get(k) for k in QUIET}
    os.environ.update(QUIET)  # start_local_server passes this process's environment on
    try:
        proc, url = start_local_server(home, port=free_port())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield proc.pid, url
    finally:
        stop(proc)
