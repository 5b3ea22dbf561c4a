"""RFC 9457 problem details: every refusal and error of the API, in one place.

Usage in a router:

    from api.problems import ProblemDetails, problems

    @router.get("/things/{id}", responses=problems(401, 404))   # declares the problem bodies
    def read(...): raise NotFound("thing", id)                  # any DomainError becomes a problem

Raise `domain.errors.DomainError` subclasses (NotFound, Conflict, PermissionDenied,
InvalidRequest, RuleViolation) from services or routes; `install(app)` maps them:

    not_found → 404 · conflict → 409 · forbidden → 403 · invalid, rule, definition → 422 ·
    unauthorized → 401 (with WWW-Authenticate: Bearer) · throttled → 429 (with Retry-After)

Request validation errors → 422 `validation_error` listing every bad field with its path;
Starlette HTTP errors (unknown route, wrong method, …) → problems with the same shape; a
database that is busy or down → 503 `service_unavailable` (Retry-After); anything else → 500
`internal_error` without internals (a bug: no client input may reach it).

Body: `type` = https://union-welfare.local/problems/<code> (stable; `code` repeats it),
`title` = the kind of problem in the caller's language (Accept-Language: vi default, en),
`status`, `detail` = this occurrence, specific and translated, `instance` = the request path,
and the extensions `field`, `rule`, `errors`, `checks` when they apply. Refusals by an
anti-abuse or eligibility rule all share the type `rule_violation`; `code` then names the
reason (e.g. `frequency_cap`) and `rule` the rule (e.g. `frequency_cap`), and `checks`
carries every check's result.

`problem_response(request, err)` renders a DomainError without raising (the idempotency
wrapper stores such answers).
"""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import DomainError
from domain.i18n import MESSAGES, Lang, translate

log = logging.getLogger("api")

PROBLEM_BASE = "https://union-welfare.local/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

KIND_STATUS: dict[str, int] = {
    "not_found": 404,
    "conflict": 409,
    "forbidden": 403,
    "invalid": 422,
    "rule": 422,
    "definition": 422,
    "unauthorized": 401,
    "throttled": 429,
}

