"""The outbox relay without Prefect: order per case, effects once, retries, dead letters,
leases, and two relays side by side on PostgreSQL (FOR UPDATE SKIP LOCKED)."""

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select

from domain.adapters.repository import OUTBOX
from domain.service.notifications import HANDLED
from domain.service.relay import (
    CONSUMED,
    Consumed,
    OutboxEvent,
    Relay,
    build_relay,
    dead_events,
    outbox_counts,
    retry_dead,
)
from tests.flows.support import (
    Recorder,
    consumed_count,
    give_addresses,
    notification_rows,
    outbox_rows,
    reset_outbox,
)
from tests.support import World


def relay_for(world: World, *extra: Recorder, max_attempts: int = 8) -> Relay:
    settings = world.app.settings.model_copy(update={"relay_max_attempts": max_attempts})
    return build_relay(world.service, settings, extra=extra)


def busy_day(world: World) -> list[str]:
    """Three housing cases, decided at different paces: a few events each, interleaved."""
    cases = [world.submit("housing", "repair", world.member()).case_id for _ in range(3)]
    world.decide(cases[0], "chair_a")
    world.decide(cases[2], "chair_a")
    world.decide(cases[0], "upper_tp")
    return cases


class TestEveryEventOnceInCaseOrder:
    def test_events_produced_while_no_relay_ran_are_each_handled_once_in_case_order(
        self, world: World
    ) -> None:
        give_addresses(world)
        busy_day(world)
        produced = outbox_rows(world)
        assert produced
        assert all(r["status"] == "pending" for r in produced)
        recorder = Recorder()
        result = relay_for(world, recorder).drain()
        assert result.processed == len(produced)
        assert result.retried == result.dead == 0
        assert sorted(e.id for e in recorder.handled) == sorted(r["id"] for r in produced)
        by_case: dict[str, list[int]] = {}
        for e in recorder.handled:
            by_case.setdefault(e.case_id or "", []).append(e.seq)
        assert all(seqs == sorted(seqs) for seqs in by_case.values())
        assert {r["status"] for r in outbox_rows(world)} == {"processed"}
        assert consumed_count(world, "notify") == sum(r["type"] in HANDLED for r in produced)
        assert consumed_count(world, "screening") == 3

    def test_a_second_run_handles_nothing_and_a_lost_ack_applies_no_effect_twice(
        self, world: World
    ) -> None:
        give_addresses(world)
        busy_day(world)
        relay_for(world).drain()
        mails = len(notification_rows(world))
        assert mails > 0
        assert relay_for(world).drain().claimed == 0
        reset_outbox(world)  # every event delivered again, as after a crash before the ack
        again = relay_for(world).drain()
        assert again.processed == len(outbox_rows(world))
        assert len(notification_rows(world)) == mails

    def test_events_without_a_case_are_relayed_too(self, world: World) -> None:
        world.campaign("disaster", "FLOOD-REL", affected_communes=["TP"])
        caseless = [r["id"] for r in outbox_rows(world) if r["case_id"] is None]
        assert caseless
        recorder = Recorder()
        relay_for(world, recorder).drain()
        assert [e.id for e in recorder.handled] == caseless
        assert outbox_counts(world.app.engine) == {"processed": len(caseless)}


@dataclass
class LateRival:
    """A consumer after `notify` that records, while the batch runs, that another relay has
    already notified `event_id` (as one whose lease on it expired and came back would)."""

    engine: Engine
    clock: Callable[[], datetime]
    event_id: str
    name: str = "late-rival"

    def wants(self, event: OutboxEvent) -> bool:
        return event.id == self.event_id

    def handle(self, event: OutboxEvent) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(CONSUMED).values(consumer="notify", event_id=event.id, at=self.clock())
            )


@dataclass
class RefusedRecord:
    """A batch consumer whose record of `event_id` the database refuses (no consumer name)."""

    event_id: str
    name: str = "refused"
    records: list[Consumed] = field(default_factory=list)

    def wants(self, event: OutboxEvent) -> bool:
        return True

    def begin_batch(self, events: Sequence[OutboxEvent]) -> None:
        self.records = []

    def end_batch(self) -> list[Consumed]:
        return self.records

    def handle(self, event: OutboxEvent) -> None:
        name: str = None if event.id == self.event_id else self.name  # type: ignore[assignment]
        self.records.append(Consumed(name, event.id, event.seq, event.occurred_at))


