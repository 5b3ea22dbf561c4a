"""A campaign list shares equal check results between its members' audit payloads; what is
sealed and answered must not change by a byte."""

import json

from domain.model import AuditIntent
from domain.service.welfare import _checks_of, _share_checks


def intent(*checks: dict[str, object], action: str = "case.submitted") -> AuditIntent:
    return AuditIntent(
        action=action,
        entity_type="case",
        entity_id="c",
        actor_id="a",
        actor_role=None,
        org_unit_id="CS-A",
        policy="tet",
        policy_version=1,
        payload={"case": "c", "status": "submitted", "checks": list(checks)},
    )


def check(rule: str = "min_tenure", outcome: str = "passed", **params: object) -> dict[str, object]:
    return {"rule": rule, "code": "C7", "outcome": outcome, "reason": "ok", "params": params}


def test_equal_checks_become_one_dict_and_every_payload_serialises_as_before() -> None:
    intents = [
        intent(check(), check("amount_cap", cap=3_300_000)),
        intent(check(), check("amount_cap", cap=3_300_000), action="case.screened"),
        intent(check(), check("amount_cap", cap=3_000_000)),
    ]
    before = [json.dumps(i.payload) for i in intents]
    pool: dict[tuple[object, ...], dict[str, object]] = {}
    _share_checks(intents, pool)
    assert [json.dumps(i.payload) for i in intents] == before
    first, second, third = (i.payload["checks"] for i in intents)
    assert isinstance(first, list)
    assert isinstance(second, list)
    assert isinstance(third, list)
    assert first[0] is second[0] is third[0]
    assert first[1] is second[1]
    assert third[1] is not first[1]  # other parameters
    assert _checks_of(intents[:2]) == [*first, *second]


def test_values_equal_in_python_but_not_in_json_are_not_shared() -> None:
    # 1 == 1.0 == True in Python; in the audit log and the answer they are 1, 1.0 and true.
    variants = [check(n=1), check(n=True), check(n=1.0), check(n="1")]
    swapped: dict[str, object] = {
        "code": "C7",
        "rule": "min_tenure",
        "outcome": "passed",
        "reason": "ok",
    }
    intents = [intent(c) for c in [*variants, {**swapped, "params": {}}, check()]]
    before = [json.dumps(i.payload) for i in intents]
    _share_checks(intents, {})
    assert [json.dumps(i.payload) for i in intents] == before
    shared = [i.payload["checks"][0] for i in intents]  # type: ignore[index]
    assert len({id(c) for c in shared}) == len(shared)  # key order differs too: all kept


def test_a_check_with_a_nested_value_keeps_its_own_dict() -> None:
    a, b = check(where=["x"]), check(where=["x"])
    intents = [intent(a), intent(b)]
    _share_checks(intents, {})
    assert intents[1].payload["checks"][0] is b  # type: ignore[index]