HTTP_CODES: dict[int, str] = {
    400: "http_error",
    401: "unauthorized",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

PROBLEM_CODES: dict[str, str] = {
    "not_found": "404 — the resource does not exist, or is outside the caller's scope",
    "unauthorized": "401 — no token, or an invalid, expired or revoked one",
    "invalid_credentials": "401 — wrong username or password (indistinguishable)",
    "login_throttled": "429 — too many failed log-ins; see Retry-After",
    "permission_denied": "403 — the caller's roles do not allow this",
    "role_required": "403 — the endpoint needs a role the caller does not hold",
    "not_task_holder": "403 — the caller does not hold the task's role at its unit",
    "task_claimed_by_other": "409 — another approver claimed the task",
    "task_not_open": "409 — the task was already decided or cancelled",
    "stale_case": "409 — the case changed meanwhile; reload and retry",
    "conflict": "409 — lost a race with a concurrent change; retry",
    "transition_not_allowed": "409 — the case's status does not allow this command",
    "duplicate": "409 — the thing already exists",
    "idempotency_in_progress": "409 — a request with the same Idempotency-Key is running",
    "idempotency_outcome_lost": "409 — the request with this key was carried out, but its "
    "answer was lost (a crash before it was stored): look the result up",
    "idempotency_key_reused": "422 — the Idempotency-Key was used for another request",
    "membership_open": "409 — the person is still a member of a grassroots union",
    "validation_error": "422 — the request body, query or headers are malformed; see errors",
    "invalid_field": "422 — a field's value is refused by the domain; see field",
    "invalid_request": "422 — a value the database cannot store (e.g. a NUL character)",
    "campaign_required": "422 — this policy needs an open campaign",
    "rule_violation": "422 — an anti-abuse or eligibility rule refused; see code, rule, checks",
    "method_not_allowed": "405 — the route does not accept this method",
    "unsupported_media_type": "415 — send application/json",
    "payload_too_large": "413 — the body is too large",
    "service_unavailable": "503 — the database is unavailable; retry after Retry-After",
    "internal_error": "500 — a bug; reported, never caused by input",
}
"""The documented problem codes (the `type` is PROBLEM_BASE + code)."""


class FieldError(BaseModel):
    """One invalid part of a request, with its JSON path."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "field": "items[3].member_id",
                    "location": "body",
                    "message": "Thiếu trường bắt buộc",
                    "type": "missing",
                }
            ]
        }
    )
    field: str = Field(description="Path of the bad value, e.g. `items[3].member_id`.")
    location: str = Field(description="body, query, path or header.")
    message: str = Field(description="What is wrong, in the caller's language.")
    type: str = Field(description="Machine-readable validator code, e.g. `missing`.")


class ProblemDetails(BaseModel):
    """An RFC 9457 problem: why a request was refused, in the caller's language."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://union-welfare.local/problems/rule_violation",
                    "title": "Yêu cầu bị từ chối theo quy định",
                    "status": 422,
                    "detail": "Vượt số lần hỗ trợ: 1/1 trong 12 tháng",
                    "instance": "/api/v1/cases",
                    "code": "frequency_cap",
                    "rule": "frequency_cap",
                    "field": None,
                    "checks": [{"rule": "frequency_cap", "outcome": "failed"}],
                }
            ]
        },
    )

    type: str = Field(
        description="Stable URI of the problem type.",
        examples=["https://union-welfare.local/problems/not_found"],
    )
    title: str = Field(description="Short, translated summary of the problem type.")
    status: int = Field(description="The HTTP status code.", examples=[404])
    detail: str | None = Field(default=None, description="This occurrence, translated.")
    instance: str | None = Field(default=None, description="The request path.")
    code: str = Field(description="The problem code (last segment of `type`).")
    field: str | None = Field(default=None, description="The field at fault, if one is.")
    rule: str | None = Field(default=None, description="The rule at fault, if one is.")
    errors: list[FieldError] | None = Field(
        default=None, description="Every invalid field (validation errors)."
    )
    checks: list[dict[str, Any]] | None = Field(
        default=None, description="Every check's result, for rule refusals."
    )


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented with the ProblemDetails body."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {
            "model": ProblemDetails,
            "description": _STATUS_TEXT.get(status, "Problem"),
            "content": {
                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
            },
        }
    return out


_STATUS_TEXT = {
    401: "Not authenticated (problem details)",
    403: "Not permitted (problem details)",
    404: "Not found or outside the caller's scope (problem details)",
    409: "Conflict with the current state (problem details)",
    422: "Invalid request or refused by a rule (problem details)",
    429: "Too many attempts (problem details)",
    503: "Database unavailable (problem details)",
}


def request_lang(request: Request) -> Lang:
    """The caller's language from Accept-Language (q-values honoured): vi default, en available."""
    header = request.headers.get("accept-language", "")
    best: tuple[float, Lang] | None = None
    for part in header.split(","):
        bits = part.strip().split(";")
        tag = bits[0].strip().lower()
        q = 1.0
        for b in bits[1:]:
            b = b.strip()
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        primary = tag.split("-")[0]
        if primary in ("vi", "en") and q > 0 and (best is None or q > best[0]):
            best = (q, "vi" if primary == "vi" else "en")
    return best[1] if best else "vi"


def _title(code: str, kind: str, lang: Lang) -> str:
    pair = MESSAGES.get(code)
    if pair is not None and "{" not in pair[0]:
        return translate(code, lang)
    return translate(f"problem.{kind}", lang)