class TestBatchWrites:
    """A batch's records and acks are one transaction; when it fails, event by event."""

    def test_an_event_another_relay_recorded_meanwhile_is_skipped_and_the_rest_written(
        self, world: World
    ) -> None:
        give_addresses(world)
        busy_day(world)
        produced = outbox_rows(world)
        rival = next(r["id"] for r in produced if r["type"] == "task.opened")
        relay = relay_for(world)
        relay.consumers.append(LateRival(world.app.engine, world.clock, rival))
        result = relay.drain()
        assert (result.processed, result.retried, result.dead) == (len(produced), 0, 0)
        assert {r["status"] for r in outbox_rows(world)} == {"processed"}
        notified = {r["event_id"] for r in notification_rows(world)}
        assert rival not in notified  # the other relay's effect, not written twice
        assert notified  # the batch's other events were written after all
        assert consumed_count(world, "notify") == sum(r["type"] in HANDLED for r in produced)

    def test_an_event_whose_record_is_refused_is_retried_alone(self, world: World) -> None:
        give_addresses(world)
        busy_day(world)
        produced = outbox_rows(world)
        bad = [r for r in produced if r["type"] == "task.opened"][-1]  # notifies approvers
        relay = relay_for(world)
        relay.consumers.append(RefusedRecord(bad["id"]))
        result = relay.drain()
        assert (result.processed, result.retried, result.dead) == (len(produced) - 1, 1, 0)
        rows = {r["id"]: r for r in outbox_rows(world)}
        assert (rows[bad["id"]]["status"], rows[bad["id"]]["attempts"]) == ("pending", 1)
        assert rows[bad["id"]]["last_error"]
        assert {r["status"] for i, r in rows.items() if i != bad["id"]} == {"processed"}
        # Its notification was recorded once, event by event, and is not planned again.
        mails = len(notification_rows(world))
        assert bad["id"] in {r["event_id"] for r in notification_rows(world)}
        world.clock.advance(seconds=10)
        relay.consumers.pop()
        assert relay.drain().processed == 1
        assert len(notification_rows(world)) == mails


class TestRetriesAndDeadLetters:
    def test_a_failing_event_is_retried_with_back_off_and_its_case_waits_behind_it(
        self, world: World
    ) -> None:
        first = world.submit("housing", "repair", world.member()).case_id
        other = world.submit("housing", "repair", world.member()).case_id
        events = outbox_rows(world)
        failing = next(r for r in events if r["case_id"] == first)  # case.submitted
        recorder = Recorder(fail_on={failing["id"]})
        relay = relay_for(world, recorder, max_attempts=3)
        result = relay.drain()
        assert result.retried == 1
        assert result.dead == 0
        later = [r["id"] for r in events if r["case_id"] == first and r["seq"] > failing["seq"]]
        handled = {e.id for e in recorder.handled}
        assert later
        assert not handled & set(later)
        assert {r["id"] for r in events if r["case_id"] == other} <= handled
        row = next(r for r in outbox_rows(world) if r["id"] == failing["id"])
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert row["available_at"] == world.clock.now + timedelta(seconds=10)
        assert "failing on purpose" in row["last_error"]
        assert relay.drain().claimed == 0  # not before its back-off
        world.clock.advance(seconds=10)
        assert relay.drain().retried == 1
        row = next(r for r in outbox_rows(world) if r["id"] == failing["id"])
        assert row["available_at"] == world.clock.now + timedelta(seconds=20)

    def test_after_repeated_failure_the_event_is_dead_visible_and_retryable(
        self, world: World
    ) -> None:
        case = world.submit("housing", "repair", world.member()).case_id
        failing = outbox_rows(world)[0]  # case.submitted
        recorder = Recorder(fail_on={failing["id"]})
        relay = relay_for(world, recorder, max_attempts=3)
        outcomes = []
        for _ in range(3):
            outcomes.append(relay.drain())
            world.clock.advance(hours=1)
        assert [(r.retried, r.dead) for r in outcomes] == [(1, 0), (1, 0), (0, 1)]
        dead = dead_events(world.app.engine)
        assert [(d.id, d.case_id, d.attempts) for d in dead] == [(failing["id"], case, 3)]
        assert "failing on purpose" in (dead[0].last_error or "")
        # A dead event does not block the rest of its case (documented choice).
        assert {e.type for e in recorder.handled} >= {"task.opened"}
        assert relay.drain().claimed == 0
        recorder.fail_on.clear()
        assert retry_dead(world.app.engine, failing["id"], world.clock.now)
        assert not retry_dead(world.app.engine, failing["id"], world.clock.now)
        assert relay.drain().processed == 1
        assert dead_events(world.app.engine) == []
        assert failing["id"] in {e.id for e in recorder.handled}

    def test_retrying_an_unknown_or_live_event_is_refused(self, world: World) -> None:
        world.submit("housing", "repair", world.member())
        live = outbox_rows(world)[0]["id"]
        assert not retry_dead(world.app.engine, live, world.clock.now)
        assert not retry_dead(world.app.engine, "no-such-event", world.clock.now)


