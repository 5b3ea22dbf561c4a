"""The `Idempotency-Key` header on writes: a retry replays the first answer and changes nothing.

Usage in a write route (sync `def`, like every route here):

    from api.idempotency import IdempotencyKey, idempotent

    @router.post("/things", status_code=201, response_model=ThingOut,
                 responses=problems(401, 404, 409, 422))
    def create(body: ThingIn, request: Request, app: Welfare, caller: Caller,
               key: IdempotencyKey = None) -> Response:
        return idempotent(request, app, caller, key, body, 201,
                          lambda: ThingOut(...service call...))

`idempotent` runs the action and renders its model as JSON with `status`. With a key:

- first request: runs; a final answer (2xx, or a 400/413/415/422 refusal) is stored;
- same key, same method + route + path + body: the stored answer is replayed with the header
  `Idempotent-Replayed: true`, and nothing runs;
- same key, different request: 422 `idempotency_key_reused`;
- same key while the first request still runs: 409 `idempotency_in_progress`;
- same key after the first request's command committed but its answer was lost (the process
  died in between): 409 `idempotency_outcome_lost`, and nothing runs again;
- a 401/403/404/409/429/5xx answer is not stored: a retry runs again (that is the point of
  retrying after a 409 conflict).

Keys are per account (two accounts may use the same key). Storage and the rules above live in
domain/service/idempotency.py.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.problems import PROBLEM_MEDIA_TYPE, problem_response
from domain.bootstrap import App
from domain.errors import DomainError
from domain.service.access import Access
from domain.service.idempotency import IdempotencyStore, StoredAnswer, request_hash

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Optional. A client-chosen key (1–200 visible ASCII characters, e.g. a "
        "UUID) that makes a retry of this write safe: the first answer is replayed.",
        examples=["5b0f7c1e-2d43-4a3b-9a53-0d6f4f1c2a77"],
    ),
]

REPLAYED = "Idempotent-Replayed"


@dataclass(frozen=True)
class JsonBody:
    """An answer its route already serialised to JSON (a long list's, built item by item)."""

    content: bytes | memoryview


def _render(result: BaseModel | JsonBody, status: int) -> Response:
    if isinstance(result, JsonBody):
        return Response(result.content, status_code=status, media_type="application/json")
    return JSONResponse(result.model_dump(mode="json"), status_code=status)


def idempotent(
    request: Request,
    app: App,
    caller: Access,
    key: str | None,
    body: BaseModel | None,
    status: int,
    action: Callable[[], BaseModel | JsonBody],
) -> Response:
    if key is None:
        return _render(action(), status)
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    scope = f"{request.method} {template}"
    digest = request_hash(
        {
            "path": request.url.path,
            "body": body.model_dump(mode="json") if body is not None else None,
        }
    )
    store = IdempotencyStore(app.engine, app.service.clock)
    outcome = store.begin(caller.account_id, key, scope=scope, request_hash=digest)
    if isinstance(outcome, StoredAnswer):
        media = PROBLEM_MEDIA_TYPE if outcome.status_code >= 400 else "application/json"
        return Response(
            outcome.body,
            status_code=outcome.status_code,
            media_type=media,
            headers={REPLAYED: "true"},
        )
    try:
        # A command that commits also marks the key as "ran", in its own transaction: a crash
        # before `finish` cannot let a retry run it again (domain/service/idempotency.py).
        with store.marking(caller.account_id, key):
            result = action()
        response = _render(result, status)
    except DomainError as err:
        response = problem_response(request, err)
    except BaseException:
        store.abandon(caller.account_id, key)
        raise
    store.finish(caller.account_id, key, response.status_code, bytes(response.body).decode())
    return response
