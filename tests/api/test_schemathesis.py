"""Property-based API testing: schemathesis 4 against the app's own OpenAPI, in-process (ASGI).

Every operation is called with generated inputs (valid and invalid), authenticated as an account
holding several roles at the province (auditor, admin, standing committee, treasurer) and an
officer's role at CS-A, so requests reach the handlers rather than stopping at 401. Checks: no
server error, responses conform to the declared schema, status codes and content types.

Bounded: a few examples per operation, no deadline, one world for the module; SQLite by default.
On PostgreSQL (when WELFARE_TEST_POSTGRES_URL is set) the same run uses fewer examples.
"""

import warnings
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from api.auth import issue_token
from domain.roles import Role
from tests.support import (
    POSTGRES_URL,
    Clock,
    Database,
    World,
    build_world,
    postgres_database,
    sqlite_database,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
EXAMPLES = {"sqlite": 12, "postgres": 4}


def _fuzzer(world: World) -> str:
    acc = world.admin.add_account(
        "test", username="fuzzer", display_name="Fuzzer", home_unit_id="LC"
    )
    for role, unit in [
        (Role.AUDITOR, "LC"),
        (Role.ADMIN, "LC"),
        (Role.PROVINCE_STANDING, "LC"),
        (Role.TREASURER, "LC"),
        (Role.GRASSROOTS_OFFICER, "CS-A"),
    ]:
        world.admin.grant_role("test", acc, role, unit, date(2020, 1, 1))
    member = world.member("CS-A")
    sub = world.submit("housing", "repair", member)
    world.admin.file_complaint(world.accounts["officer_a"], sub.case_id, "complaint", "Thử")
    return acc


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, dict[str, str], str]]:
    if request.param == "postgres" and not POSTGRES_URL:
        pytest.skip("WELFARE_TEST_POSTGRES_URL is not set")
    tmp: Path = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    db: Database = sqlite_database(tmp) if request.param == "sqlite" else postgres_database()
    try:
        world = build_world(db, tmp, Clock())
        account = _fuzzer(world)
        app = create_app(world.app)
        token, _ = issue_token(world.app, account)
        yield app, {"Authorization": f"Bearer {token}"}, request.param
    finally:
        db.close()


def test_no_server_error_and_responses_match_the_schema(
    fuzz_target: tuple[Any, dict[str, str], str],
) -> None:
    """Every operation, positive and negative inputs. (schemathesis' own pytest plugin —
    `schemathesis.pytest.from_fixture` — does not run on pytest 9, so the operations are
    driven here with hypothesis directly; the checks are the same.)"""
    app, headers, kind = fuzz_target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 30
    for operation in operations:
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES[kind],
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except BaseException as exc:
            failures.append(f"{operation.label}: {str(exc)[:800]}")
    assert failures == [], "\n\n".join(failures)
