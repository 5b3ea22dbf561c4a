"""Tests of domain.workcalendar: durations, Vietnamese working days and SLA clocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import get_args

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.workcalendar import VN_TZ, Duration, DurationUnit, WorkCalendar

DAY = 86_400

# One calendar per kind for the whole module: the per-year holiday cache is what
# makes the property tests fast, and sharing it also exercises the cache.
VN = WorkCalendar()
PLAIN = WorkCalendar(country=None)


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A Vietnamese wall-clock time, as the UTC instant the API takes."""
    return datetime(y, m, d, hh, mm, tzinfo=VN_TZ).astimezone(UTC)


def as_local(dt: datetime) -> datetime:
    return dt.astimezone(VN_TZ).replace(tzinfo=None)


class TestDuration:
    @pytest.mark.parametrize(
        ("text", "amount", "unit"),
        [
            ("5wd", 5, "working_days"),
            ("1wd", 1, "working_days"),
            ("365wd", 365, "working_days"),
            ("2d", 2, "calendar_days"),
            ("365d", 365, "calendar_days"),
            ("12h", 12, "hours"),
            ("8760h", 8760, "hours"),
        ],
    )
    def test_parses_the_three_units_and_prints_them_back(
        self, text: str, amount: int, unit: DurationUnit
    ) -> None:
        duration = Duration.parse(text)
        assert duration == Duration(amount, unit)
        assert str(duration) == text

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "5",
            "wd",
            "0wd",
            "366wd",
            "366d",
            "8761h",
            "-1d",
            "+1d",
            "05wd",
            "5 wd",
            " 5wd",
            "5wd\n",
            "5WD",
            "5w",
            "5days",
            "1.5d",
            "５wd",
        ],
    )
    def test_rejects_other_text_with_a_hint(self, text: str) -> None:
        with pytest.raises(ValueError, match=r"(?s)bad duration '.*': use <n>wd, <n>d or <n>h"):
            Duration.parse(text)

    @pytest.mark.parametrize(
        ("amount", "unit"),
        [(0, "hours"), (366, "working_days"), (8761, "hours"), (1, "weeks")],
    )
    def test_cannot_be_built_out_of_range_either(self, amount: int, unit: str) -> None:
        with pytest.raises(ValueError, match="duration"):
            Duration(amount, unit)  # type: ignore[arg-type]

    def test_is_immutable_and_hashable(self) -> None:
        duration = Duration.parse("5wd")
        with pytest.raises(AttributeError):
            duration.amount = 6  # type: ignore[misc]
        assert {duration, Duration(5, "working_days")} == {duration}

    @given(
        st.one_of(
            st.builds(Duration, st.integers(1, 365), st.just("working_days")),
            st.builds(Duration, st.integers(1, 365), st.just("calendar_days")),
            st.builds(Duration, st.integers(1, 8760), st.just("hours")),
        )
    )
    def test_text_form_round_trips(self, duration: Duration) -> None:
        assert Duration.parse(str(duration)) == duration


