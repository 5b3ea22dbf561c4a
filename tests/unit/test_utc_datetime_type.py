"""The UTC timestamp column type writes on SQLite exactly the text SQLAlchemy's DATETIME did."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from domain.adapters.tables import UTCDateTime

SQLITE = sqlite.dialect()
HANOI = timezone(timedelta(hours=7))


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 3, 2, 2, 0, tzinfo=UTC),  # no microseconds: still six digits
        datetime(2026, 11, 24, 13, 37, 14, 822049, tzinfo=UTC),
        datetime(2026, 1, 1, 6, 30, 0, 5, tzinfo=HANOI),  # local time: stored as UTC
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # a four-digit year
        datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(0))),  # UTC, but not `UTC`
    ],
)
def test_sqlite_text_is_that_of_sqlalchemys_datetime(value: datetime) -> None:
    ours = UTCDateTime().bind_processor(SQLITE)
    assert ours is not None
    theirs = sqlite.DATETIME().bind_processor(SQLITE)  # type: ignore[no-untyped-call]
    assert theirs is not None
    expected = theirs(value.astimezone(UTC).replace(tzinfo=None))
    assert ours(value) == expected
    back = UTCDateTime()._cached_result_processor(SQLITE, None)
    assert back is not None
    assert back(expected) == value  # read back: the same instant, aware UTC


def test_a_naive_time_is_refused_and_none_stays_none() -> None:
    ours = UTCDateTime().bind_processor(SQLITE)
    assert ours is not None
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2026, 1, 1))


def test_postgresql_keeps_the_aware_value() -> None:
    ours = UTCDateTime()._cached_bind_processor(postgresql.psycopg.dialect())  # type: ignore[no-untyped-call]
    value = datetime(2026, 1, 1, 6, 30, tzinfo=HANOI)
    bound = ours(value) if ours is not None else value
    assert bound == value
    assert bound.tzinfo is not None


@pytest.mark.parametrize(
    "stored",
    [
        "2026-11-24 13:37:14.822049",
        "2026-03-02 02:00:00.000000",
        "2026-03-02 02:00:00",  # written by SQL (CURRENT_TIMESTAMP), not by this type
        "2026-03-02T09:00:00+07:00",  # text with an offset: the same instant, in UTC
        None,
    ],
)
def test_sqlite_reads_what_sqlalchemys_datetime_read_then_tagged_utc(stored: str | None) -> None:
    ours = UTCDateTime().result_processor(SQLITE, None)
    theirs = sqlite.DATETIME().result_processor(SQLITE, None)  # type: ignore[no-untyped-call]
    assert ours is not None
    assert theirs is not None
    expected = UTCDateTime().process_result_value(theirs(stored), SQLITE)
    got = ours(stored)
    assert got == expected
    assert got is None or got.tzinfo is UTC
