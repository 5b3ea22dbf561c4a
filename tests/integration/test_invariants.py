"""Property-based: random command sequences, right and wrong actors, clock jumps, and the
invariants that must hold whatever happened.

Each example builds a fresh world, runs 12–40 commands (submit, approve, approve lower, reject,
return, provide, withdraw, claim, release, pay, SLA sweep after a clock jump), expects many to
be refused (a refused command must write nothing), then checks the whole database.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from domain.adapters.repository import (
    BUDGET,
    CAMPAIGN,
    CASE,
    CLAIM_KEY,
    DECISION,
    MEMBER,
    OUTBOX,
    PAYMENT,
    TASK,
)
from domain.errors import Conflict, DomainError
from domain.roles import Role
from domain.rules.builtin import window_start
from domain.rules.facts import LIVE_STATUSES
from domain.service.commands import Decide, ProvideInformation, RecordPayment
from domain.service.queries import verify_audit
from domain.workflow import PaymentStep
from tests.integration.helpers_flow import counts
from tests.support import (
    POSTGRES_URL,
    Clock,
    Database,
    World,
    build_world,
    postgres_database,
    sha,
    sqlite_database,
)

# --- the world every example starts from ------------------------------------------------

PARENT = {"CS-A": "TP", "CS-B": "TP", "CS-C": "DK", "TP": "LC", "DK": "LC", "LC": "VN"}
GRANTS: dict[str, tuple[str, str]] = {
    "officer_a": ("grassroots_officer", "CS-A"),
    "officer_a2": ("grassroots_officer", "CS-A"),
    "chair_a": ("grassroots_chair", "CS-A"),
    "chair_a2": ("grassroots_chair", "CS-A"),
    "officer_b": ("grassroots_officer", "CS-B"),
    "chair_b": ("grassroots_chair", "CS-B"),
    "officer_c": ("grassroots_officer", "CS-C"),
    "chair_c": ("grassroots_chair", "CS-C"),
    "upper_tp": ("upper_chair", "TP"),
    "upper_tp2": ("upper_chair", "TP"),
    "upper_dk": ("upper_chair", "DK"),
    "province_standing": ("province_standing", "LC"),
    "province_standing2": ("province_standing", "LC"),
    "province_policy": ("province_policy", "LC"),
    "president": ("province_president", "LC"),
    "board1": ("province_board", "LC"),
    "board2": ("province_board", "LC"),
    "board3": ("province_board", "LC"),
    "treasurer_province": ("treasurer", "LC"),
    "treasurer_tp": ("treasurer", "TP"),
    "treasurer_a": ("treasurer", "CS-A"),
    "treasurer_c": ("treasurer", "CS-C"),
    "auditor": ("auditor", "LC"),
    "auditor_tp": ("auditor", "TP"),
    # Accounts of people who are also members: an officer filing, a chair approving.
    "officer_member": ("grassroots_officer", "CS-A"),
    "chair_member": ("grassroots_chair", "CS-A"),
}
ACCOUNTS = sorted(GRANTS)
OFFICER_OF = {
    "CS-A": ["officer_a", "officer_a2", "officer_member"],
    "CS-B": ["officer_b"],
    "CS-C": ["officer_c"],
}

# (unit, household, commune, joined, sex); member 5 shares name and birth date with member 2.
MEMBERS = [
    ("CS-A", "H1", "TP", date(2015, 1, 1), "male"),
    ("CS-A", "H1", "TP", date(2016, 1, 1), "female"),
    ("CS-B", None, "TP", date(2012, 6, 1), "male"),
    ("CS-C", None, "DK", date(2018, 3, 1), "female"),
    ("CS-A", None, "TP", date(2025, 9, 1), "male"),  # too new for Tết and housing
    ("CS-B", None, "TP", date(2014, 2, 1), "male"),
    ("CS-B", None, "DK", date(2019, 1, 1), "female"),  # lives outside the area, works inside
]

SUBMISSIONS: list[tuple[str, str, dict[str, Any], int | None]] = [
    ("disaster", "death_missing", {}, None),
    ("disaster", "serious_injury", {}, None),
    ("disaster", "house_collapsed", {}, None),
    ("disaster", "house_damaged", {}, None),
    ("disaster", "property_loss", {}, None),
    ("tet", "standard", {"criterion": "low_income"}, None),
    ("tet", "standard", {"criterion": "hazardous_or_remote", "disaster_area": True}, None),
    ("tet", "special_hardship", {"criterion": "serious_illness", "disaster_area": True}, None),
    ("job_loss", "terminated", {"employer": "Công ty May Lai Châu"}, None),
    ("job_loss", "reduced_hours_14", {"employer": "Công ty May Lai Châu"}, None),
    ("illness", "accident_hospital", {}, None),
    ("illness", "hospital", {"facility": "BV Đa khoa tỉnh"}, 600_000),
    ("housing", "repair", {"housing_condition": "dilapidated"}, None),
    ("housing", "rent", {"housing_condition": "renting", "rent_months": 3}, None),
]


@dataclass
class Run:
    world: World
    members: list[str]
    campaigns: dict[str, str]
    cases: list[str] = field(default_factory=list)
    refused: int = 0
    serial: int = 0


def setup(world: World, disaster_budget: int) -> Run:
    members = []
    for i, (unit, hh, commune, joined, sex) in enumerate(MEMBERS):
        dob = date(1984, 7, 9) if i in (2, 5) else date(1970 + i, 1 + i, 10 + i)
        members.append(
            world.member(unit, joined=joined, dob=dob, sex=sex, household=hh, commune=commune)
        )
    world.account("officer_member", Role.GRASSROOTS_OFFICER, "CS-A", member_id=members[0])
    world.account("chair_member", Role.GRASSROOTS_CHAIR, "CS-A", member_id=members[1])
    world.admin.set_budget("test", "LC", 2026, "thien_tai", disaster_budget)
    campaigns = {
        "disaster": world.campaign("disaster", "INV-FLOOD", affected_communes=["TP"]),
        "tet": world.campaign("tet", "INV-TET", quotas={"CS-A": 2}),
        "job_loss": world.campaign("job_loss", "INV-JOBS"),
    }
    return Run(world, members, campaigns)


# --- commands -----------------------------------------------------------------------------

idx = st.integers(0, 40)
mostly = st.sampled_from([True, True, True, False])  # right actor / own unit / with documents
submit = st.tuples(
    st.just("submit"),
    st.integers(0, len(SUBMISSIONS) - 1),
    st.integers(0, len(MEMBERS) - 1),
    mostly,
    mostly,
)
command = st.one_of(
    *[submit] * 3,
    *[
        st.tuples(
            st.just("decide"),
            idx,
            idx,
            mostly,
            st.sampled_from(["approve", "approve", "approve", "lower", "reject", "return"]),
        )
    ]
    * 5,
    st.tuples(st.just("provide"), idx, idx),
    st.tuples(st.just("withdraw"), idx, idx),
    *[st.tuples(st.just("pay"), idx, idx, mostly)] * 2,
    st.tuples(st.just("claim"), idx, idx, st.booleans()),
    st.tuples(st.just("release"), idx, idx),
    st.tuples(st.just("escalate"), st.sampled_from([3, 20, 50, 130])),
    *[st.tuples(st.just("advance"), idx, st.integers(1, 5))] * 2,
)


def holders(role: str, unit: str) -> list[str]:
    chain = set()
    u: str | None = unit
    while u is not None:
        chain.add(u)
        u = PARENT.get(u)
    return [a for a, (r, at) in GRANTS.items() if r == role and at in chain]


def open_task(run: Run, case_id: str) -> dict[str, Any] | None:
    with run.world.app.engine.connect() as conn:
        rows = (
            conn.execute(select(TASK).where(TASK.c.case_id == case_id).order_by(TASK.c.opened_at))
            .mappings()
            .all()
        )
    live = [dict(r) for r in rows if r["status"] == "open"]
    return live[0] if live else (dict(rows[-1]) if rows else None)


def case_row(run: Run, case_id: str) -> dict[str, Any]:
    with run.world.app.engine.connect() as conn:
        return dict(conn.execute(select(CASE).where(CASE.c.id == case_id)).mappings().one())


def pick(options: list[str], i: int) -> str:
    return options[i % len(options)] if options else ACCOUNTS[i % len(ACCOUNTS)]


def documents(run: Run, policy: str, subtype: str) -> list[Any]:
    from domain.service.commands import DocumentIn

    run.serial += 1
    kinds = run.world.app.definitions.current(policy).subtypes[subtype].documents
    return [
        DocumentIn(kind=k, filename=f"{k}.pdf", sha256=sha(f"{k}-{run.serial}"), size=100)
        for k in kinds
    ]


def execute(run: Run, cmd: tuple[Any, ...]) -> None:
    w, acc = run.world, run.world.accounts
    kind = cmd[0]
    if kind == "escalate":
        w.clock.advance(hours=cmd[1])
        w.service.escalate_due(w.clock.now)
        return
    if kind == "submit":
        _, s, m, own_unit, with_docs = cmd
        policy, subtype, form, amount = SUBMISSIONS[s]
        unit = MEMBERS[m][0] if own_unit else "CS-A"
        by = pick(OFFICER_OF[unit], run.serial)
        sub = w.submit(
            policy,
            subtype,
            run.members[m],
            unit=unit,
            by=by,
            form=dict(form),
            amount=amount,
            campaign_id=run.campaigns.get(policy),
            documents=documents(run, policy, subtype) if with_docs else [],
        )
        run.cases.append(sub.case_id)
        return
    if not run.cases:
        raise Conflict("task_not_open")
    case_id = run.cases[cmd[1] % len(run.cases)]
    task = open_task(run, case_id)
    if task is None:  # rejected at screening: there is no task to act on
        raise Conflict("task_not_open")
    if kind == "advance":
        advance(run, case_id, steps=cmd[2])
    elif kind == "decide":
        _, _, who, right, action = cmd
        actor = pick(holders(task["role"], task["org_unit_id"]) if right else ACCOUNTS, who)
        case = case_row(run, case_id)
        amount = None
        if action == "lower":
            action, amount = (
                "approve",
                max(1, (case["approved_amount"] or case["entitled_amount"]) // 2),
            )
        reason = "Lý do" if action in ("reject", "return") else None
        w.service.decide(
            acc[actor], Decide(task_id=task["id"], action=action, amount=amount, reason=reason)
        )
    elif kind == "provide":
        case = case_row(run, case_id)
        officers = [case_submitter(run, case), *OFFICER_OF[case["unit_id"]]]
        w.service.provide_information(
            acc[pick(officers, cmd[2])],
            ProvideInformation(
                case_id=case_id, documents=documents(run, case["policy"], case["subtype"])
            ),
        )
    elif kind == "withdraw":
        w.service.withdraw(acc[pick(ACCOUNTS, cmd[2])], case_id, "rút")
    elif kind == "claim":
        right = cmd[3]
        actor = pick(holders(task["role"], task["org_unit_id"]) if right else ACCOUNTS, cmd[2])
        w.service.claim(acc[actor], task["id"])
    elif kind == "release":
        w.service.release(acc[pick(ACCOUNTS, cmd[2])], task["id"])
    elif kind == "pay":
        _, _, who, right = cmd
        case = case_row(run, case_id)
        actor = pick(holders("treasurer", task["org_unit_id"]) if right else ACCOUNTS, who)
        w.service.record_payment(
            acc[actor],
            RecordPayment(
                case_id=case_id,
                amount=max(1, tranche_due(run, case, task)),
                method="bank_transfer",
                reference=f"UNC-{run.serial}",
            ),
        )
        run.serial += 1


def advance(run: Run, case_id: str, steps: int) -> None:
    """Up to `steps` approvals or payments by the right people, each its own command; every
    holder of the task's role is tried in turn (a refused try must write nothing)."""
    w = run.world
    for _ in range(steps):
        task = open_task(run, case_id)
        if task is None or task["status"] != "open" or task["kind"] == "member_input":
            return
        progressed = False
        for actor in holders(task["role"], task["org_unit_id"]):
            before = counts(w)
            try:
                if task["kind"] == "payment":
                    execute(
                        run,
                        (
                            "pay",
                            run.cases.index(case_id),
                            holders(task["role"], task["org_unit_id"]).index(actor),
                            True,
                        ),
                    )
                else:
                    w.service.decide(
                        w.accounts[actor], Decide(task_id=task["id"], action="approve")
                    )
            except DomainError:
                run.refused += 1
                assert counts(w) == before, f"refused advance by {actor} but wrote something"
                continue
            progressed = True
            break
        if not progressed:
            return