class TestWorkingDays:
    def test_weekends_are_not_working_days_and_weekdays_are(self) -> None:
        week = [date(2025, 3, 3) + timedelta(days=i) for i in range(7)]  # Mon..Sun
        assert [PLAIN.is_working_day(d) for d in week] == [True] * 5 + [False] * 2
        assert [VN.is_working_day(d) for d in week] == [True] * 5 + [False] * 2

    @pytest.mark.parametrize(
        "holiday",
        [
            date(2026, 1, 1),  # New Year
            *(date(2026, 2, day) for day in range(16, 21)),  # Tết 2026
            date(2026, 4, 27),  # Hùng Kings (observed: the 26th is a Sunday)
            date(2026, 4, 30),
            date(2026, 5, 1),
            date(2026, 8, 31),  # day off swapped for Saturday 22 August
            date(2026, 9, 1),
            date(2026, 9, 2),
        ],
    )
    def test_vietnamese_public_holidays_are_not_working_days(self, holiday: date) -> None:
        assert holiday.weekday() < 5
        assert not VN.is_working_day(holiday)
        assert PLAIN.is_working_day(holiday)

    def test_days_around_tet_2026_are_working_days(self) -> None:
        assert VN.is_working_day(date(2026, 2, 13))
        assert VN.is_working_day(date(2026, 2, 23))

    def test_compensatory_saturdays_known_to_the_package_are_working_days(self) -> None:
        # 2026: Monday 31 Aug off in exchange for working Saturday 22 Aug.
        assert VN.is_working_day(date(2026, 8, 22))
        assert not VN.is_working_day(date(2026, 8, 29))
        # 2015: Friday 2 Jan off in exchange for Saturday 27 Dec 2014, a year earlier.
        assert VN.is_working_day(date(2014, 12, 27))

    def test_explicit_holidays_and_extra_closures_close_working_days(self) -> None:
        cal = WorkCalendar(
            holidays=[date(2025, 3, 4)], extra_closures=[date(2025, 3, 5)], country=None
        )
        assert not cal.is_working_day(date(2025, 3, 4))
        assert not cal.is_working_day(date(2025, 3, 5))
        assert cal.is_working_day(date(2025, 3, 6))

    def test_extra_closures_add_to_the_country_calendar(self) -> None:
        # Announced extra Tết closure: Friday 13 Feb 2026.
        cal = WorkCalendar(extra_closures=[date(2026, 2, 13)])
        assert not cal.is_working_day(date(2026, 2, 13))
        assert not cal.is_working_day(date(2026, 2, 16))

    def test_extra_working_days_open_weekends_and_holidays(self) -> None:
        cal = WorkCalendar(extra_working_days=[date(2026, 2, 7), date(2026, 2, 20)])
        assert cal.is_working_day(date(2026, 2, 7))  # Saturday
        assert cal.is_working_day(date(2026, 2, 20))  # Tết holiday
        assert not cal.is_working_day(date(2026, 2, 8))

    def test_a_date_cannot_be_both_closed_and_working(self) -> None:
        with pytest.raises(ValueError, match="2026-02-07"):
            WorkCalendar(extra_closures=[date(2026, 2, 7)], extra_working_days=[date(2026, 2, 7)])

    def test_an_unknown_country_fails_at_construction(self) -> None:
        with pytest.raises(ValueError, match="XX"):
            WorkCalendar(country="XX")

    def test_a_datetime_is_refused_because_its_date_may_not_be_local(self) -> None:
        with pytest.raises(TypeError):
            VN.is_working_day(datetime(2026, 2, 13, 20, tzinfo=UTC))

    def test_accepts_any_iterable_including_generators(self) -> None:
        cal = WorkCalendar(holidays=(date(2025, 3, d) for d in (3, 4)), country=None)
        assert not cal.is_working_day(date(2025, 3, 3))
        assert not cal.is_working_day(date(2025, 3, 4))


