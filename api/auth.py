"""Authentication (OAuth2 password flow, HS256 bearer tokens) and the caller's access scope.

Usage in a router:

    from api.auth import Caller, require_roles
    from domain.roles import Role

    @router.get("/things", responses=problems(401, 403))
    def things(caller: Caller) -> ...:
        caller.account_id, caller.grants, caller.units(Role.AUDITOR), caller.case_units
        # `Caller` is domain.service.access.Access; 401 problem when the token is missing,
        # invalid, expired, or its account is unknown or deactivated.

    @router.get("/audit", dependencies=[Depends(require_roles(Role.AUDITOR))])   # else 403

Scoping rule for resources: answer 404 (never 403) when the resource is outside the caller's
scope, so existence does not leak; 403 only for something the caller can already see.

Tokens: `POST /auth/token` (form fields username, password) → {access_token, token_type,
expires_in}. Claims: sub (account id), iat, exp (settings.token_ttl_minutes), jti, iss.
Signed with settings.secret_key, or a key generated once into data_dir/secret.key (0600).
Time comes from the domain clock (`app.service.clock`), so tests can expire tokens.
`issue_token(domain_app, account_id)` mints a token directly (tests, tools).
"""

import os
import secrets
import uuid
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Welfare
from api.problems import problems
from domain.bootstrap import App
from domain.errors import DomainError, NotFound, PermissionDenied
from domain.roles import Role
from domain.service.access import Access, resolve_access
from domain.service.accounts import authenticate

ALGORITHM = "HS256"
ISSUER = "union-welfare"

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/auth/token",
    auto_error=False,
    description="Log in with a username and password at `/auth/token`; send "
    "`Authorization: Bearer <access_token>`.",
)


class NotAuthenticated(DomainError):
    kind = "unauthorized"

    def __init__(self) -> None:
        super().__init__("unauthorized")


def secret_key(app: App) -> str:
    """settings.secret_key, else a key generated once into data_dir/secret.key (mode 0600)."""
    if app.settings.secret_key:
        return app.settings.secret_key
    path = Path(app.settings.data_dir) / "secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


def _key(app: App) -> str:
    if not app.settings.secret_key:
        # Read the file once; create_app does this at start, so requests never touch the disk.
        app.settings.secret_key = secret_key(app)
    return app.settings.secret_key


def issue_token(app: App, account_id: str) -> tuple[str, int]:
    now = app.service.clock()
    ttl = app.settings.token_ttl_minutes * 60
    claims: dict[str, Any] = {
        "sub": account_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
        "iss": ISSUER,
    }
    return jwt.encode(claims, _key(app), algorithm=ALGORITHM), ttl


def account_of_token(app: App, token: str) -> str:
    sub, exp = _verified(_key(app), token)
    if app.service.clock().timestamp() >= exp:
        raise NotAuthenticated()
    return sub


@lru_cache(maxsize=2048)
def _verified(key: str, token: str) -> tuple[str, int]:
    """(sub, exp) of a token whose signature and claims check out; NotAuthenticated otherwise.

    Cached per (key, token): a client sends the same token with every request for its
    lifetime, and its signature and claims cannot change, so it is decoded once. Only what
    can change is checked on every request: expiry (against the domain clock, by the caller)
    and the account being active with its grants (`resolve_access`). A refused token is not
    cached (the exception propagates).
    """
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            # Expiry is checked against the domain clock by the caller, not the machine's.
            options={
                "require": ["sub", "exp", "iat", "jti"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError:
        raise NotAuthenticated() from None
    exp, sub = claims.get("exp"), claims.get("sub")
    if not isinstance(exp, int) or not isinstance(sub, str):
        raise NotAuthenticated()
    return sub, exp


def current_access(
    request: Request, app: Welfare, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Access:
    if not token:
        raise NotAuthenticated()
    account_id = account_of_token(app, token)
    try:
        access = resolve_access(app.engine, account_id, app.service.clock())
    except NotFound:
        raise NotAuthenticated() from None  # deleted or deactivated: the token stops working
    request.state.access = access
    return access


Caller = Annotated[Access, Depends(current_access)]


def require_roles(*roles: Role) -> Any:
    """A dependency refusing (403 role_required) callers who hold none of `roles` anywhere."""

    def check(caller: Caller) -> Access:
        if not caller.has(*roles):
            raise PermissionDenied(
                "role_required", params={"roles": ", ".join(r.value for r in roles)}
            )
        return caller

    return check


# --- the token endpoint -------------------------------------------------------------------


class Token(BaseModel):
    """A short-lived bearer token (OAuth2 password flow)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIs…",
                    "token_type": "bearer",
                    "expires_in": 1800,
                }
            ]
        }
    )
    access_token: str = Field(description="A signed bearer token (JWT, HS256).")
    token_type: str = Field(description="Always `bearer`.", examples=["bearer"])
    expires_in: int = Field(description="Lifetime in seconds.", examples=[1800])


router = APIRouter(tags=["auth"])


@router.post(
    "/auth/token",
    response_model=Token,
    summary="Log in (OAuth2 password flow)",
    description="Exchange a username and password for a short-lived bearer token. Failed "
    "attempts are counted per username and per client address; too many give 429 with "
    "Retry-After. An unknown user, a wrong password and an inactive account get the same 401.",
    responses=problems(401, 422, 429),
)
def login(
    request: Request, app: Welfare, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    s = app.settings
    account_id = authenticate(
        app.service,
        form.username[:200],
        form.password[:1000],
        client=request.client.host if request.client else None,
        max_failures=s.login_max_failures,
        window_seconds=s.login_window_seconds,
    )
    token, ttl = issue_token(app, account_id)
    return Token(access_token=token, token_type="bearer", expires_in=ttl)
