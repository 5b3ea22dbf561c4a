"""SLA clocks counted in Vietnamese working days (Asia/Ho_Chi_Minh), with UTC in and out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

import holidays as holidays_lib

__all__ = ["VN_TZ", "Duration", "DurationUnit", "WorkCalendar"]

VN_TZ: Final = ZoneInfo("Asia/Ho_Chi_Minh")

DurationUnit = Literal["working_days", "calendar_days", "hours"]

_SUFFIX_BY_UNIT: Final[dict[str, str]] = {
    "working_days": "wd",
    "calendar_days": "d",
    "hours": "h",
}
_UNIT_BY_SUFFIX: Final[dict[str, DurationUnit]] = {
    "wd": "working_days",
    "d": "calendar_days",
    "h": "hours",
}
# A year is the longest SLA any union workflow can sensibly have; larger values
# are typos ("50000d") that would otherwise silently never fire.
_MAX_AMOUNT: Final[dict[str, int]] = {
    "working_days": 365,
    "calendar_days": 365,
    "hours": 365 * 24,
}
# No leading zeros, so that str(Duration.parse(text)) == text; [0-9] rather than \d
# to refuse non-ASCII digits.
_DURATION_RE: Final = re.compile(r"(?P<amount>[1-9][0-9]*)(?P<suffix>wd|d|h)")

_ONE_SECOND: Final = timedelta(seconds=1)
_SATURDAY: Final = 5


@dataclass(frozen=True)
class Duration:
    """An SLA length: a number of working days, calendar days or hours."""

    amount: int
    unit: DurationUnit

    def __post_init__(self) -> None:
        # Validated here as well as in parse() so that workflow definitions built
        # in code cannot hold durations that parse() would refuse.
        if self.unit not in get_args(DurationUnit):
            raise ValueError(f"unknown duration unit {self.unit!r}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("duration amount must be an int")
        limit = _MAX_AMOUNT[self.unit]
        if not 1 <= self.amount <= limit:
            raise ValueError(f"duration amount {self.amount} is outside 1..{limit} {self.unit}")

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse "5wd" (working days), "2d" (calendar days) or "12h" (hours)."""
        match = _DURATION_RE.fullmatch(text)
        if match is not None:
            unit = _UNIT_BY_SUFFIX[match["suffix"]]
            amount = int(match["amount"])
            if amount <= _MAX_AMOUNT[unit]:
                return cls(amount, unit)
        raise ValueError(f"bad duration '{text}': use <n>wd, <n>d or <n>h")

    def __str__(self) -> str:
        return f"{self.amount}{_SUFFIX_BY_UNIT[self.unit]}"


def _as_utc(dt: datetime, name: str) -> datetime:
    # A naive datetime could be local or UTC, a 7-hour ambiguity in a deadline.
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


@lru_cache(maxsize=8192)
def _day_start(d: date) -> datetime:
    """The UTC instant at which local date `d` begins in Vietnam.

    Cached: every deadline walks a week or more of dates, and a zoneinfo conversion costs
    more than the rest of the walk (`add_working_seconds` was ≈ 6 % of a command).
    """
    return datetime.combine(d, time(0), tzinfo=VN_TZ).astimezone(UTC)


def _local_date(dt: datetime) -> date:
    return dt.astimezone(VN_TZ).date()


def _whole_seconds(td: timedelta) -> int:
    # Floor, so a clock never reports a second that has not fully elapsed.
    return td // _ONE_SECOND


