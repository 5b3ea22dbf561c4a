"""Identifiers are canonical UUIDv7 text: time-ordered, random, never repeated."""

import time
import uuid

from domain.ids import new_id


def test_an_id_is_a_canonical_version_7_uuid_of_now() -> None:
    before = time.time_ns() // 1_000_000
    found = new_id()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(found)
    assert str(parsed) == found  # lower-case, hyphenated: as stored and compared
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_ids_sort_by_time_and_do_not_repeat() -> None:
    ids = []
    for _ in range(3):
        ids += [new_id() for _ in range(2_000)]
        time.sleep(0.002)
    assert len(set(ids)) == len(ids)
    millis = [uuid.UUID(i).int >> 80 for i in ids]
    assert millis == sorted(millis)


def test_every_random_bit_varies() -> None:
    """74 random bits: the 12 after the version, the 62 after the variant."""
    fixed = (0xF << 76) | (0x3 << 62) | (((1 << 48) - 1) << 80)
    seen_on = seen_off = 0
    for _ in range(500):
        value = uuid.UUID(new_id()).int
        seen_on |= value
        seen_off |= ~value
    random_bits = ((1 << 128) - 1) & ~fixed
    assert seen_on & random_bits == random_bits
    assert seen_off & random_bits == random_bits