def case_submitter(run: Run, case: dict[str, Any]) -> str:
    return next(n for n, a in run.world.accounts.items() if a == case["submitted_by"])


def tranche_due(run: Run, case: dict[str, Any], task: dict[str, Any]) -> int:
    step = run.world.app.definitions.get(case["policy"], case["policy_version"]).steps.get(
        task["step"]
    )
    total = int(case["approved_amount"] or case["entitled_amount"])
    if not isinstance(step, PaymentStep):
        return total
    tranche = int(task["tranche"] or 1)
    if tranche >= len(step.tranches):
        return total - int(case["paid_amount"])
    return total * step.tranches[tranche - 1] // 100


# --- invariants ---------------------------------------------------------------------------

TERMINAL = {"paid", "rejected", "withdrawn"}
TASK_KIND_OF = {"in_review": "approval", "awaiting_info": "member_input", "approved": "payment"}
TERMINAL_EVENT = {"paid": "case.paid", "rejected": "case.rejected", "withdrawn": "case.withdrawn"}


def rows(run: Run, table: Any) -> list[dict[str, Any]]:
    with run.world.app.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table)).mappings()]


def check_invariants(run: Run) -> None:
    w = run.world
    cases = {c["id"]: c for c in rows(run, CASE)}
    tasks = rows(run, TASK)
    decisions = rows(run, DECISION)
    payments = rows(run, PAYMENT)
    members = {m["id"]: m for m in rows(run, MEMBER)}

    # One status each; terminal cases have no open task, live ones exactly the matching one.
    open_by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in tasks:
        if t["status"] == "open":
            open_by_case[t["case_id"]].append(t)
    for cid, c in cases.items():
        assert c["status"] in TERMINAL | set(TASK_KIND_OF), c["status"]
        if c["status"] in TERMINAL:
            assert open_by_case[cid] == [], (c["status"], open_by_case[cid])
        else:
            assert [t["kind"] for t in open_by_case[cid]] == [TASK_KIND_OF[c["status"]]], cid
        paid = sum(p["amount"] for p in payments if p["case_id"] == cid)
        assert c["paid_amount"] == paid
        if c["status"] in ("approved", "paid"):
            assert c["reserved_amount"] + c["paid_amount"] == c["approved_amount"]
        else:
            assert c["reserved_amount"] == 0
            assert c["paid_amount"] == 0

    # Budgets: never over-committed; reservations and spending match the cases.
    for b in rows(run, BUDGET):
        assert b["reserved"] >= 0
        assert b["spent"] >= 0
        assert b["reserved"] + b["spent"] <= b["amount"], b
        key = (b["org_unit_id"], b["year"], b["fund"])
        mine = [
            c
            for c in cases.values()
            if (c["budget_unit_id"], c["budget_year"], c["budget_fund"]) == key
        ]
        assert b["reserved"] == sum(c["reserved_amount"] for c in mine if c["status"] == "approved")
        assert b["spent"] == sum(c["paid_amount"] for c in mine)

    # Caps, duplicates and quotas among live cases.
    live = [c for c in cases.values() if c["status"] in LIVE_STATUSES]
    keys = rows(run, CLAIM_KEY)
    assert all(cases[k["case_id"]]["status"] in LIVE_STATUSES for k in keys)
    for (policy, version), defn in w.app.definitions.versions.items():
        mine = [c for c in live if c["policy"] == policy and c["policy_version"] == version]
        for use in defn.limits:
            if use.on_fail == "flag":
                continue
            applies = [c for c in mine if use.subtypes is None or c["subtype"] in use.subtypes]
            p = use.params
            who = "member_id" if p.get("scope") == "member" else "household_key"
            if use.rule == "unique_claim":
                seen: dict[tuple[Any, ...], str] = {}
                for c in applies:
                    key = (c[who], *(part_of(c, part) for part in p["on"]))
                    assert key not in seen, (policy, use.rule, key)
                    seen[key] = c["id"]
            elif use.rule in ("frequency_cap", "amount_cap"):
                counted = p.get("count_subtypes")
                for anchor in applies:
                    start = window_start(p["within"], anchor["event_date"])
                    group = [
                        c
                        for c in mine
                        if c[who] == anchor[who]
                        and (counted is None or c["subtype"] in counted)
                        and (start is None or c["event_date"] >= start)
                        and (c["event_date"] <= anchor["event_date"] or p["within"] == "lifetime")
                    ]
                    if use.rule == "frequency_cap":
                        assert len(group) <= p["max_count"], (policy, p, len(group))
                    else:
                        total = sum(c["approved_amount"] or c["entitled_amount"] for c in group)
                        assert total <= p["max_amount"], (policy, p, total)
    for campaign in rows(run, CAMPAIGN):
        for unit, quota in (campaign["params"] or {}).get("quotas", {}).items():
            used = sum(c["campaign_id"] == campaign["id"] and c["unit_id"] == unit for c in live)
            assert used <= quota, (campaign["code"], unit, used, quota)

    # Separation of duties, from the decision table.
    functions: dict[tuple[str, str], set[str]] = defaultdict(set)
    approvers: dict[str, list[str]] = defaultdict(list)
    for d in decisions:
        fn = "pay" if d["action"] == "pay" else f"step:{d['step']}"
        functions[(d["case_id"], d["person_key"])].add(fn)
        if d["action"] in ("approve", "approve_lower", "vote_approve", "vote_reject"):
            approvers[d["task_id"]].append(d["person_key"])
    for (cid, person), fns in functions.items():
        c = cases[cid]
        assert len(fns) == 1, (cid, person, fns)
        assert person != c["submitter_person"], (cid, person)
        assert person != c["member_id"]
        if person in members:  # an account linked to a member acts as that member
            assert members[person]["household_key"] != c["household_key"]
    for task_id, people in approvers.items():
        assert len(people) == len(set(people)), task_id

    # The audit chain verifies; each case's events are in order and end with its outcome.
    assert verify_audit(w.app.engine).ok
    by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in sorted(rows(run, OUTBOX), key=lambda e: e["seq"]):
        if e["case_id"] is not None:
            by_case[e["case_id"]].append(e)
    assert set(by_case) == set(cases)
    for cid, events in by_case.items():
        times = [e["occurred_at"] for e in events]
        assert times == sorted(times), cid
        types = [e["type"] for e in events]
        assert types[0] == "case.submitted", types
        status = cases[cid]["status"]
        if status in TERMINAL_EVENT:
            end = types.index(TERMINAL_EVENT[status])
            assert all(
                t in ("case.payment_recorded", "task.decided", "case.flagged")
                for t in types[end + 1 :]
            ), types
        opened = {e["data"]["task"] for e in events if e["type"] == "task.opened"}
        assert opened == {t["id"] for t in tasks if t["case_id"] == cid}, cid