class WorkCalendar:
    """Which Vietnamese dates are working days, and SLA clock arithmetic over them.

    Working time is counted per local date: a working date contributes its whole
    day (24 h) and a non-working date nothing. The clock is deliberately not
    limited to office hours: requests are filed at any hour and the SLA rules
    are expressed in days.
    """

    def __init__(
        self,
        holidays: Iterable[date] = (),
        extra_closures: Iterable[date] = (),
        extra_working_days: Iterable[date] = (),
        country: str | None = "VN",
    ) -> None:
        self._closures = frozenset(holidays) | frozenset(extra_closures)
        self._extra_working = frozenset(extra_working_days)
        clash = self._closures & self._extra_working
        if clash:
            days = ", ".join(d.isoformat() for d in sorted(clash))
            raise ValueError(f"dates both closed and declared working: {days}")
        self._country = country
        if country is not None:
            try:
                # An unknown country fails here, not at the first deadline computed.
                holidays_lib.country_holidays(country, years=())
            except NotImplementedError as exc:
                raise ValueError(f"no public-holiday calendar for country {country!r}") from exc
        self._by_year: dict[int, holidays_lib.HolidayBase] = {}
        # Every input is fixed at construction, so a date's answer never changes: a 5-working-
        # day deadline asks about a week of dates, and every task opened asks again.
        self._working: dict[date, bool] = {}
        # add_working_seconds past the first day: (local day, seconds left) → the instant.
        # Every task opened asks for its reminder, deadline and escalation (up to three weeks of
        # days each); the answers repeat for every task opened on the same day.
        self._from_day: dict[tuple[date, timedelta], datetime] = {}

    def _country_calendar(self, country: str, year: int) -> holidays_lib.HolidayBase:
        # One object per year, built on first use: constructing a year's holidays
        # (lunar calendar included) is the costly part of is_working_day.
        cal = self._by_year.get(year)
        if cal is None:
            cal = holidays_lib.country_holidays(country, years=year)
            self._by_year[year] = cal
        return cal

    def _is_country_weekend_workday(self, country: str, d: date) -> bool:
        # The package records compensatory Saturdays (e.g. 22 Aug 2026 worked in
        # exchange for 31 Aug off) with the year of the day off, which may be the
        # next year (2 Jan 2015 was swapped for 27 Dec 2014). Current versions list
        # such days under every year, but asking both years does not rely on that.
        return any(
            d in self._country_calendar(country, y).weekend_workdays for y in (d.year, d.year + 1)
        )

    def is_working_day(self, d: date) -> bool:
        """Whether `d` (a local Vietnamese date) counts towards working-day clocks."""
        if isinstance(d, datetime):
            # datetime is a date subclass; its date() could be the UTC one, not the
            # local one, so make the caller decide.
            raise TypeError("is_working_day takes a date, not a datetime")
        known = self._working.get(d)
        if known is None:
            known = self._working[d] = self._is_working_day(d)
        return known

    def _is_working_day(self, d: date) -> bool:
        if d in self._closures:
            return False
        if d in self._extra_working:
            return True
        weekend = d.weekday() >= _SATURDAY
        country = self._country
        if country is None:
            return not weekend
        if weekend:
            return self._is_country_weekend_workday(country, d)
        return d not in self._country_calendar(country, d.year)

    def _working_time_between(self, start: datetime, end: datetime) -> timedelta:
        total = timedelta(0)
        d = _local_date(start)
        last = _local_date(end)
        day_start = _day_start(d)
        while d <= last:
            next_day = d + timedelta(days=1)
            next_start = _day_start(next_day)
            if self.is_working_day(d):
                total += min(end, next_start) - max(start, day_start)
            d, day_start = next_day, next_start
        return total

    def working_seconds_between(self, start: datetime, end: datetime) -> int:
        """Working seconds from `start` to `end` (0 if `end` is not after `start`)."""
        start, end = _as_utc(start, "start"), _as_utc(end, "end")
        if end <= start:
            return 0
        return _whole_seconds(self._working_time_between(start, end))

    def add_working_seconds(self, start: datetime, seconds: int) -> datetime:
        """The earliest instant at which `seconds` working seconds have passed since `start`.

        Starting on a non-working day, the clock starts when the next working day
        begins; ending exactly at the end of a working day gives the next local
        midnight, not the start of the next working day.
        """
        cur = _as_utc(start, "start")
        _check_seconds(seconds)
        remaining = timedelta(seconds=seconds)
        if not remaining:
            return cur
        d = _local_date(cur)
        next_day = d + timedelta(days=1)
        if self.is_working_day(d):
            available = _day_start(next_day) - cur
            if remaining <= available:
                return cur + remaining
            remaining -= available
        key = (next_day, remaining)
        found = self._from_day.get(key)
        if found is None:
            if len(self._from_day) >= _FROM_DAY_CACHE_LIMIT:
                self._from_day.clear()  # resumed clocks leave arbitrary amounts: stay bounded
            found = self._from_day[key] = self._add_from_day_start(next_day, remaining)
        return found

    def _add_from_day_start(self, d: date, remaining: timedelta) -> datetime:
        cur = _day_start(d)
        while remaining:
            next_start = _day_start(d + timedelta(days=1))
            if self.is_working_day(d):
                available = next_start - cur
                if remaining <= available:
                    return cur + remaining
                remaining -= available
            cur, d = next_start, d + timedelta(days=1)
        return cur

    def add(self, start: datetime, duration: Duration) -> datetime:
        """The deadline `duration` after `start` (UTC)."""
        if duration.unit == "working_days":
            return self.add_working_seconds(start, duration.amount * 86_400)
        if duration.unit == "calendar_days":
            return _as_utc(start, "start") + timedelta(days=duration.amount)
        return _as_utc(start, "start") + timedelta(hours=duration.amount)

    def elapsed(self, start: datetime, end: datetime, unit: DurationUnit) -> int:
        """Seconds on the clock of `unit` between `start` and `end` (0 if not after)."""
        if unit == "working_days":
            return self.working_seconds_between(start, end)
        _check_unit(unit)
        start, end = _as_utc(start, "start"), _as_utc(end, "end")
        return max(0, _whole_seconds(end - start))

    def add_clock_seconds(self, start: datetime, seconds: int, unit: DurationUnit) -> datetime:
        """Inverse of elapsed(): resume a paused clock of `unit` with `seconds` left."""
        if unit == "working_days":
            return self.add_working_seconds(start, seconds)
        _check_unit(unit)
        _check_seconds(seconds)
        return _as_utc(start, "start") + timedelta(seconds=seconds)


_FROM_DAY_CACHE_LIMIT = 4096


def _check_seconds(seconds: int) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError("seconds must be an int")
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")


def _check_unit(unit: str) -> None:
    if unit not in get_args(DurationUnit):
        raise ValueError(f"unknown clock unit {unit!r}")
