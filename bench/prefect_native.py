"""Peer 3: Prefect-native approvals — one flow run per case, paused at each human step.

The runner starts a real Prefect server once per run (`prefect server start`, through
`flows.serve.start_local_server`) on a free loopback port with a throw-away
PREFECT_HOME (SQLite); this module runs `bench.prefect_worker` against it in a child process (so that
process's RSS is the flow worker's), and stops the server. A handful of cases is enough:
each human step costs a pause, a resume and at least one poll interval (1 s).
"""

import json
import subprocess
import sys
from pathlib import Path

from bench.core import Figure, RunContext, Section
from bench.prefect_local import client_env, tree_rss_mb

NAME = "prefect_native"
NEEDS_PREFECT = True
TITLE = "Prefect-native human-in-the-loop (pause/resume per step)"
ROOT = Path(__file__).resolve().parent.parent


def run(ctx: RunContext) -> Section:
    section = Section(NAME, TITLE)
    api, home = ctx.prefect()
    startup = ctx.prefect_startup_s
    n = ctx.size.prefect_lifecycles
    worker = subprocess.run(
        [sys.executable, "-m", "bench.prefect_worker", str(n)],
        env=client_env(home, api),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    server_rss = tree_rss_mb(ctx.prefect_pid or 0)
    if worker.returncode != 0:
        raise RuntimeError(f"prefect worker failed:\n{worker.stderr[-3000:]}")
    r = json.loads(worker.stdout.strip().splitlines()[-1])
    seconds = r["seconds"]
    section.notes.append(
        f"{n} cases run concurrently in one flow-worker process; each paused flow polls the server "
        f"every second (pause_flow_run poll_interval=1). Server start-up took {startup:.1f} s and "
        "is not counted; the server is shared with the other Prefect benchmarks of the run."
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
