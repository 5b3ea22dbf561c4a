"""`WelfareService.screen_many`: the policy flows' screening, 100 cases a transaction.

With screening left to the flows (WELFARE_SCREENING=flow), a Tết list's cases wait in
`screening`; the flow screens them in batches whose unit quota is counted once per batch.
"""

from collections.abc import Iterator

import pytest

from domain.service.queries import case_status
from tests.integration.helpers_flow import code, person
from tests.integration.test_tet import tet
from tests.support import World


@pytest.fixture
def flow_screening(world: World) -> Iterator[World]:
    world.service.screen_inline = False
    try:
        yield world
    finally:
        world.service.screen_inline = True


def status(world: World, case_id: str) -> str:
    found = case_status(world.app.engine, case_id)
    assert found is not None
    return str(found["status"])


def test_a_batch_is_screened_and_a_second_pass_skips_it(flow_screening: World) -> None:
    world = flow_screening
    season = world.campaign("tet", code("TET-BATCH"))
    ids = [tet(world, person(world), season).case_id for _ in range(3)]
    assert {status(world, c) for c in ids} == {"screening"}
    assert world.service.screen_many(ids) == dict.fromkeys(ids, "screened")
    assert {status(world, c) for c in ids} == {"in_review"}
    assert world.service.screen_many(ids) == dict.fromkeys(ids, "skipped")


def test_the_quota_counted_once_a_batch_still_excludes_each_case_itself(
    flow_screening: World,
) -> None:
    # Both cases fill the quota of 2; screened together, each sees the other as the one
    # other live case (1 < 2). A tally that counted the case itself would refuse the second.
    world = flow_screening
    season = world.campaign("tet", code("TET-BATCH-Q"), quotas={"CS-A": 2})
    ids = [tet(world, person(world), season).case_id for _ in range(2)]
    assert world.service.screen_many(ids) == dict.fromkeys(ids, "screened")
    assert {status(world, c) for c in ids} == {"in_review"}


def test_a_case_that_fails_is_reported_and_does_not_hold_back_the_batch(
    flow_screening: World,
) -> None:
    world = flow_screening
    season = world.campaign("tet", code("TET-BATCH-F"))
    good = [tet(world, person(world), season).case_id for _ in range(2)]
    out = world.service.screen_many([good[0], "no-such-case", good[1]])
    assert out[good[0]] == out[good[1]] == "screened"
    assert out["no-such-case"].startswith("refused:")
    assert {status(world, c) for c in good} == {"in_review"}
