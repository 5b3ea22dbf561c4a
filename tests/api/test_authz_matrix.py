# The table's request builders and expectations share one signature; many ignore an argument.
# ruff: noqa: ARG005
"""The authorisation matrix: every route × every role × a target in the own / a child / a foreign unit.

The route list is read from the app (its OpenAPI document): a new route without an entry in
ROUTES fails `test_every_route_has_a_matrix_entry`. Expected outcomes:

    ALLOW → 2xx, or a domain refusal other than 401/403/404 (409/422: the state or the body),
    R404  → 404 (outside the caller's scope: existence does not leak),
    R403  → 403 (the caller may see the target, or the route is not for their role),
    DENY  → refused, by role or by state: any 4xx but 401 (a write the caller may see but not
            make; the engine checks the case's status before the actor, so 409 is possible),
    without a token every route but /healthz and /auth/token → 401.

One world per database, built once for the module: a second province (DB → DBW → CS-X) gives
the provincial roles a foreign unit. Every write route gets its own cases, complaints, members,
accounts and grants, so one route's writes never change another's outcome; within a route the
refused calls run first, so they meet the state the route's resources were built in.
"""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from api.app import create_app
from api.auth import issue_token
from domain.adapters.repository import AUDIT
from domain.cccd import make_cccd
from domain.roles import OrgLevel, Role
from domain.service.queries import open_tasks
from tests.api.conftest import TestClient
from tests.support import (
    POSTGRES_URL,
    Clock,
    Database,
    World,
    build_world,
    postgres_database,
    sha,
    sqlite_database,
)

ALLOW, R404, R403, DENY = "allow", "404", "403", "deny"

# --- the actors and their targets ---------------------------------------------------------------

# actor → (home unit, reach of its role: the units whose cases it may read)
TP_SUB = {"TP", "CS-A", "CS-B"}
LC_SUB = {"LC", "TP", "DK", "CS-A", "CS-B", "CS-C"}
ACTORS: dict[str, tuple[str, set[str]]] = {
    "officer_a": ("CS-A", {"CS-A"}),
    "chair_a": ("CS-A", {"CS-A"}),
    "upper_tp": ("TP", TP_SUB),
    "province_policy": ("LC", LC_SUB),
    "province_standing": ("LC", LC_SUB),
    "treasurer_tp": ("TP", TP_SUB),
    "auditor_tp": ("TP", TP_SUB),
    "auditor": ("LC", LC_SUB),
    "admin_tp": ("TP", TP_SUB),
    "admin_lc": ("LC", LC_SUB),
    "member_a": ("CS-A", set()),
    "anonymous": ("", set()),
}
# label → unit, per home unit: the unit itself, one below it, one outside its tree
UNITS = {
    "CS-A": {"own": "CS-A", "foreign": "CS-C"},
    "TP": {"own": "TP", "child": "CS-A", "foreign": "CS-C"},
    "LC": {"own": "LC", "child": "TP", "foreign": "CS-X"},
}
# a case "in" a unit lives at a grassroots unit of that unit's tree (distinct per label)
CASE_UNIT = {"CS-A": "CS-A", "TP": "CS-B", "LC": "CS-C", "CS-C": "CS-C", "CS-X": "CS-X"}
OFFICER = {"CS-A": "officer_a", "CS-B": "officer_b", "CS-C": "officer_c", "CS-X": "officer_x"}
CHAIR = {"CS-A": "chair_a", "CS-B": "chair_b", "CS-C": "chair_c", "CS-X": "chair_x"}
UPPER_OF = {"CS-A": "TP", "CS-B": "TP", "CS-C": "DK", "CS-X": "DBW"}
ADMINS = {"admin_tp", "admin_lc"}
AUDITORS = {"auditor_tp", "auditor"}
APPROVERS = {"chair_a", "upper_tp", "province_policy", "province_standing"}
CASE_READERS = set(ACTORS) - ADMINS - {"member_a", "anonymous"}
# Grassroots officers and chairs file cases and lists: they look their unit's members up.
FILERS = {*OFFICER.values(), *CHAIR.values()} & set(ACTORS)


def targets(actor: str) -> dict[str, str]:
    if actor == "member_a":
        return {"own": "member-own", "foreign": "CS-C"}
    home = ACTORS[actor][0]
    return UNITS.get(home, {"own": "CS-A", "foreign": "CS-C"})


