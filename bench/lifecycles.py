"""Lifecycle throughput of one driver (the engine or the floor) on SQLite and PostgreSQL."""

from bench.clients import Driver, Outcome, run_clients, run_here
from bench.core import Figure, Latencies, RunContext, Section, percentile
from bench.dbs import Kind, fresh_db
from bench.workload import members_needed, plan
from bench.world import app_for, build_world

WARMUP = 8


def measure(driver: Driver, section: Section, ctx: RunContext) -> dict[str, Outcome]:
    """One client, then `concurrent_clients` client processes, on each available database."""
    kinds: list[Kind] = ["sqlite"]
    if ctx.postgres_url:
        kinds.append("postgres")
    else:
        section.notes.append("PostgreSQL not reachable: its figures are missing from this run.")
    out: dict[str, Outcome] = {}
    n, clients = ctx.size.lifecycles, ctx.size.concurrent_clients
    for kind in kinds:
        # PostgreSQL also with twice as many clients as cores: a command there mostly waits on
        # round trips to the server, which other clients' commands can fill (production runs
        # several API workers and flow workers against one server). SQLite writers queue for
        # one file lock, so more clients than cores only adds contention.
        counts = [clients, 2 * clients] if kind == "postgres" and clients > 1 else [clients]
        with fresh_db(kind, f"{driver}", ctx.workdir, ctx.postgres_url) as db:
            engine = db.engine()
            app = app_for(db, engine)
            total = WARMUP * (1 + sum(counts)) + (1 + len(counts)) * n
            spec = build_world(app, members_needed(total))
            engine.dispose()
            warm = plan(spec, WARMUP)
            seq = plan(spec, n, offset=WARMUP)
            ctx.log(f"  {driver} on {kind}: {n} lifecycles, one client")
            one = run_here(driver, db, spec, seq, warm)
            out[f"{kind}.1"] = one
            if clients <= 1:  # the smoke size: one client only, to stay fast
                _figures(driver, kind, section, one, [])
                continue
            base = WARMUP + n
            manies: list[tuple[int, Outcome]] = []
            for count in counts:
                per = n // count
                plans = [plan(spec, per, offset=base + i * (per + WARMUP)) for i in range(count)]
                warms = [
                    plan(spec, WARMUP, offset=base + i * (per + WARMUP) + per) for i in range(count)
                ]
                base += count * (per + WARMUP)
                ctx.log(f"  {driver} on {kind}: {per * count} lifecycles, {count} clients")
                many = run_clients(driver, db, spec, plans, warms)
                out[f"{kind}.{count}"] = many
                manies.append((count, many))
        _figures(driver, kind, section, one, manies)
    return out


NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
COMMAND_WORDS = {
    "submit": "filing a case",
    "decide": "deciding a task",
    "pay": "recording a payment",
}


def _figures(
    driver: Driver, kind: str, section: Section, one: Outcome, manies: list[tuple[int, Outcome]]
) -> None:
    db = NAMES[kind]
    who = "the engine (service layer)" if driver == "service" else "the plain-SQL floor"
    runs = [(f"{kind}", one, "1 client")]
    for clients, many in manies:
        runs.append((f"{kind}.c{clients}", many, f"{clients} clients"))
    for tag, o, label in runs:
        section.add(
            Figure(
                f"{driver}.{tag}.commands_per_s",
                f"{db}, {label}: commands/s",
                o.commands / o.seconds,
                "cmd/s",
                explain=f"Commands per second through {who} on {db} with {label}.",
            )
        )
        section.add(
            Figure(
                f"{driver}.{tag}.lifecycles_per_s",
                f"{db}, {label}: complete lifecycles/s",
                o.lifecycles / o.seconds,
                "cases/s",
                explain="Cases taken from submission to payment per second (1 housing : 3 illness).",
            )
        )
    lat: Latencies = one.latencies
    for kind_name, values in sorted(lat.by_kind.items()):
        what = COMMAND_WORDS.get(kind_name, kind_name)
        p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
        if driver == "service":
            say50 = (
                f"Half of the commands {what} took at most this in the engine, checks and "
                "audit entry included, before any HTTP: the database side of an official's click."
            )
            say99 = (
                f"1 in 100 commands {what} took longer. A person notices a delay from ≈ 100 ms; "
                f"this is {100 / max(p99, 1e-9):,.0f}× below it."
            )
        else:
            say50 = (
                f"The writes of {what}, as plain SQL: the part of the engine's time that is the "
                "database's own."
            )
            say99 = f"1 in 100 of the plain-SQL writes of {what} took longer."
        section.add(
            Figure(
                f"{driver}.{kind}.{kind_name}.p50_ms",
                f"{db}, 1 client: {kind_name} p50",
                p50,
                "ms",
                explain=say50,
            )
        )
        section.add(
            Figure(
                f"{driver}.{kind}.{kind_name}.p99_ms",
                f"{db}, 1 client: {kind_name} p99",
                p99,
                "ms",
                explain=say99,
            )
        )
    rss = max((many.peak_rss_mb for _, many in manies), default=0.0)
    if driver == "service" and rss:
        section.add(
            Figure(
                f"service.{kind}.worker_rss_mb",
                f"{db}: peak RSS of one service client process",
                rss,
                "MB",
                explain="Peak resident memory of a process running the service-layer workload "
                "(definitions loaded, engine pool open).",
            )
        )
