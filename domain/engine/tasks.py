"""Human tasks: opening them with SLA clocks, authorising who may act, and the escalation ladder."""

from datetime import datetime

from domain.engine.context import Actor, Ctx
from domain.errors import Conflict, InvalidRequest, PermissionDenied
from domain.ids import new_id
from domain.model import CaseAggregate, Escalation, Task, TaskKind
from domain.roles import OrgLevel, Role
from domain.workcalendar import Duration
from domain.workflow import ApprovalStep, MemberInputStep, PaymentStep

REMIND_AT = 0.75
"""Share of the SLA after which the holder gets a reminder."""


def clock_seconds(duration: Duration) -> int:
    return duration.amount * (3600 if duration.unit == "hours" else 86400)


def unit_at(ctx: Ctx, level: OrgLevel) -> str:
    unit = ctx.ancestry.get(level)
    if unit is None:
        raise InvalidRequest(
            "invalid_field",
            field="unit_id",
            params={
                "field": "unit_id",
                "reason": f"the case's unit has no {level.value} level above it",
            },
        )
    return unit


def open_task(
    ctx: Ctx,
    agg: CaseAggregate,
    step_id: str,
    step: ApprovalStep | MemberInputStep | PaymentStep,
    *,
    clock_used_before: int = 0,
    tranche: int | None = None,
) -> Task:
    """Open the task for a human step; a resumed step keeps the SLA clock it had used."""
    sla = Duration.parse(step.sla)
    total = clock_seconds(sla)
    cal, now = ctx.calendar, ctx.now
    remaining = max(0, total - clock_used_before)
    due = cal.add_clock_seconds(now, remaining, sla.unit)
    if isinstance(step, MemberInputStep):
        kind, role, level = TaskKind.MEMBER_INPUT, Role.GRASSROOTS_OFFICER, OrgLevel.GRASSROOTS
        expiry = Duration.parse(step.expire_after) if step.expire_after else None
        escalate = (
            cal.add(now, expiry)
            if expiry
            else cal.add_clock_seconds(now, remaining + total, sla.unit)
        )
    else:
        kind = TaskKind.PAYMENT if isinstance(step, PaymentStep) else TaskKind.APPROVAL
        role, level = step.role, step.level
        escalate = cal.add_clock_seconds(now, remaining + total, sla.unit)
    remind_used = int(total * REMIND_AT)
    remind = (
        cal.add_clock_seconds(now, remind_used - clock_used_before, sla.unit)
        if remind_used > clock_used_before
        else None
    )
    task = Task(
        id=new_id(),
        case_id=agg.case.id,
        step=step_id,
        kind=kind,
        role=role,
        level=level,
        org_unit_id=unit_at(ctx, level),
        opened_at=now,
        clock=sla.unit,
        sla_seconds=total,
        clock_used_before=clock_used_before,
        remind_at=remind,
        due_at=due,
        escalate_at=escalate,
        approvals_needed=step.approvals_needed if isinstance(step, ApprovalStep) else 1,
        committee=isinstance(step, ApprovalStep) and step.committee,
        tranche=tranche,
    )
    task.next_check_at = remind or due
    agg.add_task(task)
    return task


def clock_used(ctx: Ctx, task: Task) -> int:
    """SLA clock seconds a task has consumed, including what it carried over when resumed."""
    return task.clock_used_before + ctx.calendar.elapsed(task.opened_at, ctx.now, task.clock)  # type: ignore[arg-type]


def assignment_active(task: Task, now: datetime) -> bool:
    if task.assignee_id is None:
        return False
    return task.delegated_until is None or task.delegated_until > now


def authorize(ctx: Ctx, task: Task, actor: Actor) -> None:
    """The actor may act: they are the active assignee, or hold the task's role at its unit or above."""
    if assignment_active(task, ctx.now):
        if task.assignee_id == actor.account_id:
            return
        if actor.holds(task.role, ctx.chain_at_or_above(task.level)):
            raise Conflict("task_claimed_by_other")
        raise PermissionDenied("not_task_holder", params={"role": task.role.value})
    if not actor.holds(task.role, ctx.chain_at_or_above(task.level)):
        raise PermissionDenied("not_task_holder", params={"role": task.role.value})


def due_escalation(task: Task, now: datetime) -> Escalation:
    """The escalation level a task should have reached at `now`."""
    if now >= task.escalate_at:
        return Escalation.ESCALATED
    if now >= task.due_at:
        return Escalation.OVERDUE
    if task.remind_at is not None and now >= task.remind_at:
        return Escalation.REMINDED
    return Escalation.NONE


def next_check(task: Task) -> datetime | None:
    """When the sweep next needs to look at this task (None: never again)."""
    if task.escalation is Escalation.NONE:
        return task.remind_at or task.due_at
    if task.escalation is Escalation.REMINDED:
        return task.due_at
    if task.escalation is Escalation.OVERDUE:
        return task.escalate_at
    return None
