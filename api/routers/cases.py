"""Cases: submit one or a list, read (scoped), attach documents, answer a return, withdraw, pay."""

import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, TypeAdapter

from api.auth import Caller
from api.deps import CallerLang, Welfare
from api.idempotency import IdempotencyKey, JsonBody, idempotent
from api.models import (
    CaseIn,
    CaseItemIn,
    CaseListIn,
    CaseOut,
    CasePageOut,
    CaseStateOut,
    CheckOut,
    DocumentsIn,
    InformationIn,
    ListItemOut,
    ListOut,
    PaymentIn,
    SubmittedOut,
    TaskOut,
    WithdrawalIn,
)
from api.models import DocumentIn as DocumentBody
from api.problems import problems
from domain.bootstrap import App
from domain.i18n import Lang, translate
from domain.model import CaseAggregate, Task
from domain.money import format_vnd
from domain.service import cases as q
from domain.service.access import Access
from domain.service.commands import (
    AttachDocuments,
    CaseItem,
    DocumentIn,
    ProvideInformation,
    RecordPayment,
    SubmitCase,
    SubmitList,
)
from domain.service.welfare import ListItemResult

router = APIRouter(prefix="/api/v1", tags=["cases"])

CaseId = Annotated[
    str,
    Path(max_length=64, description="Case id.", examples=["0192f7a0-5c1e-7d2a-9b1f-3c4d5e6f7a8b"]),
]
WRITE_PROBLEMS = problems(400, 401, 403, 404, 409, 422, 503)


def task_out(t: Task, now: datetime) -> TaskOut:
    return TaskOut(
        id=t.id,
        step=t.step,
        kind=t.kind.value,
        role=t.role.value,
        org_unit_id=t.org_unit_id,
        status=t.status.value,
        opened_at=t.opened_at,
        due_at=t.due_at,
        overdue=t.status.value == "open" and t.due_at <= now,
        escalation=t.escalation.value,
        assignee_id=t.assignee_id,
        delegated_by=t.delegated_by,
        delegated_until=t.delegated_until,
        approvals_needed=t.approvals_needed,
        committee=t.committee,
        closed_at=t.closed_at,
        outcome=t.outcome,
        tranche=t.tranche,
    )


def case_state(app: App, agg: CaseAggregate) -> CaseStateOut:
    c, now = agg.case, app.service.clock()
    return CaseStateOut(
        case_id=c.id,
        status=c.status.value,
        current_step=c.current_step,
        amount=c.amount,
        amount_display=format_vnd(c.amount),
        approved_amount=c.approved_amount,
        paid_amount=c.paid_amount,
        reserved_amount=c.reserved_amount,
        flags=list(c.flags),
        open_tasks=[task_out(t, now) for t in agg.open_tasks()],
    )


def case_write(
    request: Request,
    app: App,
    caller: Access,
    key: str | None,
    body: BaseModel | None,
    command: Callable[[str], CaseAggregate],
    status: int = 200,
) -> Response:
    """Run a command that changes one case, as the caller, and answer with the case's state.

    Every case- and task-changing route has this shape: replayable with `Idempotency-Key`
    (see api.idempotency), the command gets the caller's account id.
    """
    return idempotent(
        request, app, caller, key, body, status, lambda: case_state(app, command(caller.account_id))
    )


_LIST_ITEM = TypeAdapter(ListItemOut)


def _list_item(r: ListItemResult, lang: Lang) -> ListItemOut:
    return ListItemOut(
        index=r.index,
        member_id=r.member_id,
        outcome=r.outcome,
        case_id=r.case_id,
        flags=r.flags,
        code=r.error,
        rule=r.rule,
        field=r.field_path,
        reason=translate(r.error, lang, **r.params) if r.error else None,
        checks=[CheckOut.model_validate(c) for c in r.checks],
    )


def list_answer(results: list[ListItemResult], lang: Lang) -> JsonBody:
    """The `ListOut` of a list's results as JSON, each item built and serialised on its own.

    Why not `ListOut(items=[...]).model_dump()`: every item's checks as `CheckOut` models, then
    as dicts, took ≈ 15 kB an item at once — 150 MB for a 10,000-member list, on top of the
    request. Here one item's models live at a time and the answer is its JSON bytes (≈ 1.6 kB
    an item); `ListOut` stays the documented response model. `results` is consumed: each
    result is let go once written, and the items are written into one growing buffer (a list
    of parts joined at the end held the answer twice at its peak).
    """
    count = Counter(r.outcome for r in results)
    head = {o: count[o] for o in ("accepted", "flagged", "refused")}
    out = bytearray(json.dumps(head, separators=(",", ":"))[:-1].encode())
    out += b',"items":['
    results.reverse()  # popped from the end, in order
    first = True
    while results:
        if not first:
            out += b","
        first = False
        out += _LIST_ITEM.dump_json(_list_item(results.pop(), lang))
    out += b"]}"
    return JsonBody(memoryview(out))


