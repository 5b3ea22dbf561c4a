"""A list of cases is recorded (`case_list`) and announced once, when screening is done.

Whoever screens the list's cases — the submit command inline, the policy flows' `screen_many`
in batches, the relay's screening consumer one case at a time, or a withdrawal before
screening — the transaction after which none of them is left in screening records exactly
one `case_list.screened` event and one `batch.screened` audit entry; a redelivered batch,
and two transactions finishing the same list at once, announce nothing more.
"""

import threading
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from domain import events as ev
from domain.adapters.repository import CAMPAIGN, CASE_LIST, Repository
from domain.service import case_lists
from domain.service.commands import CaseItem, SubmitList
from domain.service.queries import case_status, verify_audit
from domain.service.relay import build_relay, dead_events, retry_dead
from domain.service.welfare import ListItemResult
from tests.integration.helpers_flow import (
    SharedWorld,
    audit_actions,
    code,
    doc,
    outbox,
    person,
    race,
    shared,  # noqa: F401  (class-scoped world fixture)
)
from tests.support import World

TODAY = date(2026, 3, 2)
SIGNED_LIST = doc("signed_list", "CS-A-danh-sach-tet-2026-digest")
CHAIRS_A = "grassroots_chair|grassroots|CS-A"


def item(member: str, subtype: str = "standard", **form: Any) -> CaseItem:
    return CaseItem(
        member_id=member,
        subtype=subtype,
        event_date=TODAY,
        form={"criterion": "low_income", **form},
        documents=[SIGNED_LIST],
    )


def submit_list(world: World, campaign: str, items: list[CaseItem]) -> list[ListItemResult]:
    return world.service.submit_list(
        world.accounts["officer_a"],
        SubmitList(policy="tet", unit_id="CS-A", campaign_id=campaign, items=items),
    )


def list_row(world: World, list_id: str) -> dict[str, Any]:
    with world.app.engine.connect() as conn:
        row = conn.execute(select(CASE_LIST).where(CASE_LIST.c.id == list_id)).mappings().one()
    return dict(row)


def digests(world: World, list_id: str) -> list[dict[str, Any]]:
    return [
        e["data"]
        for e in outbox(world, type_=ev.CASE_LIST_SCREENED)
        if e["data"].get(ev.LIST) == list_id
    ]


def completions(world: World, list_id: str) -> list[dict[str, Any]]:
    return [e for e in audit_actions(world, "batch.screened") if e["entity_id"] == list_id]


def list_of(world: World, results: list[ListItemResult]) -> str:
    case_id = next(r.case_id for r in results if r.case_id)
    found = case_status(world.app.engine, case_id)
    assert found is not None
    return str(found["batch_id"])


def set_quota(world: World, campaign: str, quota: int) -> None:
    """The campaign's quota for CS-A changed behind the list's back (between filing and
    screening), so screening rejects what no longer fits."""
    with world.app.engine.begin() as conn:
        params = conn.execute(select(CAMPAIGN.c.params).where(CAMPAIGN.c.id == campaign)).scalar()
        assert isinstance(params, dict)
        params = {**params, "quotas": {**params.get("quotas", {}), "CS-A": quota}}
        conn.execute(update(CAMPAIGN).where(CAMPAIGN.c.id == campaign).values(params=params))


def ids(results: list[ListItemResult]) -> list[str]:
    return [r.case_id for r in results if r.case_id]


