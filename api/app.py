"""The FastAPI application: a thin HTTP layer over the service layer the flows use too.

Usage:

    uvicorn.run("api.app:create_app", factory=True)      # what `welfare up` does
    app = create_app(domain_app)                          # tests: a bootstrapped domain App
    app.state.welfare                                     # the domain App in every request

Adding a router: write `api/routers/<name>.py` with `router = APIRouter(prefix="/api/v1",
tags=[...])`, then one `app.include_router(<name>.router)` line in `_routers` below. Routes
are sync `def` (the service layer is synchronous SQLAlchemy; FastAPI runs them in its thread
pool) and hold no business rule: parse → call the service → map the result to a response model.
"""

from typing import Any
from urllib.parse import unquote_plus

from fastapi import FastAPI, Request
from fastapi.security.utils import get_authorization_scheme_param
from fastapi_offline import FastAPIOffline
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import auth, problems
from api.routers import admin, audit, cases, complaints, meta, payments, tasks
from domain.bootstrap import App, bootstrap
from domain.config import get_settings
from domain.i18n import translate

DESCRIPTION = """
Welfare support requests of the Lai Châu trade unions, from submission to payment.

* **Log in** at `POST /auth/token` (OAuth2 password flow), then send
  `Authorization: Bearer <token>` with every request except `/healthz` and `/auth/token`.
* **Errors** are RFC 9457 `application/problem+json`, titled in the caller's language
  (`Accept-Language: vi` default, `en`), naming the field or rule at fault.
* **Writes** accept an `Idempotency-Key` header: a retry returns the first answer.
* **Scope**: a role held at a union unit reaches that unit and every unit below it; anything
  outside the caller's scope answers 404.
* Money is whole đồng (integers); instants are ISO 8601 UTC.
"""

TAGS = [
    {"name": "auth", "description": "Log in and who am I."},
    {"name": "cases", "description": "Submit, read, complete and withdraw cases."},
    {"name": "tasks", "description": "The approver's inbox and task actions."},
    {"name": "payments", "description": "Treasurers: approved cases awaiting payment."},
    {"name": "meta", "description": "Health and loaded policy definitions."},
    {
        "name": "audit",
        "description": "Auditors: decision trails, audit search, verification, dossiers.",
    },
    {
        "name": "complaints",
        "description": "Members' feedback and complaints, and their resolution.",
    },
    {"name": "admin", "description": "Administrators: org units, members, accounts, role grants."},
]


def _routers(app: FastAPI) -> None:
    app.include_router(auth.router)
    app.include_router(meta.router)
    app.include_router(cases.router)
    app.include_router(tasks.router)
    app.include_router(payments.router)
    app.include_router(audit.router)
    app.include_router(complaints.router)
    app.include_router(admin.router)


MAX_BODY = 10 * 1024 * 1024
"""Largest request body accepted (a list of 5,000 members is well under 5 MB)."""


def _has_control(raw: bytes) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in unquote_plus(raw.decode("latin-1")))


async def _read_unsized_body(receive: Receive) -> bytes | None:
    """The whole body of a request that declares no length (chunked), or None as soon as it
    passes MAX_BODY or the client goes away: the app never sees a byte of such a body."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the app `body` in one message, then the client's own messages
    (a streaming response still learns of a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _has_valid_token(scope: Scope) -> bool:
    """The request carries a bearer token that is signed by us and not expired (whether its
    account is still active is checked by the route's dependency, against the database)."""
    # Parsed as the route's OAuth2PasswordBearer dependency parses it.
    scheme, token = get_authorization_scheme_param(Headers(scope=scope).get("authorization"))
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        auth.account_of_token(scope["app"].state.welfare, token)
    except auth.NotAuthenticated:
        return False
    return True


class EdgeGuard:
    """Before routing: a body over MAX_BODY is 413, whether its length is declared or it comes
    chunked (read here, up to the limit, before the app runs); a request to /api/ without a
    valid token is 401 before its body is read (FastAPI parses a body before it resolves the
    route's dependencies, so malformed JSON would otherwise answer 422 to anyone); a control
    character (NUL, …) in the path or the query string is 422 on every database alike
    (PostgreSQL refuses NUL)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            refusal = None
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
                refusal = (413, "payload_too_large")
            elif scope["path"].startswith("/api/") and not _has_valid_token(scope):
                response = problems.problem_response(Request(scope), auth.NotAuthenticated())
                await response(scope, receive, send)
                return
            elif _has_control(scope.get("raw_path") or b"") or _has_control(
                scope.get("query_string") or b""
            ):
                refusal = (422, "invalid_request")
            elif length is None:
                body = await _read_unsized_body(receive)
                if body is None:
                    refusal = (413, "payload_too_large")
                else:
                    receive = _replaying(body, receive)
            if refusal is not None:
                request = Request(scope)
                status, code = refusal
                response = problems.render(
                    request,
                    status=status,
                    code=code,
                    title=translate(code, problems.request_lang(request)),
                    detail=None,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _problem_openapi(api: FastAPI) -> None:
    """Every 422 in the schema is a problem-details body (FastAPI's default says otherwise)."""
    base = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema:
            return api.openapi_schema
        spec = base()
        ref = {"$ref": "#/components/schemas/ProblemDetails"}
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                resp = op.get("responses", {}).get("422")
                if resp is not None:
                    resp["content"] = {problems.PROBLEM_MEDIA_TYPE: {"schema": ref}}
                    resp["description"] = "Invalid request or refused by a rule (problem details)"
        schemas = spec.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        api.openapi_schema = spec
        return spec

    api.openapi = openapi  # type: ignore[method-assign]


def create_app(app: App | None = None) -> FastAPI:
    """The HTTP application over a domain App (bootstrapped from the environment when None)."""
    domain_app = app or bootstrap(get_settings())
    # /docs and /redoc with their scripts served from here, not from a CDN: a commune office
    # on a poor or filtered connection would otherwise get a blank page.
    api = FastAPIOffline(
        title="union-welfare",
        version="1.0",
        summary="Phúc lợi đoàn viên Công đoàn tỉnh Lai Châu — welfare support approvals",
        description=DESCRIPTION,
        openapi_tags=TAGS,
    )
    api.state.welfare = domain_app
    auth.secret_key(domain_app)  # create data_dir/secret.key at start, not on a first request
    problems.install(api)
    _routers(api)
    _problem_openapi(api)
    api.add_middleware(EdgeGuard)
    return api