def part_of(c: dict[str, Any], part: str) -> Any:
    if part == "campaign":
        return c["campaign_id"]
    if part == "subtype":
        return c["subtype"]
    if part == "event_date":
        return c["event_date"]
    return str((c["form"] or {}).get(part[5:])).strip().casefold()


# --- the properties -----------------------------------------------------------------------


def run_sequence(db: Database, tmp: Path, budget: int, commands: list[tuple[Any, ...]]) -> Run:
    world = build_world(db, tmp, Clock())
    run = setup(world, budget)
    for cmd in commands:
        before = counts(world)
        try:
            execute(run, cmd)
        except DomainError:
            run.refused += 1
            assert counts(world) == before, f"refused {cmd} but wrote something"
    check_invariants(run)
    return run


def run_and_close(db: Database, tmp: Path, budget: int, commands: list[tuple[Any, ...]]) -> Run:
    try:
        return run_sequence(db, tmp, budget, commands)
    finally:
        db.close()


sequences = st.builds(
    lambda first, rest: first + rest,
    st.lists(submit, min_size=2, max_size=6),  # something to act on from the start
    st.lists(command, min_size=10, max_size=35),
)
budgets = st.sampled_from([2_000_000_000, 12_000_000, 4_000_000])


@pytest.mark.slow
def test_random_command_sequences_keep_every_invariant_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
    )
    @given(commands=sequences, budget=budgets)
    def prop(commands: list[tuple[Any, ...]], budget: int) -> None:
        tmp = tmp_path_factory.mktemp("inv")
        run_and_close(sqlite_database(tmp), tmp, budget, commands)

    prop()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="WELFARE_TEST_POSTGRES_URL is not set")