class TestWorkingDayClock:
    def test_one_working_day_from_friday_morning_is_monday_morning(self) -> None:
        due = PLAIN.add(local(2025, 3, 7, 10), Duration.parse("1wd"))
        assert as_local(due) == datetime(2025, 3, 10, 10)

    def test_a_clock_opened_on_saturday_starts_with_monday(self) -> None:
        due = PLAIN.add(local(2025, 3, 8, 10), Duration.parse("1wd"))
        assert as_local(due) == datetime(2025, 3, 11, 0)

    def test_one_working_day_across_tet_2026(self) -> None:
        due = VN.add(local(2026, 2, 13, 10), Duration.parse("1wd"))
        assert as_local(due) == datetime(2026, 2, 23, 10)

    def test_five_working_days_across_tet_2026(self) -> None:
        # Fri 13 from 10:00 (14 h), Mon 23 - Thu 26 (4 days), Fri 27 until 10:00.
        due = VN.add(local(2026, 2, 13, 10), Duration.parse("5wd"))
        assert as_local(due) == datetime(2026, 2, 27, 10)

    def test_an_extra_closure_pushes_the_deadline(self) -> None:
        cal = WorkCalendar(extra_closures=[date(2026, 2, 23)])
        due = cal.add(local(2026, 2, 13, 10), Duration.parse("1wd"))
        assert as_local(due) == datetime(2026, 2, 24, 10)

    def test_an_extra_working_saturday_pulls_the_deadline_in(self) -> None:
        cal = WorkCalendar(extra_working_days=[date(2025, 3, 8)], country=None)
        due = cal.add(local(2025, 3, 7, 10), Duration.parse("1wd"))
        assert as_local(due) == datetime(2025, 3, 8, 10)

    def test_the_end_of_a_working_day_is_the_next_local_midnight(self) -> None:
        due = PLAIN.add_working_seconds(local(2025, 3, 7, 10), 14 * 3600)
        assert as_local(due) == datetime(2025, 3, 8, 0)

    def test_adding_nothing_returns_the_start_even_on_a_weekend(self) -> None:
        saturday = local(2025, 3, 8, 10)
        assert PLAIN.add_working_seconds(saturday, 0) == saturday

    def test_local_midnight_is_seven_hours_before_utc_midnight(self) -> None:
        # Opened Friday 23:30 local = 16:30 UTC: half an hour is left on Friday.
        due = PLAIN.add_working_seconds(datetime(2025, 3, 7, 16, 30, tzinfo=UTC), 3600)
        assert due == datetime(2025, 3, 9, 17, 30, tzinfo=UTC)  # Monday 00:30 local

    def test_measures_working_seconds_between_two_instants(self) -> None:
        friday, monday = local(2025, 3, 7, 10), local(2025, 3, 10, 10)
        assert PLAIN.working_seconds_between(friday, monday) == DAY
        assert PLAIN.working_seconds_between(friday, local(2025, 3, 8, 12)) == 14 * 3600
        assert PLAIN.working_seconds_between(local(2025, 3, 8), local(2025, 3, 10)) == 0

    def test_is_zero_when_the_end_is_not_after_the_start(self) -> None:
        friday, monday = local(2025, 3, 7, 10), local(2025, 3, 10, 10)
        assert PLAIN.working_seconds_between(monday, friday) == 0
        assert PLAIN.working_seconds_between(monday, monday) == 0

    def test_counts_whole_seconds_only(self) -> None:
        start = local(2025, 3, 4, 10)
        assert PLAIN.working_seconds_between(start, start + timedelta(microseconds=999_999)) == 0
        assert PLAIN.working_seconds_between(start, start + timedelta(seconds=1.5)) == 1

    def test_a_year_of_2026_has_the_working_days_of_the_vietnamese_calendar(self) -> None:
        days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
        working = sum(VN.is_working_day(d) for d in days)
        # 261 weekdays, minus 13 weekday holidays, plus Saturday 22 August.
        assert working == 261 - 13 + 1
        assert VN.working_seconds_between(local(2026, 1, 1), local(2027, 1, 1)) == working * DAY

    def test_works_day_by_day_not_second_by_second(self) -> None:
        calls = 0

        class CountingCalendar(WorkCalendar):
            def is_working_day(self, d: date) -> bool:
                nonlocal calls
                calls += 1
                return super().is_working_day(d)

        cal = CountingCalendar()
        start = local(2026, 1, 5, 9)
        due = cal.add(start, Duration.parse("365wd"))
        assert calls < 2 * 366
        calls = 0
        assert cal.working_seconds_between(start, due) == 365 * DAY
        assert calls < 2 * 366

    @pytest.mark.parametrize(
        ("duration", "expected"),
        [("2d", datetime(2026, 2, 15, 10)), ("12h", datetime(2026, 2, 13, 22))],
    )
    def test_calendar_days_and_hours_ignore_holidays(
        self, duration: str, expected: datetime
    ) -> None:
        due = VN.add(local(2026, 2, 13, 10), Duration.parse(duration))
        assert as_local(due) == expected

    def test_results_are_utc_even_for_other_aware_input(self) -> None:
        hanoi = datetime(2025, 3, 7, 10, tzinfo=VN_TZ)
        plus_two = datetime(2025, 3, 7, 5, tzinfo=timezone(timedelta(hours=2)))
        for start in (hanoi, plus_two):
            for text in ("1wd", "1d", "1h"):
                assert VN.add(start, Duration.parse(text)).tzinfo is UTC
        assert VN.add(hanoi, Duration.parse("1wd")) == local(2025, 3, 10, 10)

    def test_naive_datetimes_are_refused_everywhere(self) -> None:
        naive, aware = datetime(2025, 3, 7, 10), local(2025, 3, 7, 10)
        with pytest.raises(ValueError, match="timezone-aware"):
            VN.add(naive, Duration.parse("1wd"))
        with pytest.raises(ValueError, match="timezone-aware"):
            VN.add(naive, Duration.parse("1h"))
        with pytest.raises(ValueError, match="timezone-aware"):
            VN.add_working_seconds(naive, 0)
        with pytest.raises(ValueError, match="timezone-aware"):
            VN.working_seconds_between(aware, naive)
        for unit in get_args(DurationUnit):
            with pytest.raises(ValueError, match="timezone-aware"):
                VN.elapsed(naive, aware, unit)
            with pytest.raises(ValueError, match="timezone-aware"):
                VN.add_clock_seconds(naive, 60, unit)

    def test_negative_seconds_are_refused(self) -> None:
        for unit in get_args(DurationUnit):
            with pytest.raises(ValueError, match="negative"):
                VN.add_clock_seconds(local(2025, 3, 7), -1, unit)


