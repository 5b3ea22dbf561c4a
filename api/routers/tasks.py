"""The approver's inbox and task actions: claim, release, delegate, decide."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from api.auth import Caller
from api.deps import Welfare
from api.idempotency import IdempotencyKey
from api.models import CaseStateOut, DecisionIn, DelegationIn, InboxItemOut, InboxOut
from api.problems import problems
from api.routers.cases import WRITE_PROBLEMS, case_write
from domain.bootstrap import App
from domain.errors import DomainError, InvalidRequest
from domain.model import CaseAggregate
from domain.service import cases as q
from domain.service.access import Access
from domain.service.commands import Decide, Delegate

router = APIRouter(prefix="/api/v1", tags=["tasks"])

TaskId = Annotated[
    str,
    Path(max_length=64, description="Task id.", examples=["0192f7a0-61aa-7b3c-8d4e-5f6a7b8c9d0e"]),
]


def authorised_task_write(
    request: Request,
    app: App,
    caller: Access,
    key: str | None,
    body: BaseModel | None,
    task_id: str,
    command: Callable[[str], CaseAggregate],
) -> Response:
    """`case_write` for a command the service authorises on the task itself (claim, delegate,
    decide: `domain.engine.tasks.authorize`), with the scope query only where it can change
    the answer.

    Such a command succeeds only for the task's active assignee or a holder of its role at its
    unit or above — and either can read the case, so a success needs no scope query. When the
    command is refused, the query decides between the service's answer and 404, exactly as a
    query before the command would: a task outside the caller's scope still answers 404 whatever
    its state. With an `Idempotency-Key` it runs first, as before, so a stored answer is never
    replayed to a caller who has lost the scope since. (Release is not one of these commands:
    the delegator may release without holding the role.)
    """
    if key is not None:
        q.require_visible_task(app.engine, caller, task_id)
        return case_write(request, app, caller, key, body, command)

    def scoped(actor: str) -> CaseAggregate:
        try:
            return command(actor)
        except DomainError:
            q.require_visible_task(app.engine, caller, task_id)  # 404 when out of scope
            raise

    return case_write(request, app, caller, None, body, scoped)


@router.get(
    "/inbox",
    response_model=InboxOut,
    summary="My inbox",
    description="Open tasks routed to a role the caller holds at the task's unit or a unit "
    "above it, and tasks claimed by or delegated to the caller; soonest due first, overdue "
    "ones marked.",
    responses=problems(401, 422),
)
def my_inbox(
    app: Welfare,
    caller: Caller,
    policy: Annotated[str | None, Query(max_length=40)] = None,
    step: Annotated[str | None, Query(max_length=60)] = None,
    role: Annotated[str | None, Query(max_length=40)] = None,
    unit_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[
        str | None, Query(max_length=20, description="approval | member_input | payment")
    ] = None,
    overdue: Annotated[
        bool | None, Query(description="Only overdue (true) or only on time (false).")
    ] = None,
    mine: Annotated[bool | None, Query(description="Only tasks assigned to me.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> InboxOut:
    now = app.service.clock()
    items = q.inbox(
        app.engine,
        caller,
        now,
        q.InboxFilter(policy, step, role, unit_id, overdue, mine, kind),
        limit=limit,
    )
    out = [InboxItemOut.model_validate(i, from_attributes=True) for i in items]
    return InboxOut(items=out, count=len(out), overdue=sum(i.task.overdue for i in out))


@router.post(
    "/tasks/{task_id}/claim",
    response_model=CaseStateOut,
    summary="Claim a task",
    description="Take a task so other holders of its role see it is being handled. Claiming "
    "twice is harmless; a task claimed by someone else gives 409.",
    responses=WRITE_PROBLEMS,
)
def claim(
    task_id: TaskId, request: Request, app: Welfare, caller: Caller, key: IdempotencyKey = None
) -> Response:
    return authorised_task_write(
        request, app, caller, key, None, task_id, lambda actor: app.service.claim(actor, task_id)
    )


@router.post(
    "/tasks/{task_id}/release",
    response_model=CaseStateOut,
    summary="Release a claimed task",
    description="Give a claimed (or delegated) task back to every holder of its role.",
    responses=WRITE_PROBLEMS,
)
def release(
    task_id: TaskId, request: Request, app: Welfare, caller: Caller, key: IdempotencyKey = None
) -> Response:
    q.require_visible_task(app.engine, caller, task_id)
    return case_write(
        request, app, caller, key, None, lambda actor: app.service.release(actor, task_id)
    )


@router.post(
    "/tasks/{task_id}/delegation",
    response_model=CaseStateOut,
    summary="Delegate a task for a bounded time",
    description="Hand the task to another union officer holding a role at its unit or above, "
    "until a time at most 30 days ahead. Audited; the delegate acts as themselves, so "
    "separation of duties still applies.",
    responses=WRITE_PROBLEMS,
)
def delegate(
    task_id: TaskId,
    body: DelegationIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    cmd = Delegate(task_id=task_id, to_account_id=body.to_account_id, until=body.until)
    return authorised_task_write(
        request, app, caller, key, body, task_id, lambda actor: app.service.delegate(actor, cmd)
    )


@router.post(
    "/tasks/{task_id}/decision",
    response_model=CaseStateOut,
    summary="Decide a task",
    description="approve, approve_lower (with `amount`), reject or return for information "
    "(both with `reason`). On a committee step the decision is recorded as this member's "
    "vote. Two approvers deciding one task at once: exactly one succeeds, the other gets 409.",
    responses=WRITE_PROBLEMS,
)
def decide(
    task_id: TaskId,
    body: DecisionIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    def run(actor: str) -> CaseAggregate:
        if body.action == "approve_lower" and body.amount is None:
            raise InvalidRequest(
                "invalid_field", field="amount", params={"field": "amount", "reason": "required"}
            )
        action = "approve" if body.action == "approve_lower" else body.action
        cmd = Decide(task_id=task_id, action=action, amount=body.amount, reason=body.reason)
        return app.service.decide(actor, cmd)

    return authorised_task_write(request, app, caller, key, body, task_id, run)