def test_random_command_sequences_keep_every_invariant_on_postgres(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    @settings(
        max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
    )
    @given(commands=sequences, budget=budgets)
    def prop(commands: list[tuple[Any, ...]], budget: int) -> None:
        tmp = tmp_path_factory.mktemp("inv-pg")
        run_and_close(postgres_database(), tmp, budget, commands)

    prop()


def test_a_hand_written_sequence_exercises_approvals_payments_and_refusals(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A fixed sequence, so the checks above are known to see real progress, not only refusals."""
    tmp = tmp_path_factory.mktemp("inv-fixed")
    cmds: list[tuple[Any, ...]] = [
        ("submit", 3, 0, True, True),  # disaster house_damaged, member 0
        ("submit", 3, 1, True, True),  # same household: refused
        ("submit", 5, 2, True, True),  # Tết standard, CS-B
        ("decide", 0, 0, True, "approve"),
        ("pay", 0, 0, True),
        ("decide", 1, 0, True, "return"),
        ("provide", 1, 0),
        ("decide", 1, 0, False, "approve"),  # most likely a wrong account: refused
        ("escalate", 130),
        ("withdraw", 1, 0),
    ]
    db = sqlite_database(tmp)
    try:
        run = run_sequence(db, tmp, 2_000_000_000, cmds)
        assert [case_row_status(run, c) for c in run.cases] == ["paid", "in_review"]
        assert run.refused >= 1
    finally:
        db.close()


def case_row_status(run: Run, case_id: str) -> str:
    return str(case_row(run, case_id)["status"])