def _docs(items: list[object]) -> list[DocumentIn]:
    return [DocumentIn.model_validate(d, from_attributes=True) for d in items]


def _item(i: CaseItemIn, documents: list[DocumentIn] | None = None) -> CaseItem:
    return CaseItem(
        member_id=i.member_id,
        subtype=i.subtype,
        event_date=i.event_date,
        form=i.form,
        requested_amount=i.requested_amount,
        documents=_docs(list(i.documents)) if documents is None else documents,
    )


def _list_items(items: list[CaseItemIn]) -> list[CaseItem]:
    """A list's items as commands, each distinct document one (frozen) command object.

    Every member of a campaign list usually carries the same signed list: one object for it
    rather than one per member (≈ 800 B each, 8 MB of a 10,000-member list).
    """
    shared: dict[tuple[str, str, str, int, str], DocumentIn] = {}

    def document(d: DocumentBody) -> DocumentIn:
        key = (d.kind, d.filename, d.sha256, d.size, d.content_type)
        if key not in shared:
            shared[key] = DocumentIn.model_validate(d, from_attributes=True)
        return shared[key]

    return [_item(i, [document(d) for d in i.documents]) for i in items]


def _release_parsed_items(request: Request) -> None:
    """Empty the `items` of the request body FastAPI parsed (Starlette's `Request.json()`
    cache, the same dict FastAPI validated the body model from and holds until the route
    returns). Nothing reads it again; without a parsed body this does nothing."""
    parsed = getattr(request, "_json", None)
    if isinstance(parsed, dict) and isinstance(parsed.get("items"), list):
        parsed["items"].clear()


@router.post(
    "/cases",
    status_code=201,
    response_model=SubmittedOut,
    summary="Submit a case for one member",
    description="A grassroots officer (or chair) files a case for a member of their union. "
    "Every intake check runs: a hard failure refuses the request (422 `rule_violation` with "
    "the rule and every check), a soft one flags the case for a second approver.",
    responses=WRITE_PROBLEMS,
)
def submit_case(
    body: CaseIn, request: Request, app: Welfare, caller: Caller, key: IdempotencyKey = None
) -> Response:
    def run() -> SubmittedOut:
        cmd = SubmitCase(
            policy=body.policy,
            unit_id=body.unit_id,
            campaign_id=body.campaign_id,
            **_item(body).model_dump(),
        )
        s = app.service.submit(caller.account_id, cmd)
        return SubmittedOut(
            case_id=s.case_id,
            status=s.status,
            amount=s.amount,
            amount_display=format_vnd(s.amount),
            flags=s.flags,
            checks=[CheckOut.model_validate(c) for c in s.checks],
            open_task_ids=s.open_task_ids,
        )

    return idempotent(request, app, caller, key, body, 201, run)


@router.post(
    "/case-lists",
    response_model=ListOut,
    summary="Submit a campaign list",
    description="Hundreds of members in one request (Tết, disaster, job-loss campaigns). Each "
    "member is screened on their own: the answer says which were accepted, flagged or "
    "refused and why. The whole list is refused (403) when the caller may not file for the "
    "unit. Accepted items are committed together.",
    responses=WRITE_PROBLEMS,
)
def submit_list(
    body: CaseListIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    lang: CallerLang,
    key: IdempotencyKey = None,
) -> Response:
    def run() -> JsonBody:
        cmd = SubmitList(
            policy=body.policy,
            unit_id=body.unit_id,
            campaign_id=body.campaign_id,
            items=_list_items(body.items),
        )
        # Nothing reads the request's item models again (the idempotency digest is taken
        # before `run`): let them go before the list is screened, ≈ 1.8 kB a member, and
        # the parsed JSON they were validated from (≈ 1.1 kB a member), which FastAPI keeps
        # until the route returns.
        body.items.clear()
        _release_parsed_items(request)
        results = app.service.submit_list(caller.account_id, cmd)
        del cmd  # the command's items (≈ 1.2 kB a member), before the answer is built
        return list_answer(results, lang)

    return idempotent(request, app, caller, key, body, 200, run)


