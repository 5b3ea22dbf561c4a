"""A member moves between grassroots unions: each union files for the days they belonged to it.

C3 checks membership of the filing union on the event date, so a transfer (or a return after
leaving) has to be recordable: the old union ends the membership, the new one records the join.
"""

import contextlib
import threading
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from domain.adapters.repository import AUDIT, MEMBERSHIP
from domain.errors import Conflict, InvalidRequest, NotFound, PermissionDenied, RuleViolation
from domain.roles import Role
from domain.service import admin
from domain.service.queries import verify_audit
from tests.integration.helpers_flow import counts, person, race, refused
from tests.support import World

CANCER = {"diagnosis_category": "cancer"}


def periods(world: World, member: str) -> list[tuple[str, date, date | None]]:
    with world.app.engine.connect() as conn:
        return [
            (r.unit_id, r.joined_on, r.left_on)
            for r in conn.execute(
                select(MEMBERSHIP.c.unit_id, MEMBERSHIP.c.joined_on, MEMBERSHIP.c.left_on)
                .where(MEMBERSHIP.c.member_id == member)
                .order_by(MEMBERSHIP.c.joined_on)
            )
        ]


def illness(world: World, member: str, *, days_ago: int, unit: str, by: str) -> Any:
    """Serious-illness support for an illness diagnosed `days_ago` days ago."""
    event = world.clock.today() - timedelta(days=days_ago)
    return world.submit(
        "illness",
        "serious_illness",
        member,
        event_date=event,
        form=CANCER,
        amount=5_000_000,
        unit=unit,
        by=by,
    )


def moved(world: World, *, days_ago: int = 20) -> str:
    """A member of CS-A since 2015 who moved to CS-B `days_ago` days ago."""
    member = person(world, "CS-A")
    last_day = world.clock.today() - timedelta(days=days_ago)
    world.admin.end_membership("test", member, last_day)
    joined = world.admin.add_membership(
        "test", **world.card(member), unit_id="CS-B", joined_on=last_day + timedelta(days=1)
    )
    assert joined == member
    return member


class TestATransfer:
    def test_each_union_files_for_the_days_the_member_belonged_to_it(self, world: World) -> None:
        member = moved(world, days_ago=20)
        today = world.clock.today()
        assert periods(world, member) == [
            ("CS-A", date(2015, 1, 1), today - timedelta(days=20)),
            ("CS-B", today - timedelta(days=19), None),
        ]
        # Taken ill after the move: the new union files, the old one no longer may.
        err = refused(
            world,
            RuleViolation,
            lambda: illness(world, member, days_ago=5, unit="CS-A", by="officer_a"),
        )
        assert (err.rule, err.code) == ("member_on_event_date", "not_member_of_filing_unit")
        assert illness(world, member, days_ago=5, unit="CS-B", by="officer_b").status == "in_review"

    def test_an_event_before_the_move_is_the_old_unions_to_file(self, world: World) -> None:
        member = moved(world, days_ago=20)
        err = refused(
            world,
            RuleViolation,
            lambda: illness(world, member, days_ago=30, unit="CS-B", by="officer_b"),
        )
        assert err.code == "not_member_of_filing_unit"
        assert illness(world, member, days_ago=30, unit="CS-A", by="officer_a").status == (
            "in_review"
        )

    def test_the_join_is_audited_without_the_card(self, world: World) -> None:
        member = moved(world)
        with world.app.engine.connect() as conn:
            entry = conn.execute(
                select(AUDIT.c.action, AUDIT.c.org_unit_id, AUDIT.c.payload)
                .where(AUDIT.c.entity_id == member)
                .order_by(AUDIT.c.seq.desc())
                .limit(1)
            ).one()
        assert (entry.action, entry.org_unit_id) == ("member.joined", "CS-B")
        assert world.card(member)["cccd"] not in entry.payload
        assert verify_audit(world.app.engine).ok

    def test_someone_who_left_can_return_to_the_same_union(self, world: World) -> None:
        member = person(world, "CS-A")
        last_day = world.clock.today() - timedelta(days=400)
        world.admin.end_membership("test", member, last_day)
        back = world.clock.today() - timedelta(days=10)
        world.admin.add_membership("test", **world.card(member), unit_id="CS-A", joined_on=back)
        assert [p[0] for p in periods(world, member)] == ["CS-A", "CS-A"]
        # Not a member on a day of the gap.
        err = refused(
            world,
            RuleViolation,
            lambda: illness(world, member, days_ago=30, unit="CS-A", by="officer_a"),
        )
        assert err.code == "not_member_on_event_date"