def render(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None,
    headers: dict[str, str] | None = None,
    type_code: str | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem response; `type_code` (default: `code`) names the type when they differ."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (type_code or code),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
    }
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_response(request: Request, err: DomainError) -> JSONResponse:
    lang = request_lang(request)
    status = KIND_STATUS.get(err.kind, 422)
    headers: dict[str, str] = {}
    if err.kind == "unauthorized":
        headers["WWW-Authenticate"] = "Bearer"
    retry = getattr(err, "retry_after", None)
    if isinstance(retry, int):
        headers["Retry-After"] = str(retry)
    # Rule refusals share one type; `code` then names the reason (e.g. frequency_cap).
    type_code = "rule_violation" if err.kind == "rule" else err.code
    problems_list = [
        {"field": p.location, "location": "body", "message": p.message, "type": "invalid"}
        for p in err.problems
    ]
    return render(
        request,
        status=status,
        code=err.code,
        type_code=type_code,
        title=_title(type_code, err.kind, lang),
        detail=err.title(lang),
        headers=headers or None,
        field=err.field,
        rule=err.rule,
        checks=err.checks or None,
        errors=problems_list or None,
    )


def _field_path(loc: tuple[Any, ...]) -> tuple[str, str]:
    """('body', 'items', 3, 'member_id') → ('body', 'items[3].member_id')."""
    if not loc:
        return "body", ""
    where = str(loc[0])
    path = ""
    for part in loc[1:]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return where, path


def _validation_message(error: Mapping[str, Any], lang: Lang) -> str:
    """Pydantic's message in English; in Vietnamese from MESSAGES by the error's type."""
    english = str(error.get("msg", ""))
    key = f"validation.{error.get('type', '')}"
    if lang != "vi" or key not in MESSAGES:
        return english
    ctx = {k: str(v).replace(" or ", " hoặc ") for k, v in (error.get("ctx") or {}).items()}
    text = translate(key, lang, **ctx)
    return english if "{" in text else text  # a placeholder pydantic gave no value for


def _phrase(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


def validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    lang = request_lang(request)
    errors = []
    for e in exc.errors():
        where, path = _field_path(tuple(e.get("loc", ())))
        errors.append(
            {
                "field": path or where,
                "location": where,
                "message": _validation_message(e, lang),
                "type": str(e.get("type", "invalid")),
            }
        )
    first = errors[0]["field"] if errors else None
    detail = "; ".join(f"{x['field']}: {x['message']}" for x in errors[:10])
    return render(
        request,
        status=422,
        code="validation_error",
        title=translate("validation_error", lang),
        detail=detail,
        field=first,
        errors=errors,
    )


def install(app: FastAPI) -> None:
    """Register every handler on the FastAPI app (called by api.app.create_app)."""

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_response(request, exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        lang = request_lang(request)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
        kind = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(
            exc.status_code, "invalid"
        )
        title = _title(code, kind, lang)
        detail = exc.detail if isinstance(exc.detail, str) else None
        if detail == _phrase(exc.status_code):
            detail = title  # Starlette's English reason phrase ("Not Found"): say it translated
        return render(
            request,
            status=exc.status_code,
            code=code,
            title=title,
            detail=detail,
            headers=headers or None,
        )

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        lang = request_lang(request)
        return render(
            request,
            status=503,
            code="service_unavailable",
            title=translate("service_unavailable", lang),
            detail=None,
            headers={"Retry-After": "1"},
        )

    async def on_bad_value(request: Request, exc: Exception) -> JSONResponse:
        # The database refused a value the validators let through (e.g. a NUL character in a
        # path or query parameter on PostgreSQL): the client's input, not our fault.
        log.info("database refused a value: %s", type(exc).__name__)
        lang = request_lang(request)
        return render(
            request,
            status=422,
            code="invalid_request",
            title=translate("invalid_request", lang),
            detail=None,
        )

    async def on_any(request: Request, exc: Exception) -> JSONResponse:
        # No internals in the answer; the traceback goes to the server log only.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        lang = request_lang(request)
        return render(
            request,
            status=500,
            code="internal_error",
            title=translate("internal_error", lang),
            detail=None,
        )

    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(OperationalError, on_database)
    app.add_exception_handler(DataError, on_bad_value)
    app.add_exception_handler(Exception, on_any)
