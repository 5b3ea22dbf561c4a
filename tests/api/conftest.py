"""Fixtures for the HTTP API tests, on SQLite and PostgreSQL.

    def test_x(client: TestClient, world: World) -> None:
        h = login(client, "officer_a")                 # real POST /auth/token
        h = bearer(world, "chair_a")                   # a token minted directly (fast)
        r = client.get("/api/v1/me", headers=h)
        world.clock.advance(days=3)                    # the API's clock moves too

- `world`: the World of tests/support.py (tree LC → TP, DK → CS-A, CS-B, CS-C; one account per
  role, e.g. officer_a, chair_a, upper_tp, province_standing, treasurer_province, auditor),
  copied per test from a template built once per database kind
  (tests/integration/helpers_policies.py). Every account's password is PASSWORD.
- `api_app`: the FastAPI app over `world.app`; `client`: a TestClient on it (httpx-based,
  sync; server exceptions are re-raised, so a 500 fails the test loudly).
- `async_client`: an httpx.AsyncClient over ASGITransport, for concurrent requests.
"""

import warnings
from collections.abc import AsyncIterator, Iterator
from functools import lru_cache

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from api.app import create_app
from api.auth import issue_token
from domain.adapters.repository import ACCOUNT
from domain.service.accounts import hasher
from tests.integration.helpers_policies import copied_world  # noqa: F401  (fixture `world`)
from tests.support import World

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its test client; httpx works the same.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient as TestClient  # re-exported for the tests

PASSWORD = "mat-khau-thu-nghiem"


@lru_cache(maxsize=1)
def password_hash() -> str:
    return hasher().hash(PASSWORD)


def set_all_passwords(world: World) -> None:
    """One hash (argon2 is slow on purpose) written to every account of the world."""
    with world.app.engine.begin() as conn:
        conn.execute(update(ACCOUNT).values(password_hash=password_hash()))


@pytest.fixture
def api_app(world: World) -> FastAPI:
    set_all_passwords(world)
    return create_app(world.app)


@pytest.fixture
def client(api_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(api_app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def async_client(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Authorization headers for `username`, through the real token endpoint."""
    r = client.post("/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def bearer(world: World, username: str) -> dict[str, str]:
    """Authorization headers for `username`, with a token minted directly (no argon2 cost)."""
    token, _ = issue_token(world.app, world.accounts[username])
    return {"Authorization": f"Bearer {token}"}


def problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    """Assert `r` is a problem-details answer with `status` (and `code`); return its body."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, object] = r.json()
    assert body["status"] == status
    assert str(body["type"]).startswith("https://union-welfare.local/problems/")
    if code is not None:
        assert body["code"] == code, body
    return body
