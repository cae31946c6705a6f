"""Budget periods: calendar days and months in UTC, with an optional monthly reset day.

Every period boundary is midnight UTC, whatever the machine's time zone, so two processes (or a
laptop and a server) always agree on which period a request belongs to. A daily period is one UTC
calendar day. A monthly period starts on its ``reset_day`` (1..28, default 1: calendar months) and
ends the day before the next month's reset day; days 29-31 are not allowed because they do not
exist in every month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

__all__ = ["MAX_RESET_DAY", "Period", "PeriodKind", "daily_period", "monthly_period", "period_for"]

PeriodKind = Literal["daily", "monthly"]

#: the latest reset day that exists in every month
MAX_RESET_DAY = 28


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open range of UTC days ``[start, end)``."""

    kind: PeriodKind
    start: date
    end: date

    @property
    def days(self) -> int:
        """Number of days in the period."""
        return (self.end - self.start).days

    def contains(self, day: date) -> bool:
        """Whether ``day`` falls in the period."""
        return self.start <= day < self.end

    def remaining_days(self, now: datetime) -> float:
        """Days (fractional) from ``now`` to the end of the period."""
        end = datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC)
        return max(0.0, (end - now).total_seconds() / 86_400)


def _utc_day(now: datetime) -> date:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).date()


def _add_month(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, day.day)


def daily_period(now: datetime) -> Period:
    """The UTC calendar day containing ``now``."""
    day = _utc_day(now)
    return Period("daily", day, day + timedelta(days=1))


def monthly_period(now: datetime, reset_day: int = 1) -> Period:
    """The monthly period containing ``now`` that starts on ``reset_day`` of a month."""
    if not 1 <= reset_day <= MAX_RESET_DAY:
        raise ValueError(f"reset day must be 1..{MAX_RESET_DAY}")
    day = _utc_day(now)
    if day.day >= reset_day:
        start = date(day.year, day.month, reset_day)
    else:
        year, month = (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)
        start = date(year, month, reset_day)
    return Period("monthly", start, _add_month(start))


def period_for(kind: PeriodKind, now: datetime, reset_day: int = 1) -> Period:
    """The daily or monthly period containing ``now``."""
    return daily_period(now) if kind == "daily" else monthly_period(now, reset_day)