def case_unit(actor: str, unit: str) -> str:
    return "CS-A" if unit == "member-own" else CASE_UNIT[unit]


def reaches(actor: str, unit: str) -> bool:
    return unit in ACTORS[actor][1]


def sees_case(actor: str, unit: str, member_case: bool = False) -> bool:
    if actor == "member_a":
        return member_case
    return actor in CASE_READERS and reaches(actor, unit)


def admin_reaches(actor: str, unit: str) -> bool:
    return actor in ADMINS and reaches(actor, unit)


def ancestors(unit: str) -> set[str]:
    up = {
        "CS-A": "TP",
        "CS-B": "TP",
        "CS-C": "DK",
        "CS-X": "DBW",
        "TP": "LC",
        "DK": "LC",
        "DBW": "DB",
    }
    out = {unit}
    while unit in up:
        unit = up[unit]
        out.add(unit)
    return out


# --- the world -----------------------------------------------------------------------------------


@dataclass
class Matrix:
    world: World
    client: TestClient
    # route key → unit → resource id (cases, tasks, complaints, members, accounts, grants)
    res: dict[str, dict[str, Any]] = field(default_factory=dict)
    member_case: dict[str, str] = field(default_factory=dict)  # member_a's own case and task
    serial: int = 0

    def headers(self, actor: str) -> dict[str, str]:
        if actor == "anonymous":
            return {}
        token, _ = issue_token(self.world.app, self.world.accounts[actor])
        return {"Authorization": f"Bearer {token}"}

    def cccd(self) -> str:
        self.serial += 1
        return make_cccd("012", date(1990, 5, 17), "male", 900_000 + self.serial)


def _extend(w: World) -> None:
    a = w.app.admin
    a.add_org_unit("test", "DB", "Liên đoàn Lao động tỉnh Điện Biên", OrgLevel.PROVINCE, "VN")
    a.add_org_unit("test", "DBW", "Công đoàn phường Him Lam", OrgLevel.UPPER, "DB", "HL")
    a.add_org_unit(
        "test", "CS-X", "CĐCS Công ty Cà phê Điện Biên", OrgLevel.GRASSROOTS, "DBW", "HL"
    )
    w.account("officer_x", Role.GRASSROOTS_OFFICER, "CS-X")
    w.account("chair_x", Role.GRASSROOTS_CHAIR, "CS-X")
    w.account("admin_tp", Role.ADMIN, "TP")
    w.account("admin_lc", Role.ADMIN, "LC")
    # build_world sets budgets for the first province only.
    for level, fund in {
        (f.level.value, f.fund)
        for d in w.app.definitions.versions.values()
        for f in [d.funding, *(s.funding for s in d.subtypes.values() if s.funding)]
        if f is not None
    }:
        unit = {"province": "DB", "upper": "DBW", "grassroots": "CS-X"}.get(level)
        if unit:
            a.set_budget("test", unit, w.clock.today().year, fund, 2_000_000_000)


CASE_ROUTES = [
    "GET /api/v1/cases/{case_id}",
    "GET /api/v1/cases/{case_id}/trail",
    "GET /api/v1/cases/{case_id}/dossier",
    "POST /api/v1/cases/{case_id}/complaints",
    "POST /api/v1/cases/{case_id}/documents",
    "POST /api/v1/cases/{case_id}/information",
    "POST /api/v1/cases/{case_id}/withdrawal",
    "POST /api/v1/cases/{case_id}/payments",
    "POST /api/v1/tasks/{task_id}/claim",
    "POST /api/v1/tasks/{task_id}/release",
    "POST /api/v1/tasks/{task_id}/delegation",
    "POST /api/v1/tasks/{task_id}/decision",
    "GET /api/v1/complaints/{complaint_id}",
    "POST /api/v1/complaints/{complaint_id}/resolution",
]
GRASSROOTS = ["CS-A", "CS-B", "CS-C", "CS-X"]
ALL_UNITS = ["LC", "TP", "DK", "CS-A", "CS-B", "CS-C", "DB", "DBW", "CS-X"]