class TestTheListIsRecordedAndAnnouncedOnce(SharedWorld):
    @pytest.fixture
    def flow(self, world: World) -> Iterator[World]:
        """Screening left to the policy flows (WELFARE_SCREENING=flow)."""
        world.service.screen_inline = False
        try:
            yield world
        finally:
            world.service.screen_inline = True

    def test_inline_screening_announces_the_list_in_the_submission_itself(
        self, world: World
    ) -> None:
        season = world.campaign("tet", code("TET-DIGEST-INLINE"))
        young = person(world, joined=TODAY - timedelta(days=100))
        fresh = [person(world) for _ in range(3)]
        results = submit_list(world, season, [*(item(m) for m in fresh), item(young)])
        assert [r.outcome for r in results] == ["accepted"] * 3 + ["refused"]
        list_id = list_of(world, results)

        row = list_row(world, list_id)
        assert (row["policy"], row["unit_id"], row["campaign_id"]) == ("tet", "CS-A", season)
        assert (row["items"], row["accepted"]) == (4, 3)
        assert row["submitted_by"] == world.accounts["officer_a"]
        assert row["submitted_at"] == row["screened_at"] == world.clock.now
        assert row["tally"] == {
            "statuses": {"in_review": 3},
            "tasks": {CHAIRS_A: 3},
            "rejected": [],
        }
        [data] = digests(world, list_id)
        assert data == {
            ev.LIST: list_id,
            "policy": "tet",
            "policy_version": 1,
            "unit": "CS-A",
            "campaign": season,
            "submitted_by": world.accounts["officer_a"],
            "items": 4,
            "accepted": 3,
            "statuses": {"in_review": 3},
            "tasks": [
                {"role": "grassroots_chair", "level": "grassroots", "unit": "CS-A", "count": 3}
            ],
            "rejected": [],
        }
        [entry] = completions(world, list_id)
        assert (entry["entity_type"], entry["actor_id"], entry["org_unit_id"]) == (
            "batch",
            "system",
            "CS-A",
        )
        assert '"statuses":{"in_review":3}' in entry["payload"]
        # Every event of the cases' submission and screening names the list; the notifier
        # leaves their news to the digest.
        for case_id in ids(results):
            events = outbox(world, case_id=case_id)
            assert {e["type"] for e in events} == {
                "case.submitted",
                "case.screened",
                "task.opened",
            }
            assert all(e["data"][ev.LIST] == list_id for e in events)
        assert verify_audit(world.app.engine).ok

    def test_a_list_with_no_item_accepted_is_recorded_but_announces_nothing(
        self, world: World
    ) -> None:
        season = world.campaign("tet", code("TET-DIGEST-NONE"))
        young = [person(world, joined=TODAY - timedelta(days=30)) for _ in range(2)]
        before = len(outbox(world, type_=ev.CASE_LIST_SCREENED))
        results = submit_list(world, season, [item(m) for m in young])
        assert [r.outcome for r in results] == ["refused"] * 2
        [entry] = audit_actions(world)[-1:]
        assert entry["action"] == "batch.submitted"
        row = list_row(world, entry["entity_id"])
        assert (row["items"], row["accepted"]) == (2, 0)
        assert row["screened_at"] == world.clock.now  # nothing left to screen
        assert len(outbox(world, type_=ev.CASE_LIST_SCREENED)) == before

    def test_a_single_case_is_no_list(self, world: World) -> None:
        season = world.campaign("tet", code("TET-DIGEST-ONE"))
        sub = world.submit(
            "tet", "standard", person(world), campaign_id=season, form={"criterion": "low_income"}
        )
        events = outbox(world, case_id=sub.case_id)
        assert events
        assert not any(ev.LIST in e["data"] for e in events)
        found = case_status(world.app.engine, sub.case_id)
        assert found is not None
        assert found["batch_id"] is None

    def test_flow_screening_announces_after_the_last_batch_and_a_redelivered_batch_adds_nothing(
        self, flow: World
    ) -> None:
        world = flow
        season = world.campaign("tet", code("TET-DIGEST-FLOW"))
        results = submit_list(world, season, [item(person(world)) for _ in range(5)])
        cases = ids(results)
        list_id = list_of(world, results)
        row = list_row(world, list_id)
        assert row["screened_at"] is None
        assert row["tally"] == {"statuses": {}, "tasks": {}, "rejected": []}
        assert digests(world, list_id) == []
        assert all(ev.LIST in e["data"] for e in outbox(world, type_="case.submitted")[-5:])

        assert world.service.screen_many(cases[:3]) == dict.fromkeys(cases[:3], "screened")
        assert digests(world, list_id) == []
        assert list_row(world, list_id)["tally"]["statuses"] == {"in_review": 3}
        world.clock.advance(seconds=5)
        assert world.service.screen_many(cases[3:]) == dict.fromkeys(cases[3:], "screened")
        [data] = digests(world, list_id)
        assert data["statuses"] == {"in_review": 5}
        assert data["tasks"] == [
            {"role": "grassroots_chair", "level": "grassroots", "unit": "CS-A", "count": 5}
        ]
        assert list_row(world, list_id)["screened_at"] == world.clock.now
        # The policy flow's batch delivered again: its cases are skipped, nothing is announced.
        assert world.service.screen_many(cases) == dict.fromkeys(cases, "skipped")
        assert world.service.screen_many(cases[3:]) == dict.fromkeys(cases[3:], "skipped")
        assert len(digests(world, list_id)) == 1
        assert len(completions(world, list_id)) == 1
        assert verify_audit(world.app.engine).ok

    def test_cases_rejected_at_screening_are_counted_and_the_first_ones_named(
        self, flow: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world = flow
        monkeypatch.setattr(case_lists, "REJECTED_SHOWN", 1)
        season = world.campaign("tet", code("TET-DIGEST-REJ"), quotas={"CS-A": 4})
        young = person(world, joined=TODAY - timedelta(days=100))
        results = submit_list(
            world, season, [*(item(person(world)) for _ in range(4)), item(young)]
        )
        assert [r.outcome for r in results] == ["accepted"] * 4 + ["refused"]
        cases = ids(results)
        list_id = list_of(world, results)
        # The quota shrinks to 2 before screening: the batch's first two cases no longer fit.
        set_quota(world, season, 2)
        assert world.service.screen_many(cases) == dict.fromkeys(cases, "screened")
        statuses = {c: case_status(world.app.engine, c)["status"] for c in cases}  # type: ignore[index]
        rejected = [c for c in cases if statuses[c] == "rejected"]
        assert len(rejected) == 2
        [data] = digests(world, list_id)
        assert (data["items"], data["accepted"]) == (5, 4)
        assert data["statuses"] == {"in_review": 2, "rejected": 2}
        assert data["tasks"] == [
            {"role": "grassroots_chair", "level": "grassroots", "unit": "CS-A", "count": 2}
        ]
        assert data["rejected"] == rejected[:1]  # capped
        rejections = [e for e in outbox(world, type_="case.rejected") if e["case_id"] in cases]
        assert len(rejections) == 2
        assert all(e["data"][ev.LIST] == list_id for e in rejections)

    def test_the_relays_screening_one_case_at_a_time_announces_once(self, flow: World) -> None:
        world = flow
        season = world.campaign("tet", code("TET-DIGEST-RELAY"))
        results = submit_list(world, season, [item(person(world)) for _ in range(3)])
        list_id = list_of(world, results)
        relay = build_relay(world.service, world.app.settings)
        relay.drain()  # the screening consumer: `WelfareService.screen`, case by case
        assert {case_status(world.app.engine, c)["status"] for c in ids(results)} == {  # type: ignore[index]
            "in_review"
        }
        [data] = digests(world, list_id)
        assert data["statuses"] == {"in_review": 3}
        assert relay.drain().claimed == 0
        assert len(digests(world, list_id)) == 1

    def test_a_case_whose_screening_keeps_failing_holds_the_list_back_until_retried(
        self, flow: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The known gap: nothing announces a list while one of its cases cannot be screened.
        Its `case.submitted` goes dead after the relay's attempts; an administrator's retry
        (`welfare outbox retry`), once the cause is fixed, screens it and announces the list."""
        world = flow
        season = world.campaign("tet", code("TET-DIGEST-STUCK"))
        results = submit_list(world, season, [item(person(world)) for _ in range(3)])
        cases = ids(results)
        list_id = list_of(world, results)
        screen = world.service.screen

        def failing(case_id: str) -> None:
            if case_id == cases[1]:
                raise RuntimeError("screening fails for this case")  # a broken definition, say
            screen(case_id)

        monkeypatch.setattr(world.service, "screen", failing)
        settings = world.app.settings.model_copy(update={"relay_max_attempts": 1})
        build_relay(world.service, settings).drain()
        statuses = [case_status(world.app.engine, c)["status"] for c in cases]  # type: ignore[index]
        assert statuses == ["in_review", "screening", "in_review"]
        assert digests(world, list_id) == []  # held back: neither mail goes out
        [dead] = [d for d in dead_events(world.app.engine) if d.case_id == cases[1]]
        assert dead.type == "case.submitted"

        monkeypatch.setattr(world.service, "screen", screen)
        assert retry_dead(world.app.engine, dead.id, world.clock.now)
        build_relay(world.service, world.app.settings).drain()
        [data] = digests(world, list_id)
        assert data["statuses"] == {"in_review": 3}

    def test_withdrawing_the_last_case_left_in_screening_completes_the_list(
        self, flow: World
    ) -> None:
        world = flow
        season = world.campaign("tet", code("TET-DIGEST-WD"))
        results = submit_list(world, season, [item(person(world)) for _ in range(3)])
        cases = ids(results)
        list_id = list_of(world, results)
        world.service.screen_many(cases[:2])
        assert digests(world, list_id) == []
        world.service.withdraw(world.accounts["officer_a"], cases[2], "nhầm danh sách")
        [data] = digests(world, list_id)
        assert data["statuses"] == {"in_review": 2, "withdrawn": 1}
        assert data["tasks"][0]["count"] == 2
        # Withdrawn after screening: the list is long complete, nothing more is announced.
        world.service.withdraw(world.accounts["officer_a"], cases[0], "nhầm danh sách")
        assert len(digests(world, list_id)) == 1

    def test_two_screenings_finishing_a_list_at_once_announce_it_once(self, flow: World) -> None:
        world = flow
        season = world.campaign("tet", code("TET-DIGEST-RACE"))
        results = submit_list(world, season, [item(person(world)) for _ in range(6)])
        cases = ids(results)
        list_id = list_of(world, results)
        outcomes = race(
            lambda: world.service.screen_many(cases[:3]),
            lambda: world.service.screen_many(cases[3:]),
        )
        assert [kind for kind, _ in outcomes] == ["ok", "ok"], outcomes
        assert len(digests(world, list_id)) == 1
        assert list_row(world, list_id)["tally"]["statuses"] == {"in_review": 6}


def test_on_postgresql_the_second_of_two_concurrent_screenings_sees_the_first_and_announces(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both transactions have screened their half of the list (uncommitted) when they reach
    the list's lock together. The first to hold it still sees the other half in screening and
    announces nothing; the second waits, then — READ COMMITTED, its read after the lock — sees
    the first one's cases screened and announces the list. Read before the lock (or without
    it), both would see the other half waiting and the list would never be announced; read in
    one snapshot, both could announce it."""
    if world.app.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the two cannot overlap")
    world.service.screen_inline = False
    season = world.campaign("tet", code("TET-DIGEST-PG"))
    results = submit_list(world, season, [item(person(world)) for _ in range(6)])
    cases = ids(results)
    list_id = list_of(world, results)

    at_lock = threading.Barrier(2, timeout=20)
    lock = Repository.lock_case_lists

    def meet_then_lock(self: Repository, list_ids: Any) -> Any:
        at_lock.wait()  # both have screened and saved their cases, neither has committed
        return lock(self, list_ids)

    monkeypatch.setattr(Repository, "lock_case_lists", meet_then_lock)
    outcomes: list[Any] = [None, None]

    def screen(i: int, half: list[str]) -> None:
        try:
            outcomes[i] = world.service.screen_many(half)
        except Exception as exc:  # reported below
            outcomes[i] = exc

    threads = [
        threading.Thread(target=screen, args=(0, cases[:3])),
        threading.Thread(target=screen, args=(1, cases[3:])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes == [dict.fromkeys(cases[:3], "screened"), dict.fromkeys(cases[3:], "screened")]
    [data] = digests(world, list_id)
    assert data["statuses"] == {"in_review": 6}  # the second one's tally includes the first's
    assert data["tasks"][0]["count"] == 6
    assert len(completions(world, list_id)) == 1
    assert list_row(world, list_id)["tally"]["statuses"] == {"in_review": 6}
    assert verify_audit(world.app.engine).ok