class TestRefusals:
    """Each refusal writes nothing: no membership, no audit entry."""

    def test_a_membership_still_open_elsewhere_must_end_first(self, world: World) -> None:
        member = person(world, "CS-A")
        before = counts(world), periods(world, member)
        with pytest.raises(Conflict) as err:
            world.admin.add_membership(
                "test", **world.card(member), unit_id="CS-B", joined_on=world.clock.today()
            )
        assert err.value.message_key == "membership_open"
        assert (counts(world), periods(world, member)) == before

    def test_the_new_membership_starts_after_the_last_one_ended(self, world: World) -> None:
        member = person(world, "CS-A")
        last_day = world.clock.today() - timedelta(days=20)
        world.admin.end_membership("test", member, last_day)
        before = periods(world, member)
        for joined in (last_day, last_day - timedelta(days=100)):
            with pytest.raises(InvalidRequest) as err:
                world.admin.add_membership(
                    "test", **world.card(member), unit_id="CS-B", joined_on=joined
                )
            assert err.value.field == "joined_on"
        assert periods(world, member) == before

    def test_a_card_that_matches_no_member_is_not_found(self, world: World) -> None:
        member = person(world, "CS-A")
        world.admin.end_membership("test", member, world.clock.today() - timedelta(days=20))
        real = world.card(member)
        for wrong in (
            {**real, "dob": real["dob"] + timedelta(days=1)},
            {**real, "cccd": real["cccd"][:-1] + str((int(real["cccd"][-1]) + 1) % 10)},
        ):
            with pytest.raises(NotFound) as err:
                world.admin.add_membership(
                    "test", **wrong, unit_id="CS-B", joined_on=world.clock.today()
                )
            assert real["cccd"] not in str(err.value.params)
            assert wrong["cccd"] not in str(err.value.params)

    def test_only_a_grassroots_union_takes_members(self, world: World) -> None:
        member = person(world, "CS-A")
        world.admin.end_membership("test", member, world.clock.today() - timedelta(days=20))
        with pytest.raises(InvalidRequest) as err:
            world.admin.add_membership(
                "test", **world.card(member), unit_id="TP", joined_on=world.clock.today()
            )
        assert err.value.field == "unit_id"

    def test_an_admin_records_joins_only_in_their_own_unions(self, world: World) -> None:
        member = person(world, "CS-A")
        world.admin.end_membership("test", member, world.clock.today() - timedelta(days=20))
        world.account("admin_dk", Role.ADMIN, "DK")
        world.account("officer_only", Role.GRASSROOTS_OFFICER, "CS-B")
        scoped = world.admin.scoped()
        with pytest.raises(NotFound):
            scoped.add_membership(
                world.accounts["admin_dk"],
                **world.card(member),
                unit_id="CS-B",
                joined_on=world.clock.today(),
            )
        with pytest.raises(PermissionDenied):
            scoped.add_membership(
                world.accounts["officer_only"],
                **world.card(member),
                unit_id="CS-B",
                joined_on=world.clock.today(),
            )
        assert [p[0] for p in periods(world, member)] == ["CS-A"]


def test_two_unions_recording_the_same_person_at_once_give_one_membership(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = person(world, "CS-A")
    world.admin.end_membership("test", member, world.clock.today() - timedelta(days=20))
    joined = world.clock.today() - timedelta(days=5)
    # Each join waits, after its checks, for the other to get there too (at most 2 s): without
    # the member's lock both would pass the "no open membership" check and both insert.
    both_checked = threading.Barrier(2, timeout=2)
    insert = admin.insert_membership

    def after_the_other(*args: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait()
        insert(*args)

    monkeypatch.setattr(admin, "insert_membership", after_the_other)
    results = race(
        *(
            lambda unit=unit: world.admin.add_membership(
                "test", **world.card(member), unit_id=unit, joined_on=joined
            )
            for unit in ("CS-B", "CS-C")
        )
    )
    outcomes = sorted(kind for kind, _ in results)
    assert outcomes == ["err", "ok"], results
    error = next(value for kind, value in results if kind == "err")
    assert isinstance(error, Conflict)
    assert error.message_key == "membership_open"
    assert [p[2] for p in periods(world, member)].count(None) == 1
