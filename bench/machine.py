"""Facts about the run: machine, software versions, git commit, date."""

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from bench.dbs import BenchDb, server_version

PACKAGES = ("sqlalchemy", "sqlmodel", "pydantic", "psycopg", "prefect", "spiffworkflow")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(root: Path) -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{sha}{' (uncommitted changes)' if dirty else ''}" if sha else "unknown"


def facts(root: Path, pg_url: str | None) -> dict[str, str]:
    import sqlite3

    out = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(root),
        "cpu": f"{os.cpu_count()} × {cpu_model()}",
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "load at start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
    }
    if pg_url:
        try:
            out["postgresql"] = server_version(BenchDb("postgres", pg_url, "public"))
        except Exception as exc:  # a fact we could not read is reported, not fatal
            out["postgresql"] = f"unknown ({type(exc).__name__})"
    else:
        out["postgresql"] = "not reachable"
    versions = []
    for p in PACKAGES:
        try:
            versions.append(f"{p} {metadata.version(p)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{p} (not installed)")
    out["packages"] = ", ".join(versions)
    return out
