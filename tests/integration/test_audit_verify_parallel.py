"""Verifying the audit chain in segments at once (one connection and thread each) must give the
verdict of one pass in chain order: the same entry, the same problem, the same count checked.

Every test compares the split verification with the single pass on the same tampered chain, at
every position (so every seam between segments is crossed), and also pins the expected entry,
so a change that broke both the same way would still fail here.
"""

import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text, update

from domain.adapters.repository import AUDIT, audit_from_row
from domain.adapters.unit_of_work import UnitOfWork
from domain.audit import VerifyResult, seal
from domain.model import AuditIntent
from domain.service import queries
from domain.service.queries import checkpoint, verify_against_checkpoint, verify_audit
from tests.support import Database, World

SEGMENTS = 4
NAME = "Nguyễn Thị Hoà"  # NFC; its NFD form is another byte string for the same name


@dataclass
class Chain:
    engine: Engine  # the application's engine: what verifies
    db: Database  # the raw database: what tampers
    length: int


def _intent(i: int) -> AuditIntent:
    return AuditIntent(
        action="case.submitted",
        entity_type="case",
        entity_id=f"case-{i}",
        actor_id=f"acc-{NAME}-{i}",
        actor_role="grassroots_officer",
        org_unit_id="CS-A",
        policy="housing",
        policy_version=1,
        payload={"note": NAME, "amount": 1_000_000 * i},
    )


@pytest.fixture
def chain(world: World, db: Database) -> Iterator[Chain]:
    """≈ 30 entries, and the append-only protection lifted so that a test can play the DBA."""
    at = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    for batch in range(3):
        with UnitOfWork(world.app.engine) as uow:
            uow.record([_intent(batch * 10 + i) for i in range(10)])
            uow.commit(at)
    with db.engine.begin() as conn:
        if db.kind == "postgres":
            conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_entry_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_entry_no_delete")
    length = verify_audit(world.app.engine, segments=1).checked
    yield Chain(world.app.engine, db, length)
    if db.kind == "postgres":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_no_change")


def _split(engine: Engine) -> VerifyResult:
    return verify_audit(engine, segments=SEGMENTS, min_segment_entries=1)


def _single(engine: Engine) -> VerifyResult:
    return verify_audit(engine, segments=1)


def _same_verdict(chain: Chain) -> VerifyResult:
    single = _single(chain.engine)
    assert _split(chain.engine) == single
    return single


def _row(chain: Chain, seq: int) -> dict[str, Any]:
    with chain.db.engine.connect() as conn:
        return dict(conn.execute(select(AUDIT).where(AUDIT.c.seq == seq)).mappings().one())


def _set(chain: Chain, seq: int, **values: Any) -> None:
    with chain.db.engine.begin() as conn:
        conn.execute(update(AUDIT).where(AUDIT.c.seq == seq).values(**values))


def _delete(chain: Chain, seq: int) -> None:
    with chain.db.engine.begin() as conn:
        conn.execute(AUDIT.delete().where(AUDIT.c.seq == seq))


def _put_back(chain: Chain, row: dict[str, Any]) -> None:
    with chain.db.engine.begin() as conn:
        conn.execute(insert(AUDIT), [row])


def test_the_chain_is_really_split_into_segments(chain: Chain) -> None:
    plan = queries._plan_segments(chain.engine, SEGMENTS, 1)
    assert len(plan) == SEGMENTS
    assert plan[0].after is None  # nothing before the first segment
    assert plan[-1].upto is None  # nor after the last
    assert [s.upto for s in plan[:-1]] == [s.after for s in plan[1:]]  # and nothing twice
    assert queries._plan_segments(chain.engine, SEGMENTS, chain.length) == [queries._WHOLE_CHAIN]


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[queries._Segment]:
    """Every segment the verification reads, in the order it reads them."""
    seen: list[queries._Segment] = []
    verify_segment = queries._verify_segment

    def counting(
        engine: Engine, segment: queries._Segment, recheck: Any, stop: Any = None
    ) -> VerifyResult:
        seen.append(segment)
        return verify_segment(engine, segment, recheck, stop)

    monkeypatch.setattr(queries, "_verify_segment", counting)
    return seen


def test_an_honest_chain_verifies_in_segments_and_counts_every_entry(
    chain: Chain, verified: list[queries._Segment]
) -> None:
    result = _same_verdict(chain)
    assert result.ok
    assert result.checked == chain.length == result.head_seq
    # One pass for the single verification and one per segment: the seams all matched, so
    # nothing was read a second time in chain order.
    assert len(verified) == 1 + SEGMENTS


def test_an_altered_entry_anywhere_is_the_one_named(chain: Chain) -> None:
    for seq in range(1, chain.length + 1):
        before = _row(chain, seq)
        _set(chain, seq, entity_id="case-forged")
        result = _same_verdict(chain)
        assert (result.ok, result.broken_seq, result.checked) == (False, seq, seq - 1)
        assert "altered" in (result.problem or "")
        _set(chain, seq, entity_id=before["entity_id"])
    assert _same_verdict(chain).ok


