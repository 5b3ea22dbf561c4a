"""Driving lifecycles: in this process (one client), or in several client processes at once.

Client processes are spawned (not forked), so each one's peak RSS is its own: that is the
memory figure of a service worker. They start together on a barrier; the wall time runs from
the barrier to the last client's end (time.monotonic is system-wide on Linux).
"""

import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from bench.core import Latencies, own_peak_rss_mb
from bench.dbs import BenchDb
from bench.floor_sql import Floor
from bench.workload import Lifecycle, run_lifecycle
from bench.world import WorldSpec, app_for
from domain.adapters.db import wal_checkpointer

Driver = Literal["service", "floor"]


@dataclass
class Outcome:
    lifecycles: int
    commands: int
    seconds: float
    latencies: Latencies
    peak_rss_mb: float = 0.0


def _runner(
    driver: Driver, db: BenchDb
) -> tuple[Callable[[WorldSpec, Lifecycle, Latencies], None], Callable[[], None]]:
    engine = db.engine()
    if driver == "service":
        app = app_for(db, engine)
        return (lambda spec, lc, lat: run_lifecycle(app.service, spec, lc, lat)), engine.dispose
    raw: Any = engine.raw_connection()
    checkpointer = wal_checkpointer(engine)
    floor = Floor(
        raw.driver_connection,
        db.kind == "postgres",
        checkpointer.committed if checkpointer is not None else None,
    )

    def close() -> None:
        raw.close()
        engine.dispose()

    return floor.run, close


def run_here(
    driver: Driver, db: BenchDb, spec: WorldSpec, plan: list[Lifecycle], warmup: list[Lifecycle]
) -> Outcome:
    run, close = _runner(driver, db)
    try:
        for lc in warmup:
            run(spec, lc, Latencies())
        lat = Latencies()
        start = time.perf_counter()
        for lc in plan:
            run(spec, lc, lat)
        seconds = time.perf_counter() - start
    finally:
        close()
    return Outcome(len(plan), sum(lc.commands for lc in plan), seconds, lat)


def _client(
    driver: Driver,
    db: BenchDb,
    spec: WorldSpec,
    plan: list[Lifecycle],
    warmup: list[Lifecycle],
    barrier: Any,
    out: Any,
) -> None:
    try:
        run, close = _runner(driver, db)
        try:
            for lc in warmup:
                run(spec, lc, Latencies())
            lat = Latencies()
            barrier.wait()
            start = time.monotonic()
            for lc in plan:
                run(spec, lc, lat)
            end = time.monotonic()
        finally:
            close()
    except BaseException as exc:
        barrier.abort()
        out.put(("error", repr(exc)))
        raise
    rss_mb = own_peak_rss_mb()  # not ru_maxrss: it counts the spawning driver's peak
    out.put((start, end, lat.by_kind, rss_mb))


def run_clients(
    driver: Driver,
    db: BenchDb,
    spec: WorldSpec,
    plans: list[list[Lifecycle]],
    warmups: list[list[Lifecycle]],
) -> Outcome:
    """One spawned process per plan, all released together."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(plans))
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_client, args=(driver, db, spec, p, w, barrier, out))
        for p, w in zip(plans, warmups, strict=True)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=3600) for _ in procs]
    errors = [r[1] for r in results if r[0] == "error"]
    if errors:
        raise RuntimeError(f"benchmark client failed: {errors[0]}")
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"benchmark client exited with {p.exitcode}")
    lat = Latencies()
    for _s, _e, by_kind, _r in results:
        for k, v in by_kind.items():
            lat.by_kind.setdefault(k, []).extend(v)
    seconds = max(r[1] for r in results) - min(r[0] for r in results)
    return Outcome(
        sum(len(p) for p in plans),
        sum(lc.commands for p in plans for lc in p),
        seconds,
        lat,
        max(r[3] for r in results),
    )