def _build(m: Matrix) -> None:
    w = m.world
    _extend(w)
    mem_a = w.member("CS-A", name="Lò Văn Mạnh", dob=date(1985, 3, 3))
    w.account("member_a", Role.MEMBER, "CS-A", member_id=mem_a)
    for route in CASE_ROUTES:
        per_unit: dict[str, Any] = {}
        for unit in GRASSROOTS:
            member = w.member(unit, commune="TP" if unit != "CS-X" else "HL")
            sub = w.submit("housing", "repair", member, unit=unit, by=OFFICER[unit])
            task = str(open_tasks(w.app.engine, sub.case_id)[0]["id"])
            complaint = None
            if "complaints/{complaint_id}" in route:
                complaint = w.admin.file_complaint(
                    w.accounts[OFFICER[unit]], sub.case_id, "complaint", "Khiếu nại thử"
                )
            if route.endswith("/release"):
                # Claimed by its chair, so a release by anyone else is a refusal, not a no-op.
                w.service.claim(w.accounts[CHAIR[unit]], str(task))
            per_unit[unit] = {"case": sub.case_id, "task": task, "complaint": complaint}
        m.res[route] = per_unit
    own = w.submit("housing", "repair", mem_a)
    m.member_case["case"] = own.case_id
    m.member_case["task"] = str(open_tasks(w.app.engine, own.case_id)[0]["id"])
    w.service.claim(w.accounts["chair_a"], m.member_case["task"])  # see the release route
    m.res["members"] = {u: w.member(u) for u in GRASSROOTS}
    for route in ("POST /api/v1/members/{member_id}/membership-end",):
        m.res[route] = {u: {"member": w.member(u)} for u in GRASSROOTS}
    # Someone who left each union: the first allowed join is 201, the next ones 409.
    m.res["POST /api/v1/memberships"] = {}
    for u in GRASSROOTS:
        left = w.member(u)
        w.admin.end_membership("test", left, date(2026, 2, 27))
        card = w.card(left)
        m.res["POST /api/v1/memberships"][u] = {**card, "dob": card["dob"].isoformat()}
    for route in (
        "GET /api/v1/accounts/{account_id}",
        "POST /api/v1/accounts/{account_id}/deactivation",
        "POST /api/v1/accounts/{account_id}/password",
        "POST /api/v1/accounts/{account_id}/grants",
        "POST /api/v1/grants/{grant_id}/revocation",
    ):
        per: dict[str, Any] = {}
        for u in ALL_UNITS:
            acc = w.app.admin.add_account(
                "test",
                username=f"v{uuid.uuid4().hex[:10]}",
                display_name="Nạn nhân",
                home_unit_id=u,
            )
            grant = w.app.admin.grant_role(
                "test", acc, Role.GRASSROOTS_OFFICER, u, date(2020, 1, 1)
            )
            per[u] = {"account": acc, "grant": grant}
        m.res[route] = per


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def matrix(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Matrix]:
    if request.param == "postgres" and not POSTGRES_URL:
        pytest.skip("WELFARE_TEST_POSTGRES_URL is not set")
    tmp: Path = tmp_path_factory.mktemp(f"matrix-{request.param}")
    db: Database = sqlite_database(tmp) if request.param == "sqlite" else postgres_database()
    try:
        world = build_world(db, tmp, Clock())
        from tests.api.conftest import set_all_passwords

        m = Matrix(world, None)  # type: ignore[arg-type]
        _build(m)
        set_all_passwords(world)
        with TestClient(create_app(world.app), base_url="http://testserver") as client:
            m.client = client
            yield m
    finally:
        db.close()


# --- the table -----------------------------------------------------------------------------------

Expect = Callable[[str, str, Matrix, str], str]  # (actor, unit, matrix, route) → outcome
Request = Callable[[Matrix, str, str, str], tuple[str, dict[str, Any]]]  # → (path, kwargs)


@dataclass(frozen=True)
class Entry:
    request: Request
    expect: Expect
    targeted: bool = True  # False: the route takes no target (lists, me, search…)


def _path(template: str, **ids: Any) -> str:
    return template.format(**ids)


