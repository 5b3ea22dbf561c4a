"""The suite's own order: property tests never run beside Prefect's client threads."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _collected(*paths: str, marker: str | None = None) -> list[str]:
    """Test ids in the order pytest would run them, collected in a fresh process."""
    args = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    if marker:
        args += ["-m", marker]
    result = subprocess.run(
        [*args, *paths], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_tests_that_need_the_prefect_api_run_after_all_others() -> None:
    # Given on the command line before the property tests, as a directory walk would too.
    paths = ("tests/flows/test_prefect_flows.py", "tests/unit/test_workcalendar.py")
    order = _collected(*paths)
    needs_prefect = _collected(*paths, marker="prefect")
    assert needs_prefect, "the Prefect tests were not collected"
    assert len(needs_prefect) < len(order)
    assert order[-len(needs_prefect) :] == needs_prefect
