"""`python -m bench [--size smoke|small|full] [--only NAME ...] [--out bench/RESULTS.md]`."""

import argparse
import importlib
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from pathlib import Path

from bench.core import SIZES, RunContext, Section
from bench.dbs import postgres_server_url
from bench.machine import facts
from bench.prefect_local import prefect_server
from bench.report import render

ROOT = Path(__file__).resolve().parent.parent
# One module per benchmark or peer, in run order; each has NAME, TITLE and run(ctx) -> Section.
MODULES = (
    "service",
    "floor",
    "spiff",
    "prefect_native",
    "escalation",
    "audit_log",
    "relay",
    "http",
    "tet_list",
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--size", choices=list(SIZES), default="small")
    p.add_argument("--only", nargs="+", choices=MODULES, metavar="NAME", help=", ".join(MODULES))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = p.parse_args(argv)
    size = SIZES[args.size]
    started = time.perf_counter()

    def log(msg: str) -> None:
        sys.stderr.write(f"[{time.perf_counter() - started:7.1f}s] {msg}\n")
        sys.stderr.flush()

    pg = postgres_server_url()
    log(f"size {size.name}; PostgreSQL {'at ' + pg if pg else 'not reachable (skipped)'}")
    sections: list[Section] = []
    failed = []
    with tempfile.TemporaryDirectory(prefix="welfare-bench-") as tmp, ExitStack() as stack:
        ctx = RunContext(size, Path(tmp), pg, log)
        modules = [importlib.import_module(f"bench.{name}") for name in args.only or MODULES]
        if any(getattr(m, "NEEDS_PREFECT", False) for m in modules):
            t0 = time.perf_counter()
            home = Path(tmp) / "prefect"
            ctx.prefect_pid, ctx.prefect_api = stack.enter_context(prefect_server(home))
            ctx.prefect_home, ctx.prefect_startup_s = home, time.perf_counter() - t0
            log(f"prefect server healthy after {ctx.prefect_startup_s:.1f} s at {ctx.prefect_api}")
        for module in modules:
            name = module.NAME
            log(f"{name}: {module.TITLE}")
            t0 = time.perf_counter()
            try:
                section: Section = module.run(ctx)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                section = Section(name, module.TITLE, notes=["**failed in this run** (see log)"])
            section.seconds = time.perf_counter() - t0
            for f in section.figures:
                log(f"  {f.label}: {f.show()}")
            sections.append(section)
    text = render(sections, facts(ROOT, pg), size, time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    log(f"wrote {args.out}")
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        sys.exit(1)
