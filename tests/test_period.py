"""hive_core.period: the one Period (whole UTC days, half-open) - its named constructors for
analytics, reports and budgets, across a year end, a leap day and monthly reset days, and
``parse_period``'s names and errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from hive_core.errors import ConfigError
from hive_core.period import MAX_RESET_DAY, PERIOD_HELP, REPORT_KINDS, Period, parse_period

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
#: the last microsecond of a leap year, and the first of the next
LAST = datetime(2028, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
FIRST = LAST + timedelta(microseconds=1)
KIRITIMATI, HONOLULU = timezone(timedelta(hours=14)), timezone(timedelta(hours=-10))


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def test_a_period_is_half_open_whole_utc_days() -> None:
    week = Period.of_days(date(2026, 3, 4), date(2026, 3, 10))
    assert (week.start, week.end) == (midnight(date(2026, 3, 4)), midnight(date(2026, 3, 11)))
    assert (week.first_day, week.last_day, week.days, week.label) == (
        date(2026, 3, 4), date(2026, 3, 10), 7, "2026-03-04..2026-03-10")
    assert week.contains(date(2026, 3, 10)) and not week.contains(date(2026, 3, 11))
    assert week.contains(week.start) and not week.contains(week.end)
    assert week.contains(week.end - timedelta(microseconds=1))
    # an instant in any zone is placed by its UTC day
    assert week.contains(datetime(2026, 3, 11, 9, 0, tzinfo=KIRITIMATI))  # 19:00 UTC on the 10th
    assert not week.contains(datetime(2026, 3, 10, 14, 0, tzinfo=HONOLULU))  # 00:00 UTC on the 11th
    assert week == Period.of_days(date(2026, 3, 4), date(2026, 3, 10), "last 7 days")  # labels do not count
    assert repr(week) == "Period(2026-03-04..2026-03-10)"


def test_a_period_refuses_what_is_not_whole_utc_days() -> None:
    with pytest.raises(ConfigError, match=r"period ends \(2026-03-09\) before it starts \(2026-03-10\)"):
        Period.of_days(date(2026, 3, 10), date(2026, 3, 9))
    with pytest.raises(ValueError, match="UTC midnight"):
        Period(NOW, NOW + timedelta(days=1))
    with pytest.raises(ValueError, match="UTC midnight"):
        Period(datetime(2026, 3, 10), datetime(2026, 3, 11))  # naive
    with pytest.raises(ValueError, match="timezone-aware"):
        Period.daily(datetime(2026, 3, 10, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        Period.day(date(2026, 3, 10)).contains(datetime(2026, 3, 10, 12, 0))


def test_previous_and_remaining() -> None:
    month = Period.month_to(date(2026, 3, 31))
    assert month.previous() == Period.of_days(date(2026, 1, 29), date(2026, 2, 28))  # 31 days, just before
    assert Period.day(date(2029, 1, 1)).previous() == Period.day(date(2028, 12, 31))
    assert month.remaining(datetime(2026, 3, 31, 18, 0, tzinfo=UTC)) == timedelta(hours=6)
    assert month.remaining(month.end + timedelta(days=3)) == timedelta(0)


def test_periods_across_a_year_end() -> None:
    for window in ("daily", "monthly"):
        before, after = Period.budget(window, LAST), Period.budget(window, FIRST)
        assert before.contains(LAST) and not before.contains(FIRST)
        assert after.first_day == date(2029, 1, 1) and after.start == before.end
    assert Period.monthly(LAST) == Period.of_days(date(2028, 12, 1), date(2028, 12, 31))
    # the caller's offset does not move the day: 10:00 on Jan 1 in Kiritimati is Dec 31 in UTC
    assert Period.daily(datetime(2029, 1, 1, 10, 0, tzinfo=KIRITIMATI)) == Period.day(date(2028, 12, 31))
    assert Period.daily(LAST.astimezone(HONOLULU)) == Period.day(date(2028, 12, 31))
    assert Period.report("week", date(2029, 1, 2)) == Period.of_days(date(2028, 12, 27), date(2029, 1, 2))
    assert parse_period("7d", FIRST).previous() == Period.of_days(date(2028, 12, 19), date(2028, 12, 25))


def test_periods_across_a_leap_day() -> None:
    february = Period.monthly(datetime(2028, 2, 29, 12, 0, tzinfo=UTC))
    assert (february.first_day, february.last_day, february.days) == (date(2028, 2, 1), date(2028, 2, 29), 29)
    assert Period.monthly(datetime(2027, 2, 28, tzinfo=UTC)).days == 28
    assert Period.report("month", date(2028, 2, 29)).days == 29
    assert Period.report("week", date(2028, 3, 2)).first_day == date(2028, 2, 25)
    assert parse_period("yesterday", datetime(2028, 3, 1, tzinfo=UTC)).first_day == date(2028, 2, 29)
    assert Period.ending(date(2028, 3, 1), 2) == Period.of_days(date(2028, 2, 29), date(2028, 3, 1))


def test_monthly_reset_days() -> None:
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    assert Period.monthly(now) == Period.of_days(date(2026, 11, 1), date(2026, 11, 30))
    # before the reset day: the period began the previous month (a year back in January)
    period = Period.monthly(datetime(2026, 1, 10, tzinfo=UTC), reset_day=15)
    assert (period.first_day, period.end, period.days) == (date(2025, 12, 15), midnight(date(2026, 1, 15)), 31)
    on_the_day = Period.monthly(datetime(2026, 1, 15, tzinfo=UTC), reset_day=15)
    assert (on_the_day.first_day, on_the_day.last_day) == (date(2026, 1, 15), date(2026, 2, 14))
    # the latest reset day exists in every month, February of a leap year included
    late = Period.monthly(datetime(2028, 2, 29, tzinfo=UTC), reset_day=MAX_RESET_DAY)
    assert (late.first_day, late.last_day, late.days) == (date(2028, 2, 28), date(2028, 3, 27), 29)
    # a reset day within the day before the year turns: December's period runs into January
    assert Period.monthly(LAST, reset_day=20).last_day == date(2029, 1, 19)
    for bad in (0, MAX_RESET_DAY + 1):
        with pytest.raises(ValueError, match=f"reset day must be 1..{MAX_RESET_DAY}"):
            Period.monthly(now, reset_day=bad)


def test_report_periods() -> None:
    end = date(2026, 5, 20)
    assert REPORT_KINDS == ("day", "week", "month")
    assert Period.report("day", end) == Period.day(end)
    assert Period.report("week", end) == Period.of_days(end - timedelta(days=6), end)
    assert Period.report("month", end) == Period.of_days(date(2026, 5, 1), end)
    with pytest.raises(ValueError, match="unknown period 'year': one of day, week, month"):
        Period.report("year", end)


def test_parse_period() -> None:
    today = NOW.date()
    assert parse_period("today", NOW) == Period.day(today) and parse_period("today", NOW).label == "today"
    yesterday = parse_period(" Yesterday ", NOW)
    assert (yesterday.first_day, yesterday.label) == (date(2026, 3, 9), "yesterday")
    seven = parse_period("7d", NOW)
    assert (seven.first_day, seven.last_day, seven.days, seven.label) == (date(2026, 3, 4), today, 7, "last 7 days")
    assert seven.previous() == Period.of_days(date(2026, 2, 25), date(2026, 3, 3))
    month = parse_period("month", NOW)
    assert (month.first_day, month.last_day, month.label) == (date(2026, 3, 1), today, "this month")
    assert parse_period("30d", NOW).days == 30
    span = parse_period("2026-01-01..2026-01-31", NOW)
    assert (span.days, span.previous().first_day, span.label) == (31, date(2025, 12, 1), "2026-01-01..2026-01-31")
    # "today" is the UTC day of now, whatever its offset
    assert parse_period("today", datetime(2026, 3, 11, 9, 0, tzinfo=KIRITIMATI)) == Period.day(today)


def test_parse_period_one_grammar_for_every_command() -> None:
    """day/week/month are the report's names and every command's: they end today, and carry the kind a
    report is named after; YYYY-MM is a calendar month (up to today while it runs); a bare day is a day."""
    today = NOW.date()
    cases = {
        "day": (today, today, "day", "today"), "today": (today, today, "day", "today"),
        "yesterday": (date(2026, 3, 9), date(2026, 3, 9), "day", "yesterday"),
        "week": (date(2026, 3, 4), today, "week", "last 7 days"),
        "month": (date(2026, 3, 1), today, "month", "this month"),
        "7d": (date(2026, 3, 4), today, "", "last 7 days"),
        "2026-02": (date(2026, 2, 1), date(2026, 2, 28), "month", "2026-02"),
        "2026-03": (date(2026, 3, 1), today, "month", "2026-03"),
        "2028-02": (date(2028, 2, 1), date(2028, 2, 29), "month", "2028-02"),
        "2026-02-03": (date(2026, 2, 3), date(2026, 2, 3), "day", "2026-02-03"),
        "2026-01-01..2026-01-31": (date(2026, 1, 1), date(2026, 1, 31), "", "2026-01-01..2026-01-31"),
    }
    for text, (first, last, kind, label) in cases.items():
        period = parse_period(text, NOW)
        assert (period.first_day, period.last_day, period.kind, period.label) == (first, last, kind, label), text
    assert parse_period("week", NOW) == parse_period("7d", NOW) == Period.report("week", today)
    assert Period.report("month", today).kind == "month" and parse_period("month", NOW) == Period.report("month", today)
    # across a year end: the week and the month of January 1
    assert parse_period("week", FIRST).first_day == date(2028, 12, 26)
    assert parse_period("month", FIRST) == Period.day(date(2029, 1, 1))


@pytest.mark.parametrize("bad", ["fortnight", "2026-13", "2026-00", "26-03", "0d", "-1d", "d", "", "2026-13-01..2026-12-01", "2026-01-01..",
                                 "2026-01-01...2026-01-02", "yesterday,today"])
def test_parse_period_errors_name_the_accepted_periods(bad: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_period(bad, NOW)
    assert str(raised.value) == f"unknown period {bad!r}: use {PERIOD_HELP}"
    assert "\n" not in str(raised.value)


def test_parse_period_errors_for_reversed_and_unrepresentable_ranges() -> None:
    with pytest.raises(ConfigError, match=r"^period ends \(2026-01-01\) before it starts \(2026-02-01\)$"):
        parse_period("2026-02-01..2026-01-01", NOW)
    for far in ("99999999d", "0001-01-01..9999-12-31"):
        with pytest.raises(ConfigError, match=f"^period '{far}' is out of range: use "):
            parse_period(far, NOW)