def _case_req(extra: Callable[[Matrix, str], dict[str, Any]] | None = None) -> Request:
    def build(m: Matrix, route: str, actor: str, unit: str) -> tuple[str, dict[str, Any]]:
        template = route.split(" ", 1)[1]
        if unit == "member-own" and "{complaint_id}" not in route:
            ids = {"case_id": m.member_case["case"], "task_id": m.member_case["task"]}
        else:
            r = m.res[route][case_unit(actor, unit)]
            ids = {"case_id": r["case"], "task_id": r["task"], "complaint_id": r["complaint"]}
        return _path(template, **ids), (extra(m, actor) if extra else {})

    return build


def _plain(kwargs: Callable[[Matrix, str, str], dict[str, Any]] | None = None) -> Request:
    def build(m: Matrix, route: str, actor: str, unit: str) -> tuple[str, dict[str, Any]]:
        return route.split(" ", 1)[1], (kwargs(m, actor, unit) if kwargs else {})

    return build


def _res_req(
    kind: str, body: Callable[[Matrix, str, str], dict[str, Any]] | None = None
) -> Request:
    def build(m: Matrix, route: str, actor: str, unit: str) -> tuple[str, dict[str, Any]]:
        ident = m.res[route][unit][kind]
        template = route.split(" ", 1)[1]
        path = _path(template, **{f"{kind}_id": ident})
        return path, (body(m, actor, unit) if body else {})

    return build


def everyone(actor: str, unit: str, m: Matrix, route: str) -> str:
    return ALLOW


def only(*actors: str) -> Expect:
    def f(actor: str, unit: str, m: Matrix, route: str) -> str:
        return ALLOW if actor in actors else R403

    return f


def case_read(actor: str, unit: str, m: Matrix, route: str) -> str:
    if unit == "member-own":
        return ALLOW
    return ALLOW if sees_case(actor, case_unit(actor, unit)) else R404


def auditor_case(actor: str, unit: str, m: Matrix, route: str) -> str:
    if actor not in AUDITORS:
        return R403
    return ALLOW if reaches(actor, case_unit(actor, unit)) else R404


def officer_write(actor: str, unit: str, m: Matrix, route: str) -> str:
    """An officer or the chair of the case's unit (the engine's rule); others who see the case:
    refused; others: 404."""
    if unit == "member-own":
        return DENY  # the member themself: only reads and complaints
    cu = case_unit(actor, unit)
    if actor in (OFFICER.get(cu), CHAIR.get(cu)):
        return ALLOW
    return DENY if sees_case(actor, cu) else R404


def complaint_file(actor: str, unit: str, m: Matrix, route: str) -> str:
    if unit == "member-own":
        return ALLOW
    cu = case_unit(actor, unit)
    if actor == OFFICER.get(cu):
        return ALLOW
    return R403 if sees_case(actor, cu) else R404


def treasurer_write(actor: str, unit: str, m: Matrix, route: str) -> str:
    if unit == "member-own":
        return DENY
    cu = case_unit(actor, unit)
    if not sees_case(actor, cu):
        return R404
    return ALLOW if actor == "treasurer_tp" else DENY


def task_write(actor: str, unit: str, m: Matrix, route: str) -> str:
    if unit == "member-own":
        return DENY  # the member's own case's task (the chair's)
    cu = case_unit(actor, unit)
    if not sees_case(actor, cu):
        return R404
    return ALLOW if actor == CHAIR.get(cu) else DENY


def complaint_read(actor: str, unit: str, m: Matrix, route: str) -> str:
    cu = case_unit(actor, unit)
    if actor == OFFICER.get(cu):
        return ALLOW  # the filer
    if actor in AUDITORS and (reaches(actor, cu) or reaches(actor, UPPER_OF[cu])):
        return ALLOW
    return R404


def complaint_resolve(actor: str, unit: str, m: Matrix, route: str) -> str:
    seen = complaint_read(actor, unit, m, route)
    if seen != ALLOW:
        return R404
    cu = case_unit(actor, unit)
    holder = {"auditor_tp": "TP", "auditor": "LC"}.get(actor)
    return ALLOW if holder in ancestors(UPPER_OF[cu]) else R403


def admin_unit(actor: str, unit: str, m: Matrix, route: str) -> str:
    if actor not in ADMINS:
        return R403
    return ALLOW if admin_reaches(actor, unit) else R404


def admin_grassroots(actor: str, unit: str, m: Matrix, route: str) -> str:
    if actor not in ADMINS:
        return R403
    return ALLOW if admin_reaches(actor, CASE_UNIT[unit]) else R404


