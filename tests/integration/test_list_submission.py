"""A grassroots union files its Tết list in one go: each member is screened on their own.

Accepted and flagged members become cases with open tasks; refused members leave nothing but
their result line; the list itself gets one `batch.submitted` audit entry.
"""

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.adapters.repository import CASE, DOCUMENT, OUTBOX
from domain.adapters.unit_of_work import UnitOfWork
from domain.errors import InvalidRequest, PermissionDenied
from domain.events import Event
from domain.service import welfare
from domain.service.commands import CaseItem, SubmitList
from domain.service.queries import open_tasks, verify_audit
from domain.service.welfare import ListItemResult
from tests.integration.helpers_flow import (
    SharedWorld,
    audit_actions,
    code,
    counts,
    doc,
    outbox,
    person,
    shared,  # noqa: F401  (class-scoped world fixture)
)
from tests.support import World

TODAY = date(2026, 3, 2)
SIGNED_LIST = doc("signed_list", "CS-A-danh-sach-tet-2026")


def item(member: str, subtype: str = "standard", **form: Any) -> CaseItem:
    return CaseItem(
        member_id=member,
        subtype=subtype,
        event_date=TODAY,
        form={"criterion": "low_income", **form},
        documents=[SIGNED_LIST],
    )


def submit_list(
    world: World, campaign: str, items: list[CaseItem], *, unit: str = "CS-A", by: str = "officer_a"
) -> list[ListItemResult]:
    return world.service.submit_list(
        world.accounts[by],
        SubmitList(policy="tet", unit_id=unit, campaign_id=campaign, items=items),
    )


def cases_in(world: World, campaign: str) -> list[dict[str, Any]]:
    with world.app.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(select(CASE).where(CASE.c.campaign_id == campaign)).mappings()
        ]