class TestPausedClocks:
    def test_elapsed_counts_the_clock_of_each_unit(self) -> None:
        friday, monday = local(2025, 3, 7, 10), local(2025, 3, 10, 10)
        assert PLAIN.elapsed(friday, monday, "working_days") == DAY
        assert PLAIN.elapsed(friday, monday, "calendar_days") == 3 * DAY
        assert PLAIN.elapsed(friday, monday, "hours") == 3 * DAY
        assert PLAIN.elapsed(monday, friday, "hours") == 0

    def test_a_clock_paused_over_a_weekend_resumes_with_its_remaining_time(self) -> None:
        opened = local(2025, 3, 6, 10)  # Thursday
        paused = local(2025, 3, 7, 16)  # Friday: 30 h used
        deadline_seconds = 2 * DAY
        used = PLAIN.elapsed(opened, paused, "working_days")
        assert used == 30 * 3600
        resumed = local(2025, 3, 11, 9)  # Tuesday
        due = PLAIN.add_clock_seconds(resumed, deadline_seconds - used, "working_days")
        assert as_local(due) == datetime(2025, 3, 11, 9) + timedelta(hours=18)

    def test_resuming_on_a_weekend_waits_for_monday(self) -> None:
        due = PLAIN.add_clock_seconds(local(2025, 3, 8, 15), 3600, "working_days")
        assert as_local(due) == datetime(2025, 3, 10, 1)

    @pytest.mark.parametrize("unit", ["calendar_days", "hours"])
    def test_plain_clocks_resume_without_skipping_anything(self, unit: DurationUnit) -> None:
        due = VN.add_clock_seconds(local(2026, 2, 15, 15), 3600, unit)
        assert as_local(due) == datetime(2026, 2, 15, 16)


# Starts between 2024 and 2027 (Tết, substituted days and year ends included),
# anywhere in the day; amounts up to about six weeks of working time.
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
whole_second_instants = instants.map(lambda dt: dt.replace(microsecond=0))
working_seconds = st.integers(0, 30 * DAY)
# The first use of a year builds its holiday table, which can exceed the default
# per-example deadline although the clock arithmetic itself is fast.
no_deadline = settings(deadline=None)
calendars = st.sampled_from([VN, PLAIN])
units = st.sampled_from(get_args(DurationUnit))