def submit_expect(actor: str, unit: str, m: Matrix, route: str) -> str:
    cu = case_unit(actor, unit)
    return ALLOW if actor == OFFICER.get(cu) else DENY


def list_expect(actor: str, unit: str, m: Matrix, route: str) -> str:
    """A list: the service admits an officer or the chair of the unit up front (each item is
    then screened on its own); anyone else is refused before anything is written."""
    cu = case_unit(actor, unit)
    return ALLOW if actor in (OFFICER.get(cu), CHAIR.get(cu)) else DENY


def _submit_body(m: Matrix, actor: str, unit: str) -> dict[str, Any]:
    cu = case_unit(actor, unit)
    return {
        "json": {
            "policy": "housing",
            "unit_id": cu,
            "member_id": m.res["members"][cu],
            "subtype": "repair",
            "event_date": m.world.clock.today().isoformat(),
            "form": {},
            "documents": [],
        }
    }


def _list_body(m: Matrix, actor: str, unit: str) -> dict[str, Any]:
    one = _submit_body(m, actor, unit)["json"]
    return {
        "json": {
            "policy": "housing",
            "unit_id": one["unit_id"],
            "items": [
                {k: one[k] for k in ("member_id", "subtype", "event_date", "form", "documents")}
            ],
        }
    }


def _doc(m: Matrix, actor: str) -> dict[str, Any]:
    return {
        "json": {
            "documents": [
                {
                    "kind": m.world.app.definitions.current("housing")
                    .subtypes["repair"]
                    .documents[0],
                    "filename": "a.jpg",
                    "sha256": sha(uuid.uuid4().hex),
                    "size": 10,
                }
            ]
        }
    }


def _member_body(m: Matrix, actor: str, unit: str) -> dict[str, Any]:
    return {
        "json": {
            "full_name": "Nguyễn Văn Thử",
            "cccd": m.cccd(),
            "dob": "1990-05-17",
            "sex": "male",
            "unit_id": CASE_UNIT[unit],
            "joined_on": "2015-01-01",
        }
    }


def _unit_body(m: Matrix, actor: str, unit: str) -> dict[str, Any]:
    level = {"LC": "upper", "TP": "grassroots", "DK": "grassroots"}.get(unit, "grassroots")
    return {
        "json": {
            "id": f"U-{uuid.uuid4().hex[:8]}",
            "name": "Đơn vị thử",
            "level": level,
            "parent_id": unit,
        }
    }


def _account_body(m: Matrix, actor: str, unit: str) -> dict[str, Any]:
    return {
        "json": {
            "username": f"u{uuid.uuid4().hex[:10]}",
            "display_name": "Tài khoản thử",
            "home_unit_id": unit,
        }
    }


def _import(m: Matrix, actor: str, unit: str) -> dict[str, Any]:
    text = "ho_ten,cccd,ngay_sinh,gioi_tinh,ngay_vao_cong_doan\n"
    text += f"Nguyễn Văn Thử,{m.cccd()},17/05/1990,Nam,01/01/2015\n"
    return {
        "files": {"file": ("ds.csv", text.encode(), "text/csv")},
        "data": {"unit_id": CASE_UNIT[unit], "dry_run": "true"},
    }


def _json(body: dict[str, Any]) -> Callable[[Matrix, str], dict[str, Any]]:
    return lambda m, actor: {"json": body}


def _json3(
    body: Callable[[Matrix, str, str], dict[str, Any]],
) -> Callable[[Matrix, str, str], dict[str, Any]]:
    return lambda m, actor, unit: {"json": body(m, actor, unit)}


