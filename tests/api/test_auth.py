"""Log-in, tokens and throttling: who gets in, who does not, and how the refusal looks."""

import re

import jwt
import pytest
from sqlalchemy import func, select, update

from api.auth import issue_token
from domain.adapters.repository import ACCOUNT, AUDIT
from domain.service.accounts import THROTTLE
from tests.api.conftest import PASSWORD, TestClient, bearer, login, problem
from tests.support import World


def token(client: TestClient, username: str, password: str) -> object:
    return client.post("/auth/token", data={"username": username, "password": password})


def test_login_gives_a_bearer_token_that_opens_me(client: TestClient, world: World) -> None:
    r = client.post("/auth/token", data={"username": "officer_a", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == world.app.settings.token_ttl_minutes * 60
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "officer_a"
    assert me.json()["account_id"] == world.accounts["officer_a"]
    assert [g["role"] for g in me.json()["grants"]] == ["grassroots_officer"]
    assert me.json()["scope"] == ["CS-A"]


def test_scope_reaches_every_unit_below_a_role(client: TestClient, world: World) -> None:
    me = client.get("/api/v1/me", headers=bearer(world, "upper_tp")).json()
    assert me["scope"] == ["CS-A", "CS-B", "TP"]
    me = client.get("/api/v1/me", headers=bearer(world, "province_standing")).json()
    assert me["scope"] == ["CS-A", "CS-B", "CS-C", "DK", "LC", "TP"]


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient) -> None:
    wrong = client.post("/auth/token", data={"username": "officer_a", "password": "sai-mat-khau"})
    unknown = client.post("/auth/token", data={"username": "nobody", "password": "sai-mat-khau"})
    a = problem(wrong, 401, "invalid_credentials")
    b = problem(unknown, 401, "invalid_credentials")
    assert a == b
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"
    assert a["title"] == "Tên đăng nhập hoặc mật khẩu không đúng"


def test_inactive_account_cannot_log_in_and_its_token_stops_working(
    client: TestClient, world: World
) -> None:
    h = login(client, "officer_a")
    with world.app.engine.begin() as conn:
        conn.execute(update(ACCOUNT).where(ACCOUNT.c.username == "officer_a").values(active=False))
    problem(client.get("/api/v1/me", headers=h), 401, "unauthorized")
    r = client.post("/auth/token", data={"username": "officer_a", "password": PASSWORD})
    problem(r, 401, "invalid_credentials")


def test_a_token_in_use_stops_working_at_once_when_its_account_is_deactivated(
    client: TestClient, world: World
) -> None:
    # Used first, so its verified claims are remembered: the account is still checked each time.
    h = bearer(world, "chair_a")
    assert client.get("/api/v1/me", headers=h).status_code == 200
    with world.app.engine.begin() as conn:
        conn.execute(update(ACCOUNT).where(ACCOUNT.c.username == "chair_a").values(active=False))
    problem(client.get("/api/v1/me", headers=h), 401, "unauthorized")


def test_lockout_after_too_many_failures_then_retry_after(client: TestClient, world: World) -> None:
    limit = world.app.settings.login_max_failures
    for _ in range(limit):
        r = client.post("/auth/token", data={"username": "chair_a", "password": "sai-mat-khau"})
        problem(r, 401, "invalid_credentials")
    # Locked now: even the right password is refused until the window passes.
    r = client.post("/auth/token", data={"username": "chair_a", "password": PASSWORD})
    body = problem(r, 429, "login_throttled")
    retry = int(r.headers["retry-after"])
    assert 0 < retry <= world.app.settings.login_window_seconds
    assert "thử lại" in str(body["detail"])
    # Another user from the same address is not locked by chair_a's failures.
    login(client, "officer_a")
    world.clock.advance(seconds=retry + 1)
    login(client, "chair_a")
    # A success clears the username's counter.
    with world.app.engine.connect() as conn:
        keys = [r[0] for r in conn.execute(select(THROTTLE.c.key))]
    assert "user:chair_a" not in keys


def test_expired_token_is_refused(client: TestClient, world: World) -> None:
    h = bearer(world, "officer_a")
    assert client.get("/api/v1/me", headers=h).status_code == 200
    world.clock.advance(minutes=world.app.settings.token_ttl_minutes, seconds=1)
    body = problem(client.get("/api/v1/me", headers=h), 401, "unauthorized")
    assert body["instance"] == "/api/v1/me"


def test_tampered_and_foreign_tokens_are_refused(client: TestClient, world: World) -> None:
    good, _ = issue_token(world.app, world.accounts["officer_a"])
    head, payload, sig = good.split(".")
    tampered = f"{head}.{payload}.{sig[:-2]}{'AA' if not sig.endswith('AA') else 'BB'}"
    problem(client.get("/api/v1/me", headers={"Authorization": f"Bearer {tampered}"}), 401)
    claims = jwt.decode(good, options={"verify_signature": False})
    claims["sub"] = world.accounts["province_standing"]
    forged = jwt.encode(claims, "another-secret-key-of-enough-length-1234", algorithm="HS256")
    problem(client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401)
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    problem(client.get("/api/v1/me", headers={"Authorization": f"Bearer {unsigned}"}), 401)
    problem(client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-jwt"}), 401)


def test_missing_token_is_401_problem_with_www_authenticate(client: TestClient) -> None:
    for path in ("/api/v1/me", "/api/v1/cases", "/api/v1/inbox", "/api/v1/policies"):
        r = client.get(path)
        body = problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        assert body["title"]
    r = client.get("/api/v1/me", headers={"Accept-Language": "en"})
    assert problem(r, 401)["title"] == "Not logged in, or the access token is invalid or expired"


def test_health_and_docs_need_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_nothing_from_outside(client: TestClient, page: str) -> None:
    """An office without internet still gets working docs: every script, style and icon the
    page names is served by the API itself."""
    html = client.get(page).text
    assets = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts, html
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from outside"
        r = client.get(asset)
        assert r.status_code == 200, asset
        assert r.content, asset


def test_login_writes_nothing_to_the_audit_log(client: TestClient, world: World) -> None:
    with world.app.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(AUDIT)).scalar_one()
    login(client, "officer_a")
    token(client, "officer_a", "wrong-password")
    with world.app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AUDIT)).scalar_one() == before


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic b2ZmaWNlcl9hOng=", "bearer a.b.c"],
)
def test_without_a_valid_token_a_malformed_body_is_401_not_422(
    client: TestClient, world: World, authorization: str | None
) -> None:
    """Nothing about a write's body is answered to someone who has not logged in (FastAPI
    parses the body before the route's dependencies, so this is checked at the edge)."""
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    r = client.post("/api/v1/cases", content=b"{not json", headers=headers)
    problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    # With a valid token the same body is a validation problem.
    r = client.post(
        "/api/v1/cases", content=b"{not json", headers={**headers, **bearer(world, "officer_a")}
    )
    problem(r, 422, "validation_error")