class TestATetListOfThirtyMembers(SharedWorld):
    """One world for the class: each test files its own list in its own campaign."""

    def test_each_member_gets_their_own_outcome_and_only_accepted_ones_leave_a_trace(
        self, world: World
    ) -> None:
        season = world.campaign("tet", code("TET-LIST-2026"), quotas={"CS-A": 24})
        earlier = person(world)
        first = world.submit(
            "tet", "standard", earlier, campaign_id=season, form={"criterion": "serious_illness"}
        )
        fresh = [person(world) for _ in range(23)]
        too_new = person(world, joined=TODAY - timedelta(days=100))
        gone = person(world, joined=date(2012, 1, 1))
        world.admin.end_membership("test", gone, TODAY - timedelta(days=40))
        over_quota = person(world)
        items = [
            *(item(m) for m in fresh[:17]),  # 0–16 accepted
            *(item(m, disaster_area=True) for m in fresh[17:20]),  # 17–19 accepted, 3m each
            item(fresh[20], "special_hardship", disaster_area=True),  # 20 flagged: 4m > 3.3m cap
            item(fresh[21], "special_hardship", disaster_area=True),  # 21 flagged
            item(earlier),  # 22 already filed this season
            item(fresh[0], "special_hardship"),  # 23 twice in this very list
            item(too_new),  # 24 tenure too short
            item(gone),  # 25 no longer a member
            CaseItem(
                member_id=fresh[22],
                subtype="standard",
                event_date=TODAY,
                form={},
                documents=[SIGNED_LIST],
            ),  # 26 no criterion
            item(fresh[22], "vip"),  # 27 unknown subtype
            item(fresh[22]),  # 28 accepted: 24th of the quota
            item(over_quota),  # 29 quota used up
        ]
        assert len(items) == 30
        audit_before = len(audit_actions(world))
        results = submit_list(world, season, items)

        assert [r.index for r in results] == list(range(30))
        outcomes = [r.outcome for r in results]
        assert outcomes[:20] == ["accepted"] * 20
        assert outcomes[20:22] == ["flagged"] * 2
        assert [r.flags for r in results[20:22]] == [["C5"], ["C5"]]
        # The officer is told why: the soft check that flagged each item, with its reason.
        for r in results[20:22]:
            soft = [c for c in r.checks if c["outcome"] == "flagged"]
            assert {c["code"] for c in soft} == {"C5"}  # at intake and again in screening
            assert soft[0]["reason"]
        assert results[0].checks
        assert all(c["outcome"] == "passed" for c in results[0].checks)
        assert outcomes[22:28] == ["refused"] * 6
        assert outcomes[28:] == ["accepted", "refused"]
        refusals = {
            r.index: (r.rule, r.field_path, r.error) for r in results if r.outcome == "refused"
        }
        assert refusals == {
            22: ("unique_claim", None, "duplicate_claim"),
            23: ("unique_claim", None, "duplicate_claim"),
            24: ("min_tenure", None, "tenure_too_short"),
            25: ("member_on_event_date", None, "not_member_on_event_date"),
            26: (None, "form.criterion", "invalid_field"),
            27: (None, "subtype", "invalid_field"),
            29: ("unit_quota", None, "quota_exhausted"),
        }
        assert all(r.case_id is None for r in results if r.outcome == "refused")

        kept = [r for r in results if r.outcome != "refused"]
        assert len(kept) == 23
        by_id = {c["id"]: c for c in cases_in(world, season)}
        assert set(by_id) == {first.case_id, *(r.case_id for r in kept)}
        batch_ids = {by_id[r.case_id]["batch_id"] for r in kept}
        assert len(batch_ids) == 1
        assert None not in batch_ids
        assert by_id[results[17].case_id]["entitled_amount"] == 3_000_000
        for r in kept:
            assert r.case_id is not None
            tasks = open_tasks(world.app.engine, r.case_id)
            assert [(t["step"], t["org_unit_id"]) for t in tasks] == [("grassroots_review", "CS-A")]
            assert by_id[r.case_id]["member_id"] == r.member_id

        # Refused members have no case, document, claim key or event of their own.
        members_with_cases = {c["member_id"] for c in by_id.values()}
        assert not {too_new, gone, over_quota} & members_with_cases
        assert sum(c["member_id"] == earlier for c in by_id.values()) == 1
        assert sum(c["member_id"] == fresh[0] for c in by_id.values()) == 1
        with world.app.engine.connect() as conn:
            docs = (
                conn.execute(
                    select(DOCUMENT.c.case_id).where(DOCUMENT.c.sha256 == SIGNED_LIST.sha256)
                )
                .scalars()
                .all()
            )
        assert sorted(docs) == sorted(str(r.case_id) for r in kept)
        submitted_events = {e["case_id"] for e in outbox(world, type_="case.submitted")}
        assert submitted_events == set(by_id)

        new_audit = audit_actions(world)[audit_before:]
        batch = [e for e in new_audit if e["action"] == "batch.submitted"]
        assert len(batch) == 1
        assert batch[0]["entity_id"] == batch_ids.pop()
        assert '"accepted":23' in batch[0]["payload"]
        assert '"refused":7' in batch[0]["payload"]
        assert sum(e["action"] == "case.submitted" for e in new_audit) == 23
        assert verify_audit(world.app.engine).ok

    def test_a_list_refused_item_by_item_writes_no_case_only_the_list_entry(
        self, world: World
    ) -> None:
        season = world.campaign("tet", code("TET-LIST-EMPTY"))
        young = [person(world, joined=TODAY - timedelta(days=30)) for _ in range(3)]
        before = counts(world)
        results = submit_list(world, season, [item(m) for m in young])
        assert [(r.outcome, r.rule) for r in results] == [("refused", "min_tenure")] * 3
        after = counts(world)
        assert after["case"] == before["case"]
        assert after["outbox"] == before["outbox"]
        assert after["audit"] == before["audit"] + 1
        assert audit_actions(world)[-1]["action"] == "batch.submitted"
        assert verify_audit(world.app.engine).ok

    def test_a_member_of_another_union_on_the_list_is_refused_and_the_others_are_kept(
        self, world: World
    ) -> None:
        season = world.campaign("tet", code("TET-LIST-OTHER-UNION"))
        ours, theirs = person(world), person(world, "CS-B")
        results = submit_list(world, season, [item(ours), item(theirs)])
        assert [(r.outcome, r.rule, r.error) for r in results] == [
            ("accepted", None, None),
            ("refused", "member_on_event_date", "not_member_of_filing_unit"),
        ]
        assert [c["member_id"] for c in cases_in(world, season)] == [ours]
        # Their own union files them in the same campaign.
        results = submit_list(world, season, [item(theirs)], unit="CS-B", by="officer_b")
        assert [r.outcome for r in results] == ["accepted"]

    def test_a_list_filed_for_a_ward_union_instead_of_a_grassroots_union_is_refused_whole(
        self, world: World
    ) -> None:
        season = world.campaign("tet", code("TET-LIST-WARD"))
        members = [person(world) for _ in range(2)]
        before = counts(world)
        with pytest.raises(InvalidRequest) as info:
            submit_list(world, season, [item(m) for m in members], unit="TP", by="upper_tp")
        assert info.value.field == "unit_id"
        assert counts(world) == before

    def test_an_officer_of_another_union_has_the_whole_list_refused_and_nothing_written(
        self, world: World
    ) -> None:
        season = world.campaign("tet", code("TET-LIST-FOREIGN"))
        members = [person(world) for _ in range(2)]
        before = counts(world)
        with pytest.raises(PermissionDenied):
            submit_list(world, season, [item(m) for m in members], by="officer_c")
        assert cases_in(world, season) == []
        assert counts(world) == before  # not even the list's own audit entry