ROUTES: dict[str, Entry] = {
    # --- meta and auth (engineer A) ---
    "GET /healthz": Entry(_plain(), everyone, targeted=False),
    "POST /auth/token": Entry(
        _plain(lambda m, a, u: {"data": {"username": a, "password": "sai-mat-khau"}}),
        lambda actor, unit, m, route: "401",  # public; a wrong password: 401 for everyone
        targeted=False,
    ),
    "GET /api/v1/me": Entry(_plain(), everyone, targeted=False),
    "GET /api/v1/policies": Entry(_plain(), everyone, targeted=False),
    "GET /api/v1/campaigns": Entry(_plain(), everyone, targeted=False),
    "GET /api/v1/policies/{code}": Entry(
        lambda m, route, a, u: ("/api/v1/policies/housing", {}), everyone, targeted=False
    ),
    # --- cases, tasks, payments (engineer A) ---
    "GET /api/v1/cases": Entry(_plain(), everyone, targeted=False),
    "POST /api/v1/cases": Entry(_plain(_submit_body), submit_expect),
    "POST /api/v1/case-lists": Entry(_plain(_list_body), list_expect),
    "GET /api/v1/cases/{case_id}": Entry(_case_req(), case_read),
    "POST /api/v1/cases/{case_id}/documents": Entry(_case_req(_doc), officer_write),
    "POST /api/v1/cases/{case_id}/information": Entry(
        _case_req(_json({"form": {}, "documents": []})), officer_write
    ),
    "POST /api/v1/cases/{case_id}/withdrawal": Entry(
        _case_req(_json({"reason": "Rút hồ sơ"})), officer_write
    ),
    "POST /api/v1/cases/{case_id}/payments": Entry(
        _case_req(_json({"amount": 1000, "method": "cash", "reference": "UNC-1"})),
        treasurer_write,
    ),
    "GET /api/v1/inbox": Entry(_plain(), everyone, targeted=False),
    "GET /api/v1/payments/pending": Entry(_plain(), only("treasurer_tp"), targeted=False),
    "POST /api/v1/tasks/{task_id}/claim": Entry(_case_req(), task_write),
    "POST /api/v1/tasks/{task_id}/release": Entry(_case_req(), task_write),
    "POST /api/v1/tasks/{task_id}/delegation": Entry(
        _case_req(
            lambda m, a: {
                "json": {
                    "to_account_id": m.world.accounts["chair_a2"],
                    "until": (m.world.clock() + timedelta(days=2)).isoformat(),
                }
            }
        ),
        task_write,
    ),
    "POST /api/v1/tasks/{task_id}/decision": Entry(
        _case_req(_json({"action": "return", "reason": "Bổ sung ảnh"})), task_write
    ),
    # --- auditors (engineer B) ---
    "GET /api/v1/cases/{case_id}/trail": Entry(_case_req(), auditor_case),
    "GET /api/v1/cases/{case_id}/dossier": Entry(_case_req(), auditor_case),
    "GET /api/v1/audit/entries": Entry(_plain(), only(*AUDITORS), targeted=False),
    "POST /api/v1/audit/verification": Entry(
        _plain(lambda m, a, u: {"json": {}}), only(*AUDITORS), targeted=False
    ),
    # --- complaints (engineer B) ---
    "POST /api/v1/cases/{case_id}/complaints": Entry(
        _case_req(_json({"kind": "complaint", "text": "Chưa nhận tiền"})), complaint_file
    ),
    "GET /api/v1/complaints": Entry(_plain(), everyone, targeted=False),
    "GET /api/v1/complaints/{complaint_id}": Entry(_case_req(), complaint_read),
    "POST /api/v1/complaints/{complaint_id}/resolution": Entry(
        _case_req(_json({"resolution": "Đã giải quyết"})), complaint_resolve
    ),
    # --- administration (engineer B) ---
    "GET /api/v1/org-units": Entry(_plain(), only(*ADMINS), targeted=False),
    "POST /api/v1/org-units": Entry(_plain(_unit_body), admin_unit),
    "GET /api/v1/members": Entry(_plain(), only(*ADMINS, *FILERS), targeted=False),
    "POST /api/v1/members": Entry(_plain(_member_body), admin_grassroots),
    "POST /api/v1/members/{member_id}/membership-end": Entry(
        lambda m, route, a, u: (
            f"/api/v1/members/{m.res[route][CASE_UNIT[u]]['member']}/membership-end",
            {"json": {"left_on": "2026-02-28"}},
        ),
        admin_grassroots,
    ),
    "POST /api/v1/memberships": Entry(
        lambda m, route, a, u: (
            "/api/v1/memberships",
            {
                "json": {
                    **m.res[route][CASE_UNIT[u]],
                    "unit_id": CASE_UNIT[u],
                    "joined_on": "2026-03-01",
                }
            },
        ),
        admin_grassroots,
    ),
    "POST /api/v1/member-imports": Entry(_plain(_import), admin_grassroots),
    "GET /api/v1/accounts": Entry(_plain(), only(*ADMINS), targeted=False),
    "GET /api/v1/accounts/{account_id}": Entry(_res_req("account"), admin_unit),
    "POST /api/v1/accounts": Entry(_plain(_account_body), admin_unit),
    "POST /api/v1/accounts/{account_id}/deactivation": Entry(_res_req("account"), admin_unit),
    "POST /api/v1/accounts/{account_id}/password": Entry(
        _res_req("account", lambda m, a, u: {"json": {"password": "mat-khau-moi-2026"}}),
        admin_unit,
    ),
    "POST /api/v1/accounts/{account_id}/grants": Entry(
        _res_req("account", lambda m, a, u: {"json": {"role": "treasurer", "unit_id": u}}),
        admin_unit,
    ),
    "POST /api/v1/grants/{grant_id}/revocation": Entry(
        _res_req("grant", lambda m, a, u: {"json": {}}), admin_unit
    ),
    "GET /api/v1/policies/{code}/versions": Entry(
        lambda m, route, a, u: ("/api/v1/policies/housing/versions", {}), everyone, targeted=False
    ),
}
PUBLIC = {"GET /healthz", "POST /auth/token"}


