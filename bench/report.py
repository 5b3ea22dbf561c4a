"""The results file: machine facts, the targets with figures and ratios of one run, and prose.

Every ratio is computed from figures measured in the same run, so machine noise cancels out
as far as it can; absolute figures on a shared 2-core machine move by ±30 % between runs.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.core import Figure, Section, Size

HERE = Path(__file__).resolve().parent
COMMANDS_PER_CASE = (6 + 3 * 3) / 4  # the 1 housing : 3 illness mix


@dataclass(frozen=True)
class Target:
    text: str
    measure: Callable[[dict[str, Figure]], tuple[str, bool | None] | None]


def _f(figs: dict[str, Figure], key: str) -> float | None:
    f = figs.get(key)
    return f.value if f else None


def _rate(figs: dict[str, Figure], driver: str, kind: str, what: str) -> float | None:
    return _f(figs, f"{driver}.{kind}.{what}")


def _min_rate(
    target: float, driver: str, kind: str
) -> Callable[[dict[str, Figure]], tuple[str, bool] | None]:
    def m(figs: dict[str, Figure]) -> tuple[str, bool] | None:
        one = _rate(figs, driver, kind, "commands_per_s")
        if one is None:
            return None
        many = [
            f
            for k, f in figs.items()
            if k.startswith(f"{driver}.{kind}.c") and k.endswith("commands_per_s")
        ]
        best, where = one, "1 client"
        for f in many:
            if f.value > best:
                best, where = f.value, f.label.split(":")[0].split(", ")[1]
        return f"{best:,.0f} cmd/s ({where}) = {best / target:.2f}× the target", best >= target

    return m


def _ratio_floor(kind: str) -> Callable[[dict[str, Figure]], tuple[str, bool] | None]:
    def m(figs: dict[str, Figure]) -> tuple[str, bool] | None:
        a, b = (
            _rate(figs, "service", kind, "commands_per_s"),
            _rate(figs, "floor", kind, "commands_per_s"),
        )
        if a is None or b is None:
            return None
        return f"{a:,.0f} / {b:,.0f} cmd/s = {a / b:.0%} of the floor", a / b >= 0.25

    return m


def _ratio_peer(
    kind: str, peer_key: str, factor: float, peer: str
) -> Callable[[dict[str, Figure]], tuple[str, bool] | None]:
    def m(figs: dict[str, Figure]) -> tuple[str, bool] | None:
        a, b = _rate(figs, "service", kind, "lifecycles_per_s"), _f(figs, peer_key)
        if a is None or b is None or b <= 0:
            return None
        return f"{a:,.1f} / {b:,.3g} cases/s = {a / b:,.1f}× {peer}", a / b >= factor

    return m


def _sweep(figs: dict[str, Figure]) -> tuple[str, bool] | None:
    rows = sorted(
        (
            (f.key, f.value)
            for f in figs.values()
            if f.key.startswith("escalation.") and f.key.endswith(".seconds")
        ),
    )
    if not rows:
        return None
    worst = max(v for _, v in rows)
    text = ", ".join(f"{k.split('.')[1]} {k.split('.')[2]}: {v:.3f} s" for k, v in rows)
    ok = worst <= 0.5
    for kind in ("sqlite", "postgres"):
        small, big = (
            _f(figs, f"escalation.{kind}.10000.seconds"),
            _f(figs, f"escalation.{kind}.1000000.seconds"),
        )
        if small and big:
            text += f"; {kind} 1M/10k = {big / small:.2f}×"
            ok = ok and big <= 2 * small
    return text, ok


def _audit_verify(figs: dict[str, Figure]) -> tuple[str, bool] | None:
    rows = [
        f for f in figs.values() if f.key.startswith("audit.") and f.key.endswith("verify_per_s")
    ]
    if not rows:
        return None
    worst = min(f.value for f in rows)
    return ", ".join(f"{f.label.split(':')[0]} {f.value:,.0f}/s" for f in rows), worst >= 200_000


def _audit_trail(figs: dict[str, Figure]) -> tuple[str, bool] | None:
    rows = [
        f for f in figs.values() if f.key.startswith("audit.") and f.key.endswith("trail_p95_ms")
    ]
    if not rows:
        return None
    worst = max(f.value for f in rows)
    return ", ".join(f"{f.label.split(':')[0]} {f.value:.2f} ms" for f in rows), worst <= 5


def _memory(figs: dict[str, Figure]) -> tuple[str, bool] | None:
    rows = [f for f in figs.values() if f.key.endswith("rss_mb")]
    if not rows:
        return None
    ok = all(f.value <= (300 if "flow" in f.key or "prefect" in f.key else 200) for f in rows)
    return ", ".join(f"{f.label}: {f.value:.0f} MB" for f in rows), ok


def _relay(figs: dict[str, Figure]) -> tuple[str, bool | None] | None:
    rows = sorted(
        (f for f in figs.values() if f.key.startswith("relay.") and f.key.endswith("_per_s")),
        key=lambda f: f.key,
    )
    if not rows:
        return None
    best = max((f.value for f in rows if ".prefect." in f.key), default=0.0)
    text = "; ".join(f"{f.label.split(':')[0]}: {f.value:,.0f}/s" for f in rows)
    return text, best >= 1000


def _http(figs: dict[str, Figure]) -> tuple[str, bool | None] | None:
    f = figs.get("http.sqlite.decisions_per_s")
    if f is None:
        return None
    return f"SQLite, one uvicorn worker: {f.value:,.0f} decisions/s", None


def _inbox(figs: dict[str, Figure]) -> tuple[str, bool | None] | None:
    p50, p99 = figs.get("http.sqlite.inbox_p50_ms"), figs.get("http.sqlite.inbox_p99_ms")
    if p50 is None or p99 is None:
        return None
    scale = p50.label.split("(")[-1].rstrip(")")
    return f"p50 {p50.value:.1f} ms, p99 {p99.value:.1f} ms ({scale})", None


def _tet(figs: dict[str, Figure]) -> tuple[str, bool | None] | None:
    f = figs.get("tet.sqlite.flow.seconds")
    if f is None:
        return None
    inline = figs.get("tet.sqlite.inline.seconds")
    text = f"{f.label.split(':')[0]}: {f.value:,.1f} s"
    if inline:
        text += f" (inline screening: {inline.value:,.1f} s)"
    return text, f.met if f.met is not None else False


TARGETS = [
    Target(
        "Commands through the service layer on SQLite ≥ 1,000/s",
        _min_rate(1000, "service", "sqlite"),
    ),
    Target(
        "Commands through the service layer on PostgreSQL ≥ 500/s",
        _min_rate(500, "service", "postgres"),
    ),
    Target("≥ 25 % of the floor's rate for the same writes, SQLite", _ratio_floor("sqlite")),
    Target("≥ 25 % of the floor's rate for the same writes, PostgreSQL", _ratio_floor("postgres")),
    Target(
        "Lifecycles ≥ 2× SpiffWorkflow with the same database, SQLite",
        _ratio_peer("sqlite", "spiff.sqlite.lifecycles_per_s", 2, "SpiffWorkflow"),
    ),
    Target(
        "Lifecycles ≥ 2× SpiffWorkflow with the same database, PostgreSQL",
        _ratio_peer("postgres", "spiff.postgres.lifecycles_per_s", 2, "SpiffWorkflow"),
    ),
    Target(
        "Lifecycles ≥ 100× Prefect-native pause/resume",
        _ratio_peer("sqlite", "prefect.lifecycles_per_s", 100, "Prefect-native"),
    ),
    Target(
        "Escalation sweep, 1,000 overdue among 10k/100k/1M open: ≤ 0.5 s each, 1M ≤ 2× 10k", _sweep
    ),
    Target("Audit chain verification ≥ 200,000 entries/s", _audit_verify),
    Target("One case's trail p95 ≤ 5 ms (1,000,000 entries at size full)", _audit_trail),
    Target(
        "Event relay through Prefect ≥ 1,000 events/s (batching hides the per-run cost)", _relay
    ),
    Target("HTTP: highest sustained rate of decisions with p99 ≤ 100 ms", _http),
    Target("HTTP: inbox reads p50/p99 at 1,000,000 cases (size full)", _inbox),
    Target("A Tết list of 10,000 members in one request to every first task open ≤ 20 s", _tet),
    Target("Peak RSS: service/API worker ≤ 200 MB, flow worker ≤ 300 MB", _memory),
]


def _explain(f: Figure) -> str:
    text = f.explain
    if f.key.endswith("commands_per_s"):
        per_hour = f.value * 3600
        text += (
            f" One machine: ≈ {per_hour:,.0f} commands an hour, i.e. ≈ {per_hour / COMMANDS_PER_CASE:,.0f}"
            " cases from submission to payment an hour at this mix."
        )
    elif f.key.endswith("lifecycles_per_s"):
        text += f" ≈ {f.value * 3600:,.0f} complete cases an hour."
    return text.strip()


def render(sections: list[Section], facts: dict[str, str], size: Size, total_s: float) -> str:
    figs = {f.key: f for s in sections for f in s.figures}
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python -m bench --size {size.name}` in {total_s:,.0f} s. "
        "**The machine is shared** (2 cores; other engineers' test runs may use them at the "
        "same time — see the load at start): absolute numbers move by ±30 % between runs; "
        "compare the ratios, which come from one run.",
        "",
        "| fact | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in facts.items()],
        "",
        "## Targets (issue 5)",
        "",
        "| target | measured (same run) | met |",
        "|---|---|---|",
    ]
    for t in TARGETS:
        got = t.measure(figs)
        if got is None:
            lines.append(f"| {t.text} | not measured in this run | — |")
        else:
            met = "—" if got[1] is None else "yes" if got[1] else "**no**"
            lines.append(f"| {t.text} | {got[0]} | {met} |")
    lines.append("")
    for s in sections:
        lines += [f"## {s.title}", "", f"_Module `bench/{s.name}.py`, {s.seconds:,.1f} s._", ""]
        lines += [f"- {n}" for n in s.notes]
        if s.notes:
            lines.append("")
        if s.figures:
            lines += ["| figure | value | what it means |", "|---|---|---|"]
            lines += [f"| {f.label} | {f.show()} | {_explain(f)} |" for f in s.figures]
            lines.append("")
    extra = HERE / "NOTES.md"
    if extra.exists():
        lines += [extra.read_text().strip(), ""]
    return "\n".join(lines)