def test_outbox_rows_written_during_a_list_are_exactly_its_kept_cases_events(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list writes its outbox rows as it goes (every EVENTS_CHUNK events; here after every
    item): the rows are the kept cases' events, in item order, and a refused item has none."""
    monkeypatch.setattr(welfare, "EVENTS_CHUNK", 1)
    season = world.campaign("tet", code("TET-LIST-OUTBOX"))
    ok = [person(world) for _ in range(3)]
    too_new = person(world, joined=TODAY - timedelta(days=30))
    before = {e["seq"] for e in outbox(world)}
    results = submit_list(world, season, [item(ok[0]), item(too_new), item(ok[1]), item(ok[2])])
    assert [r.outcome for r in results] == ["accepted", "refused", "accepted", "accepted"]
    written = [e for e in outbox(world) if e["seq"] not in before]
    # Last, at commit: the list's own digest event (inline screening left nothing waiting).
    assert [e["type"] for e in written if e["case_id"] is None] == ["case_list.screened"]
    assert written[-1]["type"] == "case_list.screened"
    rows = written[:-1]
    kept = [r.case_id for r in results if r.case_id]
    # Each case's events together, the cases in the list's order; one case's are the same
    # kinds as a single submission's.
    assert list(dict.fromkeys(e["case_id"] for e in rows)) == kept
    kinds = [[e["type"] for e in rows if e["case_id"] == c] for c in kept]
    single = world.submit("tet", "standard", person(world), campaign_id=season,
                          form={"criterion": "low_income"})  # fmt: skip
    assert kinds == [[e["type"] for e in outbox(world, case_id=single.case_id)]] * 3
    assert all(e["status"] == "pending" for e in rows)


def test_outbox_rows_written_before_commit_roll_back_with_the_list(world: World) -> None:
    """What `write_events` inserted is part of the transaction: a list that fails after
    writing some of its events leaves none (refused items and failed lists leave no trace)."""
    now = world.service.clock()
    before = counts(world)["outbox"]
    written = -1

    def fail_after_writing_events() -> None:
        nonlocal written
        with UnitOfWork(world.app.engine) as uow:
            uow.record(events=[Event(type="case.submitted", occurred_at=now, data={"n": 1})])
            uow.write_events(now)
            written = uow.conn.execute(select(func.count()).select_from(OUTBOX)).scalar_one()
            raise RuntimeError("the list failed after its events were written")

    with pytest.raises(RuntimeError, match="after its events"):
        fail_after_writing_events()
    assert written == before + 1  # inserted in the transaction before it failed
    assert counts(world)["outbox"] == before