def app_routes(app: FastAPI) -> set[str]:
    """Every (method, path) the app serves. Read from its OpenAPI document: FastAPI 0.16x
    includes routers lazily, so `app.routes` lists included routers, not their routes; every
    route here is in the schema (none is declared with include_in_schema=False)."""
    return {
        f"{method.upper()} {path}"
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_every_route_has_a_matrix_entry(tmp_path: Path) -> None:
    db = sqlite_database(tmp_path)
    try:
        world = build_world(db, tmp_path, Clock())
        routes = app_routes(create_app(world.app))
    finally:
        db.close()
    assert routes - set(ROUTES) == set(), "add these routes to the authorisation matrix"
    assert set(ROUTES) - routes == set(), "these matrix entries name no route"


def _ok(outcome: str, status: int) -> bool:
    if status >= 500:
        return False
    if outcome == ALLOW:
        return status not in (401, 403, 404)
    if outcome == R404:
        return status == 404
    if outcome == R403:
        return status == 403
    return 400 <= status < 500 and status != 401


def _cells(route: str) -> list[tuple[str, str]]:
    entry = ROUTES[route]
    cells: list[tuple[str, str]] = []
    for actor in ACTORS:
        if not entry.targeted:
            cells.append((actor, "-"))
            continue
        for u in targets(actor).values():
            # The member's own case is a case target; elsewhere the member stands in CS-A.
            cells.append((actor, u if u != "member-own" or route in CASE_ROUTES else "CS-A"))
    return cells


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_route_answers_every_role_in_every_unit_as_designed(matrix: Matrix, route: str) -> None:
    entry = ROUTES[route]
    method = route.split(" ", 1)[0]
    plan = []
    for actor, unit in _cells(route):
        if actor == "anonymous" and route not in PUBLIC:
            expected = "401"
        else:
            expected = entry.expect(actor, unit, matrix, route)
        plan.append((expected, actor, unit))
    # Refusals first: they must meet the state the route's resources were built in.
    plan.sort(key=lambda p: p[0] == ALLOW)
    wrong = []
    with matrix.world.app.engine.connect() as conn:
        audit_before = conn.execute(select(func.count()).select_from(AUDIT)).scalar_one()
    refused_writes = 0
    for expected, actor, unit in plan:
        path, kwargs = entry.request(matrix, route, actor, unit)
        r = matrix.client.request(method, path, headers=matrix.headers(actor), **kwargs)
        good = r.status_code == 401 if expected == "401" else _ok(expected, r.status_code)
        if not good:
            wrong.append((route, actor, unit, expected, r.status_code, r.text[:160]))
        if expected != ALLOW and method != "GET" and route not in PUBLIC:
            refused_writes += 1
            with matrix.world.app.engine.connect() as conn:
                now = conn.execute(select(func.count()).select_from(AUDIT)).scalar_one()
            if now != audit_before:
                wrong.append((route, actor, unit, "a refusal wrote to the audit log", now, ""))
                audit_before = now
    assert wrong == [], "\n".join(map(str, wrong))