def test_a_removed_entry_anywhere_is_found_where_the_gap_is(chain: Chain) -> None:
    for seq in range(1, chain.length + 1):
        row = _row(chain, seq)
        _delete(chain, seq)
        result = _same_verdict(chain)
        assert not result.ok
        if seq < chain.length:
            assert (result.broken_seq, result.checked) == (seq + 1, seq - 1)
            assert "gap" in (result.problem or "")
        else:  # the newest entry: only the recorded head shows it
            assert (result.broken_seq, result.checked) == (seq, seq - 1)
            assert "removed" in (result.problem or "")
        _put_back(chain, row)
    assert _same_verdict(chain).ok


def test_several_removed_entries_at_a_seam_are_one_gap(chain: Chain) -> None:
    cut = queries._plan_segments(chain.engine, SEGMENTS, 1)[1].after
    assert cut is not None
    rows = [_row(chain, seq) for seq in (cut - 1, cut, cut + 1)]
    for row in rows:
        _delete(chain, row["seq"])
    result = _same_verdict(chain)
    assert (result.broken_seq, result.checked) == (cut + 2, cut - 2)
    assert "expected" in (result.problem or "")


def test_a_broken_link_anywhere_is_the_one_named(chain: Chain) -> None:
    for seq in range(1, chain.length + 1):
        before = _row(chain, seq)
        _set(chain, seq, prev_hash="f" * 64)
        result = _same_verdict(chain)
        assert (result.ok, result.broken_seq, result.checked) == (False, seq, seq - 1)
        assert "previous-hash link" in (result.problem or "")
        _set(chain, seq, prev_hash=before["prev_hash"])


def test_of_two_altered_entries_the_lower_one_is_named(chain: Chain) -> None:
    low, high = 2, chain.length - 1  # in the first and in the last segment
    _set(chain, high, entity_id="case-forged")
    _set(chain, low, entity_id="case-forged")
    assert _same_verdict(chain).broken_seq == low


def test_once_a_segment_fails_the_later_ones_are_told_to_stop_reading(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = queries._plan_segments(chain.engine, SEGMENTS, 1)
    second = plan[1].start_seq  # the first entry of the second segment
    _set(chain, second, entity_id="case-forged")
    stops: dict[int, threading.Event] = {}
    verify_segment = queries._verify_segment

    def recording(
        engine: Engine, segment: queries._Segment, recheck: Any, stop: Any = None
    ) -> VerifyResult:
        stops[segment.start_seq] = stop
        return verify_segment(engine, segment, recheck, stop)

    monkeypatch.setattr(queries, "_verify_segment", recording)
    assert _split(chain.engine).broken_seq == second
    assert [stops[s.start_seq].is_set() for s in plan] == [False, False, True, True]
    with chain.engine.connect() as conn, conn.begin():
        assert list(queries._stored_rows(conn, stop=stops[plan[-1].start_seq])) == []


def test_an_entry_stored_in_another_unicode_form_passes_the_recheck_in_a_segment(
    chain: Chain,
) -> None:
    seq = chain.length - 1  # in the last segment
    nfc = _row(chain, seq)["actor_id"]
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    _set(chain, seq, actor_id=nfd)  # the template no longer reproduces it; the canonical path does
    assert _same_verdict(chain).ok


def test_a_rewritten_chain_verified_in_segments_is_caught_by_the_checkpoint(
    chain: Chain, monkeypatch: pytest.MonkeyPatch, verified: list[queries._Segment]
) -> None:
    monkeypatch.setattr(queries, "VERIFY_SEGMENTS", {"sqlite": SEGMENTS, "postgresql": SEGMENTS})
    monkeypatch.setattr(queries, "VERIFY_SEGMENT_MIN", 1)
    assert len(queries._plan_segments(chain.engine, SEGMENTS, 1)) == SEGMENTS
    cp = checkpoint(chain.engine, datetime.now(UTC))
    assert verify_against_checkpoint(chain.engine, cp).ok
    target = chain.length // 2
    prev = _row(chain, target - 1)["entry_hash"]
    for seq in range(target, chain.length + 1):  # edit one entry, re-seal it and all after it
        e = audit_from_row(_row(chain, seq))
        new = seal(
            seq=seq,
            prev_hash=prev,
            at=e.at,
            actor_id=e.actor_id,
            actor_role=e.actor_role,
            org_unit_id=e.org_unit_id,
            action=e.action,
            entity_type=e.entity_type,
            entity_id=e.entity_id,
            policy=e.policy,
            policy_version=e.policy_version,
            payload={"tampered": True} if seq == target else e.payload,
        )
        _set(
            chain,
            seq,
            payload=new.payload_text,
            prev_hash=new.prev_hash,
            entry_hash=new.entry_hash,
        )
        prev = new.entry_hash
    with chain.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_head SET entry_hash = :h"), {"h": prev})
    assert verify_audit(chain.engine).ok  # self-consistent after the rewrite...
    verified.clear()
    result = verify_against_checkpoint(chain.engine, cp)
    assert len(verified) == SEGMENTS  # the defaults above did split the verification
    assert (result.ok, result.broken_seq) == (False, cp.seq)
    assert "rewritten" in (result.problem or "")
