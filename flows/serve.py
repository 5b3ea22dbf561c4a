"""Serve every deployment of union-welfare from one process: `python -m flows.serve`.

| deployment                      | schedule (Asia/Ho_Chi_Minh)             |
|---------------------------------|-----------------------------------------|
| outbox-relay/relay              | every 15 s                              |
| escalation-sweep/sla-sweep      | every 15 min, 06:00–21:45, every day    |
| audit-verify/nightly            | 01:30 every night                       |
| yearly-report/yearly            | 07:00 on 1 November, and on demand      |

With PREFECT_API_URL unset, a local Prefect server (SQLite under WELFARE_DATA_DIR/prefect) is
started on 127.0.0.1:4200 as a child process and stopped on exit — enough for one machine.
Production points PREFECT_API_URL at a Prefect server on PostgreSQL (README, "Production
layout"). Prefect is imported only after the API URL is decided: its settings are read once.
"""

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import FrameType

import httpx

from domain.config import Settings

log = logging.getLogger("flows.serve")

TZ = "Asia/Ho_Chi_Minh"
LOCAL_HOST, LOCAL_PORT = "127.0.0.1", 4200


def _quiet_prefect_env() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Runs start within ~5 s of their slot instead of ~10 s (research/prefect.md §4).
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "5")


def start_local_server(
    home: Path, *, host: str = LOCAL_HOST, port: int = LOCAL_PORT, timeout: float = 180.0
) -> tuple[subprocess.Popen[bytes], str]:
    """A Prefect server on `host:port` with its SQLite database under `home`; waits for health.

    Returns the process and its API URL.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_UI_ENABLED", "true")
    with (home / "server.log").open("ab") as log_file:
        args = ["server", "start", "--host", host, "--port", str(port)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            cwd=str(Path(__file__).resolve().parent.parent),
            # Its own session: a Ctrl-C meant for `welfare up` reaches it only through us,
            # after the runner has paused its deployments.
            start_new_session=True,
        )
    url = f"http://{host}:{port}/api"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the Prefect server exited ({proc.returncode}); see {home / 'server.log'}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"the Prefect server did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def deployments() -> list[object]:
    from prefect.schedules import Cron, Interval

    from flows.escalation import escalation_sweep
    from flows.relay import relay_flow
    from flows.scheduled import audit_verify, yearly_report

    return [
        relay_flow.to_deployment(name="relay", schedule=Interval(timedelta(seconds=15))),
        escalation_sweep.to_deployment(
            name="sla-sweep", schedule=Cron("*/15 6-21 * * *", timezone=TZ)
        ),
        audit_verify.to_deployment(name="nightly", schedule=Cron("30 1 * * *", timezone=TZ)),
        # Also on demand: `prefect deployment run yearly-report/yearly -p year=2026`.
        yearly_report.to_deployment(name="yearly", schedule=Cron("0 7 1 11 *", timezone=TZ)),
    ]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call
    _quiet_prefect_env()
    settings = Settings()
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        home = Path(settings.data_dir) / "prefect"
        server, url = start_local_server(home)
        os.environ["PREFECT_API_URL"] = url
        os.environ["PREFECT_HOME"] = str(home)

    def _terminate(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        from prefect import serve

        serve(*deployments())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            stop(server)


if __name__ == "__main__":
    main()
