"""`welfare accounts add` and `welfare up`: the command line that starts and feeds the API."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from domain.cli import DEMO_PASSWORD, app
from domain.config import PROJECT_ROOT
from tests.api.conftest import TestClient, login, problem
from tests.support import World


def test_accounts_add_creates_a_working_account_with_its_roles(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    env = {
        "WELFARE_DATABASE_URL": world.app.settings.sqlalchemy_url(),
        "WELFARE_DATA_DIR": str(tmp_path),
    }
    result = CliRunner().invoke(
        app,
        ["accounts", "add", "kiemtra.moi", "--unit", "TP", "--role", "auditor",
         "--role", "treasurer", "--from", "2020-01-01", "--password-stdin"],
        input="mat-khau-du-dai\n",
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "kiemtra.moi" in result.output
    h = login(client, "kiemtra.moi", "mat-khau-du-dai")
    me = client.get("/api/v1/me", headers=h).json()
    assert sorted(g["role"] for g in me["grants"]) == ["auditor", "treasurer"]
    assert me["scope"] == ["CS-A", "CS-B", "TP"]


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--unit", "TP", "--role", "auditor"], "ngan\n", "password"),
        (["--unit", "NOWHERE", "--role", "auditor"], "mat-khau-du-dai\n", "NOWHERE"),
        (["--unit", "TP", "--role", "emperor"], "mat-khau-du-dai\n", "--role"),
    ],
    ids=["short-password", "unknown-unit", "unknown-role"],
)
def test_accounts_add_refuses_bad_input_and_writes_nothing(
    client: TestClient,
    world: World,
    tmp_path: Path,
    args: list[str],
    password: str,
    message: str,
) -> None:
    env = {
        "WELFARE_DATABASE_URL": world.app.settings.sqlalchemy_url(),
        "WELFARE_DATA_DIR": str(tmp_path),
    }
    result = CliRunner().invoke(
        app, ["accounts", "add", "khong.tao", *args, "--password-stdin"], input=password, env=env
    )
    assert result.exit_code != 0
    assert message in result.output
    r = client.post("/auth/token", data={"username": "khong.tao", "password": password.strip()})
    problem(r, 401, "invalid_credentials")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_welfare_up_serves_the_api_with_the_demo_accounts(tmp_path: Path) -> None:
    """A real process on a free port: migrate, seed, serve; a demo account logs in."""
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("WELFARE_") or k == "WELFARE_LANG"
    }
    env["WELFARE_DATA_DIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from domain.cli import main; main()", "up", "--demo",
         "--no-flows", "--port", str(port), "--demo-members", "20"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a bound on waiting, not an assertion on speed
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.3)
        r = httpx.post(
            f"{base}/auth/token", data={"username": "ubkt.ldld", "password": DEMO_PASSWORD}
        )
        assert r.status_code == 200, r.text
        me = httpx.get(
            f"{base}/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me.json()["username"] == "ubkt.ldld"
        assert httpx.get(f"{base}/docs").status_code == 200
        assert (tmp_path / "welfare.db").exists()
        assert oct((tmp_path / "secret.key").stat().st_mode & 0o777) == "0o600"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    text = out.decode()
    assert f"{base}/docs" in text
    assert DEMO_PASSWORD in text
    assert "ubkt.ldld" in text
