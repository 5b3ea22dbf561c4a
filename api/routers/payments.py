"""Treasurers: approved cases awaiting payment, in scope. Recording a payment is
`POST /api/v1/cases/{case_id}/payments` (api/routers/cases.py)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Caller, require_roles
from api.deps import Welfare
from api.models import PendingPaymentOut, PendingPaymentsOut
from api.problems import problems
from domain.roles import Role
from domain.service import cases as q

router = APIRouter(prefix="/api/v1", tags=["payments"])


@router.get(
    "/payments/pending",
    response_model=PendingPaymentsOut,
    summary="Approved cases awaiting payment",
    description="Open payment tasks the calling treasurer may pay (at their units and below), "
    "soonest due first, each with the amount of the tranche due.",
    responses=problems(401, 403, 422),
    dependencies=[Depends(require_roles(Role.TREASURER))],
)
def pending(
    app: Welfare,
    caller: Caller,
    policy: Annotated[str | None, Query(max_length=40)] = None,
    unit_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> PendingPaymentsOut:
    items = q.pending_payments(
        app.definitions,
        app.engine,
        caller,
        app.service.clock(),
        policy=policy,
        unit_id=unit_id,
        limit=limit,
    )
    out = [PendingPaymentOut.model_validate(i, from_attributes=True) for i in items]
    return PendingPaymentsOut(items=out, count=len(out), total_due=sum(i.amount_due for i in out))