@pytest.mark.slow
class TestClockProperties:
    @no_deadline
    @given(calendars, instants, working_seconds)
    def test_measuring_what_was_added_gives_it_back(
        self, cal: WorkCalendar, start: datetime, seconds: int
    ) -> None:
        assume(cal.is_working_day(start.astimezone(VN_TZ).date()))
        assert cal.working_seconds_between(start, cal.add_working_seconds(start, seconds)) == (
            seconds
        )

    @no_deadline
    @given(calendars, instants, working_seconds)
    def test_it_also_holds_from_non_working_days(
        self, cal: WorkCalendar, start: datetime, seconds: int
    ) -> None:
        assert cal.working_seconds_between(start, cal.add_working_seconds(start, seconds)) == (
            seconds
        )

    @no_deadline
    @given(calendars, instants, working_seconds)
    def test_a_deadline_is_the_earliest_instant_with_that_much_working_time(
        self, cal: WorkCalendar, start: datetime, seconds: int
    ) -> None:
        assume(seconds > 0)
        due = cal.add_working_seconds(start, seconds)
        assert cal.working_seconds_between(start, due - timedelta(seconds=1)) < seconds

    @no_deadline
    @given(calendars, instants, working_seconds, working_seconds)
    def test_adding_more_never_gives_an_earlier_deadline(
        self, cal: WorkCalendar, start: datetime, a: int, b: int
    ) -> None:
        low, high = sorted((a, b))
        assert cal.add_working_seconds(start, low) <= cal.add_working_seconds(start, high)

    @no_deadline
    @given(calendars, instants, instants, st.integers(1, 30))
    def test_starting_later_never_gives_an_earlier_deadline(
        self, cal: WorkCalendar, a: datetime, b: datetime, days: int
    ) -> None:
        early, late = sorted((a, b))
        duration = Duration(days, "working_days")
        assert cal.add(early, duration) <= cal.add(late, duration)

    @no_deadline
    @given(calendars, instants, instants, units)
    def test_resuming_with_the_elapsed_time_reaches_the_same_clock_reading(
        self, cal: WorkCalendar, a: datetime, b: datetime, unit: DurationUnit
    ) -> None:
        start, end = sorted((a, b))
        spent = cal.elapsed(start, end, unit)
        back = cal.add_clock_seconds(start, spent, unit)
        assert cal.elapsed(start, back, unit) == spent
        assert start <= back <= end

    @no_deadline
    @given(calendars, whole_second_instants, whole_second_instants, units)
    def test_resuming_with_the_elapsed_time_inside_working_time_gives_the_same_instant(
        self, cal: WorkCalendar, a: datetime, b: datetime, unit: DurationUnit
    ) -> None:
        start, end = sorted((a, b))
        end_local = end.astimezone(VN_TZ)
        # Outside working time the earliest instant with that reading is earlier:
        # the end of the last working day.
        if unit == "working_days":
            assume(cal.is_working_day(end_local.date()))
            assume(end_local.time() != datetime.min.time() or start == end)
        back = cal.add_clock_seconds(start, cal.elapsed(start, end, unit), unit)
        assert back == end

    @no_deadline
    @given(calendars, instants, working_seconds, units)
    def test_elapsed_inverts_add_clock_seconds(
        self, cal: WorkCalendar, start: datetime, seconds: int, unit: DurationUnit
    ) -> None:
        assert cal.elapsed(start, cal.add_clock_seconds(start, seconds, unit), unit) == seconds

    @no_deadline
    @given(calendars, instants, st.integers(1, 30))
    def test_working_day_deadlines_fall_in_working_time(
        self, cal: WorkCalendar, start: datetime, days: int
    ) -> None:
        due = cal.add(start, Duration(days, "working_days")).astimezone(VN_TZ)
        at_midnight = due.time() == datetime.min.time()
        # Either during a working day, or at the midnight that ends one.
        assert cal.is_working_day(due.date()) or (
            at_midnight and cal.is_working_day(due.date() - timedelta(days=1))
        )
        assert due.tzinfo is not None
