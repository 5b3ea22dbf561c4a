"""The benchmark workload: housing repairs and hospital-stay visits, 1 : 3, start to payment.

Housing repair: submit → grassroots review → upper-level survey → provincial decision →
payment in two tranches (6 commands). Illness, hospital stay: submit → grassroots review →
payment (3 commands). Every peer runs exactly these steps for the same plan.
"""

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.core import Latencies
from bench.world import UPPER_OF, WorldSpec
from domain.model import CaseAggregate, TaskStatus
from domain.service.commands import Decide, DocumentIn, RecordPayment, SubmitCase
from domain.service.welfare import WelfareService
from domain.workcalendar import VN_TZ

HOUSING_STEPS = ("grassroots_review", "upper_survey", "province_decision", "payment", "payment")
ILLNESS_STEPS = ("grassroots_review", "payment_grassroots")
REPAIR_AMOUNT = 25_000_000
HOSPITAL_AMOUNT = 500_000
HOUSING_DOCS = (
    "application",
    "cccd",
    "land_certificate",
    "commune_confirmation",
    "survey_record",
    "cost_estimate",
    "counterpart_funds",
)
ILLNESS_DOCS = ("discharge_paper", "cccd", "health_data_consent")


@dataclass(frozen=True)
class Lifecycle:
    """One case to take from submission to payment."""

    n: int
    policy: str  # housing | illness
    unit: str
    member_id: str

    @property
    def commands(self) -> int:
        return 1 + (len(HOUSING_STEPS) if self.policy == "housing" else len(ILLNESS_STEPS))


def plan(spec: WorldSpec, count: int, offset: int = 0) -> list[Lifecycle]:
    """`count` lifecycles, every 4th a housing repair, spread over the grassroots units."""
    units = sorted(spec.members)
    out = []
    for i in range(offset, offset + count):
        unit = units[i % len(units)]
        members = spec.members[unit]
        out.append(
            Lifecycle(i, "housing" if i % 4 == 0 else "illness", unit, members[i // len(units)])
        )
    return out


def members_needed(count: int, units: int = 4) -> int:
    return count // units + 1


def doc_hash(n: int, kind: str) -> str:
    return hashlib.sha256(f"bench-{n}-{kind}".encode()).hexdigest()


def submit_command(lc: Lifecycle, today: datetime) -> SubmitCase:
    event_date = today.astimezone(VN_TZ).date()
    kinds: tuple[str, ...]
    if lc.policy == "housing":
        kinds, subtype = HOUSING_DOCS, "repair"
        form: dict[str, object] = {
            "housing_condition": "dilapidated",
            "monthly_income_per_capita": 1_200_000,
            "land_certificate_no": f"CS {lc.n:06d}",
        }
        amount = None
    else:
        kinds, subtype = ILLNESS_DOCS, "hospital"
        form = {
            "admission_date": event_date.isoformat(),
            "facility": "Bệnh viện Đa khoa tỉnh Lai Châu",
            "diagnosis_category": "other",
        }
        amount = HOSPITAL_AMOUNT
    return SubmitCase(
        policy=lc.policy,
        unit_id=lc.unit,
        member_id=lc.member_id,
        subtype=subtype,
        event_date=event_date,
        form=form,
        requested_amount=amount,
        documents=[
            DocumentIn(kind=k, filename=f"{k}.pdf", sha256=doc_hash(lc.n, k), size=120_000)
            for k in kinds
        ],
    )


def actor_for(spec: WorldSpec, lc: Lifecycle, step: str) -> str:
    a = spec.accounts
    if step == "grassroots_review":
        return a[f"chair_{lc.unit}"]
    if step == "upper_survey":
        return a[f"upper_{UPPER_OF[lc.unit]}"]
    if step == "province_decision":
        return a["province_standing"]
    if step == "payment":
        return a["treasurer_province"]
    return a[f"treasurer_{lc.unit}"]


def _open_task_id(agg: CaseAggregate) -> str:
    return next(t.id for t in agg.tasks if t.status is TaskStatus.OPEN)


def run_lifecycle(service: WelfareService, spec: WorldSpec, lc: Lifecycle, lat: Latencies) -> None:
    """Drive one case to `paid`, timing each command; fails loudly if the engine refuses."""
    t0 = time.perf_counter()
    sub = service.submit(spec.accounts[f"officer_{lc.unit}"], submit_command(lc, datetime.now(UTC)))
    lat.add("submit", time.perf_counter() - t0)
    if sub.status != "in_review" or sub.flags:
        raise RuntimeError(f"benchmark case not routed cleanly: {sub}")
    # The first approval's task comes with the answer, as the floor knows the id it inserted
    # (an inbox read here used to cost the engine ≈ 7 % of its time, and the peers nothing).
    [task_id] = sub.open_task_ids
    paid = 0
    steps = HOUSING_STEPS if lc.policy == "housing" else ILLNESS_STEPS
    total = REPAIR_AMOUNT if lc.policy == "housing" else HOSPITAL_AMOUNT
    for i, step in enumerate(steps):
        actor = actor_for(spec, lc, step)
        t0 = time.perf_counter()
        if step.startswith("payment"):
            amount = total // 2 if lc.policy == "housing" and paid == 0 else total - paid
            agg = service.record_payment(
                actor,
                RecordPayment(
                    case_id=sub.case_id,
                    amount=amount,
                    method="bank_transfer",
                    reference=f"UNC-{lc.n}-{i}",
                ),
            )
            paid += amount
            lat.add("pay", time.perf_counter() - t0)
        else:
            agg = service.decide(actor, Decide(task_id=task_id, action="approve"))
            lat.add("decide", time.perf_counter() - t0)
        if i + 1 < len(steps):
            task_id = _open_task_id(agg)
    if agg.case.status.value != "paid":
        raise RuntimeError(f"benchmark case {sub.case_id} ended {agg.case.status.value}")
