"""Feedback and complaints on a case: filed by the member or their grassroots officer, handled by
the inspection committee (auditors) of the level above the decider.

Filing: a member account linked to the case's member, or an officer of the case's grassroots
unit; anyone else gets 404 (the case's existence does not leak). Reading: the filer sees their
own; an auditor sees those on cases, or handled at units, they reach. Resolving: an auditor at
the handling unit or above. The rules live in domain/service/admin.py.
"""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Caller
from api.deps import Welfare
from api.idempotency import IdempotencyKey, idempotent
from api.models import ID_PATTERN, IdQuery
from api.problems import problems
from domain.service.admin import ComplaintView, list_complaints, read_complaint

router = APIRouter(prefix="/api/v1", tags=["complaints"])

TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # prose: line breaks and tabs, no controls
CaseIdPath = Annotated[str, Path(max_length=64, pattern=ID_PATTERN, description="The case id.")]
ComplaintIdPath = Annotated[
    str, Path(max_length=64, pattern=ID_PATTERN, description="The complaint id.")
]


class ComplaintIn(BaseModel):
    """Feedback or a complaint about a case, filed by the member or their officer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "complaint",
                    "text": "Gia đình tôi chưa nhận được tiền hỗ trợ dù hồ sơ đã được duyệt.",
                }
            ]
        },
    )
    kind: Literal["feedback", "complaint"] = Field(description="feedback | complaint.")
    text: str = Field(
        min_length=1,
        max_length=5000,
        pattern=TEXT_PATTERN,
        description="What the member says (kept out of the audit log: only its hash is there).",
    )


class ResolutionIn(BaseModel):
    """How a complaint was resolved."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"resolution": "Đã xác minh; khoản chi được thực hiện ngày 05/03/2026."}]
        },
    )
    resolution: str = Field(
        min_length=1,
        max_length=5000,
        pattern=TEXT_PATTERN,
        description="The committee's answer.",
    )


class ComplaintOut(BaseModel):
    """A complaint and, once resolved, its resolution."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0192f7a0-…",
                    "case_id": "0192f7a0-…",
                    "kind": "complaint",
                    "status": "open",
                    "filed_by": "0192f7a0-…",
                    "filed_at": "2026-03-02T02:00:00Z",
                    "handling_unit_id": "TP",
                    "text": "Gia đình tôi chưa nhận được tiền hỗ trợ.",
                    "resolution": None,
                    "resolved_by": None,
                    "resolved_at": None,
                }
            ]
        }
    )
    id: str = Field(description="Complaint id.")
    case_id: str = Field(description="The case it is about.")
    kind: str = Field(description="feedback | complaint.")
    status: str = Field(description="open | resolved.")
    filed_by: str = Field(description="Account that filed it.")
    filed_at: datetime = Field(description="When (UTC).")
    handling_unit_id: str = Field(
        description="The unit whose inspection committee handles it (above the decider)."
    )
    text: str = Field(description="The text as filed.")
    resolution: str | None = Field(description="The committee's answer, once resolved.")
    resolved_by: str | None = Field(description="The auditor who resolved it.")
    resolved_at: datetime | None = Field(description="When it was resolved (UTC).")


class ComplaintPageOut(BaseModel):
    """One page of complaints; `next_cursor` for the next."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [], "next_cursor": None}]})
    items: list[ComplaintOut] = Field(description="Complaints, in a stable order.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


def _out(c: ComplaintView) -> ComplaintOut:
    return ComplaintOut(**c.__dict__)


@router.post(
    "/cases/{case_id}/complaints",
    status_code=201,
    response_model=ComplaintOut,
    summary="File feedback or a complaint on a case",
    description="By the member (a member account) or an officer of the case's grassroots unit. "
    "Routed to the inspection committee of the level above the last decider. Accepts "
    "`Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def file(
    case_id: CaseIdPath,
    body: ComplaintIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    def act() -> ComplaintOut:
        cid = app.admin.file_complaint(caller.account_id, case_id, body.kind, body.text)
        return _out(read_complaint(app.engine, caller.account_id, cid, app.service.clock()))

    return idempotent(request, app, caller, key, body, 201, act)


@router.get(
    "/complaints",
    response_model=ComplaintPageOut,
    summary="List complaints",
    description="The caller's own complaints and, for auditors, those on cases or handled at "
    "units they reach.",
    responses=problems(401, 422),
)
def complaints(
    app: Welfare,
    caller: Caller,
    status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
    case_id: Annotated[str | None, IdQuery] = None,
    cursor: Annotated[str | None, IdQuery] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ComplaintPageOut:
    page = list_complaints(
        app.engine,
        caller.account_id,
        app.service.clock(),
        status=status,
        case_id=case_id,
        cursor=cursor,
        limit=limit,
    )
    return ComplaintPageOut(items=[_out(c) for c in page.items], next_cursor=page.next_cursor)


@router.get(
    "/complaints/{complaint_id}",
    response_model=ComplaintOut,
    summary="Read a complaint",
    description="The filer, or an auditor who reaches the case or the handling unit; 404 else.",
    responses=problems(401, 404, 422),
)
def complaint(complaint_id: ComplaintIdPath, app: Welfare, caller: Caller) -> ComplaintOut:
    return _out(read_complaint(app.engine, caller.account_id, complaint_id, app.service.clock()))


@router.post(
    "/complaints/{complaint_id}/resolution",
    response_model=ComplaintOut,
    summary="Resolve a complaint",
    description="An auditor at the handling unit or above records the answer (kept out of the "
    "audit log: only its hash is there). A resolved complaint cannot be resolved again (409). "
    "Accepts `Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def resolve(
    complaint_id: ComplaintIdPath,
    body: ResolutionIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    def act() -> ComplaintOut:
        app.admin.resolve_complaint(caller.account_id, complaint_id, body.resolution)
        return _out(
            read_complaint(app.engine, caller.account_id, complaint_id, app.service.clock())
        )

    return idempotent(request, app, caller, key, body, 200, act)
