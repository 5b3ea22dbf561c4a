"""What every benchmark shares: sizes, figures, timing helpers and the run context."""

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SizeName = Literal["smoke", "small", "full"]


@dataclass(frozen=True)
class Size:
    """How much work each benchmark does at one size."""

    name: SizeName
    lifecycles: int  # service-layer and floor lifecycles per database
    spiff_lifecycles: int
    prefect_lifecycles: int
    concurrent_clients: int
    sweep_open: tuple[int, ...]  # open tasks among which 1,000 (or fewer) are overdue
    sweep_overdue: int
    audit_entries: int
    trail_samples: int


SIZES: dict[SizeName, Size] = {
    "smoke": Size("smoke", 24, 12, 2, 1, (2_000,), 100, 5_000, 50),
    "small": Size("small", 400, 200, 8, 2, (10_000, 100_000), 1_000, 100_000, 200),
    "full": Size("full", 2_000, 1_000, 16, 2, (10_000, 100_000, 1_000_000), 1_000, 1_000_000, 500),
}


@dataclass
class Figure:
    """One measured number, with what it means for the people who run the system."""

    key: str  # stable identifier, used by ratios: e.g. "service.sqlite.commands_per_s"
    label: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    explain: str = ""

    def show(self) -> str:
        v = self.value
        if v >= 100:
            text = f"{v:,.0f}"
        elif v >= 10:
            text = f"{v:,.1f}"
        else:
            text = f"{v:,.3g}"
        return f"{text} {self.unit}".strip()


@dataclass
class Section:
    """What one benchmark module reports: its figures, plus notes (skips, set-up facts)."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, fig: Figure) -> Figure:
        self.figures.append(fig)
        return fig

    def get(self, key: str) -> Figure | None:
        return next((f for f in self.figures if f.key == key), None)


@dataclass
class RunContext:
    size: Size
    workdir: Path  # scratch space for SQLite files, Prefect home, logs
    postgres_url: str | None  # server URL of a database the bench may create schemas in
    log: Callable[[str], None]
    # One Prefect server for the whole run (started by the runner when a module sets
    # NEEDS_PREFECT): its start-up (~10 s) is paid once and counted in no figure.
    prefect_api: str | None = None
    prefect_home: Path | None = None
    prefect_pid: int | None = None
    prefect_startup_s: float = 0.0

    def prefect(self) -> tuple[str, Path]:
        if self.prefect_api is None or self.prefect_home is None:
            raise RuntimeError("this benchmark needs NEEDS_PREFECT = True in its module")
        return self.prefect_api, self.prefect_home


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """`with stopwatch() as elapsed:` … `elapsed()` seconds so far (and after the block)."""
    start = time.perf_counter()
    end: list[float] = []

    def elapsed() -> float:
        return (end[0] if end else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end.append(time.perf_counter())


class Latencies:
    """Per-kind command latencies in seconds."""

    def __init__(self) -> None:
        self.by_kind: dict[str, list[float]] = {}

    def add(self, kind: str, seconds: float) -> None:
        self.by_kind.setdefault(kind, []).append(seconds)

    def merge(self, other: "Latencies") -> None:
        for k, v in other.by_kind.items():
            self.by_kind.setdefault(k, []).extend(v)

    def count(self) -> int:
        return sum(len(v) for v in self.by_kind.values())


def own_peak_rss_mb() -> float:
    """This process's peak RSS since it started its program, in MB.

    Not `getrusage(...).ru_maxrss`: Linux carries a parent's peak over into its child through
    fork and exec, so a worker started by a bench process that once held 800 MB reports
    800 MB however little it used itself (the 799 MB "flow worker" of an earlier run was the
    bench driver's peak). `VmHWM` is the peak of this program's own address space.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # not Linux: the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
