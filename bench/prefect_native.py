"""Peer 3: Prefect-native approvals — one flow run per case, paused at each human step.

The bench starts a real Prefect server (bench.prefect_server: `prefect server start` fails
at import with the installed fastapi) on a free loopback port with a throw-away
PREFECT_HOME (SQLite), runs `bench.prefect_worker` against it in a child process (so that
process's RSS is the flow worker's), and stops the server. A handful of cases is enough:
each human step costs a pause, a resume and at least one poll interval (1 s).
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from bench.core import Figure, RunContext, Section

NAME = "prefect_native"
TITLE = "Prefect-native human-in-the-loop (pause/resume per step)"
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path, api: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_UI_ENABLED": "false",
    }
    if api:
        env["PREFECT_API_URL"] = api
    return env


def _wait_healthy(api: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("prefect server did not become healthy")


def _tree_rss_mb(pid: int) -> float:
    try:
        p = psutil.Process(pid)
        return float(sum(x.memory_info().rss for x in [p, *p.children(recursive=True)])) / 2**20
    except psutil.Error:
        return 0.0


def run(ctx: RunContext) -> Section:
    section = Section(NAME, TITLE)
    home = ctx.workdir / "prefect-home"
    home.mkdir(exist_ok=True)
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = (ctx.workdir / "prefect-server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.prefect_server", str(port)],
        env=_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        startup = _wait_healthy(api, server)
        ctx.log(f"  prefect server healthy after {startup:.1f} s on port {port}")
        n = ctx.size.prefect_lifecycles
        worker = subprocess.run(
            [sys.executable, "-m", "bench.prefect_worker", str(n)],
            env=_env(home, api),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        server_rss = _tree_rss_mb(server.pid)
        if worker.returncode != 0:
            raise RuntimeError(f"prefect worker failed:\n{worker.stderr[-3000:]}")
        r = json.loads(worker.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    seconds = r["seconds"]
    section.notes.append(
        f"{n} cases run concurrently in one flow-worker process; each paused flow polls the server "
        f"every second (pause_flow_run poll_interval=1). Server start-up took {startup:.1f} s and "
        "is not counted."
    )
    section.add(
        Figure(
            "prefect.lifecycles_per_s",
            "complete lifecycles/s",
            n / seconds,
            "cases/s",
            explain=f"{n} cases, submission (flow start) to payment, all at once, took {seconds:.1f} s.",
        )
    )
    section.add(
        Figure(
            "prefect.commands_per_s",
            "human steps (resumes)/s",
            r["resumes"] / seconds,
            "steps/s",
            explain="Decisions delivered to paused flow runs per second.",
        )
    )
    section.add(
        Figure(
            "prefect.case_p50_s",
            "one case, start to end, p50",
            r["case_p50_s"],
            "s",
            explain="A case spends about a second per human step even when the decision is "
            "immediate: the paused run only notices the resume on its next poll.",
        )
    )
    section.add(
        Figure(
            "prefect.flow_worker_rss_mb",
            f"peak RSS of the flow worker holding {n} paused runs",
            r["rss_mb"],
            "MB",
            explain="A paused run lives in a Python process for as long as the approval takes "
            "(days, for a housing case).",
        )
    )
    section.add(
        Figure(
            "prefect.server_rss_mb",
            "RSS of the Prefect server (SQLite) at the end",
            server_rss,
            "MB",
        )
    )
    return section