class TestLeases:
    def test_a_crashed_relays_lease_expires_and_another_relay_takes_over(
        self, world: World
    ) -> None:
        world.submit("housing", "repair", world.member())
        crashed = relay_for(world)
        claimed = crashed.claim()
        assert claimed
        other = relay_for(world)
        assert other.claim() == []  # leased
        world.clock.advance(minutes=5, seconds=1)
        again = other.claim()
        assert [e.id for e in again] == [e.id for e in claimed]
        assert other.process(again).processed == len(claimed)
        # The crashed relay wakes up: its late ack changes nothing it no longer holds.
        crashed.process(claimed)
        assert {r["claimed_by"] for r in outbox_rows(world)} == {other.worker_id}

    def test_an_event_that_keeps_killing_its_relay_ends_dead(self, world: World) -> None:
        world.submit("housing", "repair", world.member())
        relay = relay_for(world, max_attempts=2)
        for _ in range(2):
            assert relay.claim()
            world.clock.advance(minutes=6)
        assert relay.claim() == []
        assert {r["status"] for r in outbox_rows(world)} == {"dead"}
        assert all("lease expired" in (d.last_error or "") for d in dead_events(world.app.engine))


@pytest.mark.postgres
def test_two_relays_side_by_side_claim_disjoint_rows(world: World) -> None:
    if world.app.engine.dialect.name != "postgresql":
        pytest.skip("one relay at a time on SQLite")
    cases = [world.submit("housing", "repair", world.member()).case_id for _ in range(6)]
    # Another relay is in the middle of claiming the first case's events (rows locked).
    first_seqs = [r["seq"] for r in outbox_rows(world) if r["case_id"] == cases[0]]
    with world.app.engine.connect() as locker:
        tx = locker.begin()
        locker.execute(
            select(OUTBOX.c.seq).where(OUTBOX.c.seq.in_(first_seqs)).with_for_update()
        ).all()
        mine = relay_for(world).claim()  # returns at once: SKIP LOCKED, not a wait
        tx.rollback()
    assert mine
    assert not {e.seq for e in mine} & set(first_seqs)
    assert {e.case_id for e in mine} == set(cases[1:])

    # Two relays claiming at the same moment take disjoint rows, and a case's events are
    # handled in order even when the two relays share them.
    reset_outbox(world)
    recorder = Recorder()  # shared: it sees the handling order across both relays
    relays = [relay_for(world, recorder) for _ in range(2)]
    for r in relays:
        r.batch_size = 4
    barrier = threading.Barrier(2)
    got: list[list[int]] = [[], []]

    def unfinished() -> bool:
        return any(r["status"] in ("pending", "claimed") for r in outbox_rows(world))

    def work(i: int) -> None:
        barrier.wait()
        # An empty claim does not mean the outbox is drained: a row this relay skipped because
        # the other one had it locked in its claim, while the other left it for its case's
        # earlier event, is still pending (both relays used to stop there: the flaky failure).
        # In production the next scheduled run takes it; here, claim again until all is done.
        idle = 0
        while idle < 2000:  # a bound, not a timing: a row stuck in retry fails the asserts
            events = relays[i].claim()
            if not events:
                if not unfinished():
                    return
                idle += 1
                time.sleep(0.005)  # let the other relay finish its batch
                continue
            got[i].extend(e.seq for e in events)
            relays[i].process(events)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(got[0]) & set(got[1])
    assert sorted(got[0] + got[1]) == [r["seq"] for r in outbox_rows(world)]
    assert {r["status"] for r in outbox_rows(world)} == {"processed"}
    for case_id in cases:
        seqs = [e.seq for e in recorder.handled if e.case_id == case_id]
        assert seqs, case_id
        assert seqs == sorted(seqs), case_id