@router.get(
    "/cases",
    response_model=CasePageOut,
    summary="Cases visible to the caller",
    description="Newest first, filtered, with keyset pagination (`cursor`). Only cases in the "
    "caller's scope are listed; CCCD numbers are masked.",
    responses=problems(401, 422),
)
def list_cases(
    app: Welfare,
    caller: Caller,
    unit_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    policy: Annotated[str | None, Query(max_length=40)] = None,
    member_id: Annotated[str | None, Query(max_length=64)] = None,
    campaign_id: Annotated[str | None, Query(max_length=64)] = None,
    batch_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=q.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CasePageOut:
    page = q.list_cases(
        app.engine,
        caller,
        q.CaseFilter(unit_id, status, policy, member_id, campaign_id, batch_id),
        limit=limit,
        cursor=cursor,
    )
    return CasePageOut.model_validate(page, from_attributes=True)


@router.get(
    "/cases/{case_id}",
    response_model=CaseOut,
    summary="One case in detail",
    description="Status, amounts, form, tasks, documents, decisions and payments. Health data "
    "is shown only to the roles that need it (approvers of the case, auditors, the filing "
    "unit's officers) and redacted for others; showing a health document's metadata is "
    "recorded in the audit log.",
    responses=problems(401, 404),
)
def read_case(case_id: CaseId, app: Welfare, caller: Caller) -> CaseOut:
    view = q.case_detail(app.definitions, app.engine, caller, case_id, app.service.clock())
    if view.sensitive_documents_read:
        app.service.record_document_read(caller.account_id, case_id, view.sensitive_documents_read)
    return CaseOut.model_validate(view, from_attributes=True)


@router.post(
    "/cases/{case_id}/documents",
    response_model=CaseStateOut,
    summary="Attach documents",
    description="Add document metadata and SHA-256 hashes at any open stage. A file already "
    "used in another case flags this one (C17).",
    responses=WRITE_PROBLEMS,
)
def attach_documents(
    case_id: CaseId,
    body: DocumentsIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    q.require_visible_case(app.engine, caller, case_id)
    cmd = AttachDocuments(case_id=case_id, documents=_docs(list(body.documents)))
    return case_write(
        request, app, caller, key, body, lambda actor: app.service.attach_documents(actor, cmd)
    )


@router.post(
    "/cases/{case_id}/information",
    response_model=CaseStateOut,
    summary="Answer a return for information",
    description="Changed form fields and/or documents; the returned step re-opens with the SLA "
    "clock it had left.",
    responses=WRITE_PROBLEMS,
)
def provide_information(
    case_id: CaseId,
    body: InformationIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    q.require_visible_case(app.engine, caller, case_id)
    cmd = ProvideInformation(
        case_id=case_id, form=body.form, documents=_docs(list(body.documents)), note=body.note
    )
    return case_write(
        request, app, caller, key, body, lambda actor: app.service.provide_information(actor, cmd)
    )


@router.post(
    "/cases/{case_id}/withdrawal",
    response_model=CaseStateOut,
    summary="Withdraw a case",
    description="The filing unit withdraws an open case; a reserved budget is released. Not "
    "once money was paid.",
    responses=WRITE_PROBLEMS,
)
def withdraw(
    case_id: CaseId,
    request: Request,
    app: Welfare,
    caller: Caller,
    body: WithdrawalIn | None = None,
    key: IdempotencyKey = None,
) -> Response:
    q.require_visible_case(app.engine, caller, case_id)
    reason = body.reason if body else None
    return case_write(
        request, app, caller, key, body, lambda actor: app.service.withdraw(actor, case_id, reason)
    )


@router.post(
    "/cases/{case_id}/payments",
    status_code=201,
    response_model=CaseStateOut,
    summary="Record a payment",
    description="A treasurer records the payment of the tranche due (its amount: "
    "`GET /api/v1/payments/pending`). Never the same person as an approver of the case.",
    responses=WRITE_PROBLEMS,
    tags=["payments"],
)
def record_payment(
    case_id: CaseId,
    body: PaymentIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    q.require_visible_case(app.engine, caller, case_id)
    cmd = RecordPayment(
        case_id=case_id, amount=body.amount, method=body.method, reference=body.reference
    )
    return case_write(
        request,
        app,
        caller,
        key,
        body,
        lambda actor: app.service.record_payment(actor, cmd),
        status=201,
    )
