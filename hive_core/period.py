"""Periods: the one type for "which UTC days" - analytics, reports, budgets and alerts all use it.

A :class:`Period` is a half-open range ``[start, end)`` of aware UTC datetimes on midnight
boundaries: whole UTC days, whatever the machine's time zone, so two processes (or a laptop and a
server) always agree on which period an instant belongs to. Code that thinks in days reads
:attr:`~Period.first_day` and :attr:`~Period.last_day` (both included).

Named constructors::

    Period.day(d) / Period.of_days(first, last)     a day; a range of days, both included
    Period.ending(last, n) / Period.month_to(last)  the n days ending ``last``; its month up to it
    Period.daily(now) / Period.monthly(now, reset)  the budget windows containing ``now`` (a month
                                                    runs from its reset day, 1..28, to the next's)
    Period.budget(window, now, reset)               either of them by name
    Period.report(kind, end)                        a report's ``day``/``week``/``month`` ending ``end``
    parse_period(text, now)                         the one grammar of every command: :data:`PERIOD_HELP`

The grammar, read against the UTC day of ``now`` (every ``--period`` of both CLIs, reports included)::

    today, day          today (a report of it is provisional: the day is not over)
    yesterday           the day before
    week                the 7 days ending today (the same days as 7d)
    month               this calendar month up to today
    Nd                  the N days ending today (7d, 30d, 90d)
    YYYY-MM             that calendar month (up to today while it runs)
    YYYY-MM-DD          that day
    A..B                the days A to B, both included (YYYY-MM-DD..YYYY-MM-DD)

A parsed period knows its :attr:`Period.kind` (``day``, ``week``, ``month``, or ``""`` for other
spans): what a report calls itself and names its file after.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from hive_core.errors import ConfigError

__all__ = [
    "MAX_RESET_DAY",
    "PERIOD_HELP",
    "REPORT_KINDS",
    "BudgetWindow",
    "Period",
    "parse_period",
]

#: what ``--period`` accepts (the CLIs' help text and every parse error say it)
PERIOD_HELP = ("today, yesterday, day, week, month, Nd (7d, 30d), YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD "
               "(UTC days, inclusive; day, week, month and Nd end today)")
#: the periods a report covers, each ending on the report's day
REPORT_KINDS = ("day", "week", "month")
#: a budget limit's window
BudgetWindow = Literal["daily", "monthly"]
#: the latest monthly reset day that exists in every month
MAX_RESET_DAY = 28

_DAY = timedelta(days=1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _utc_day(now: datetime) -> date:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).date()


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days ``[start, end)``; ``name`` (see :attr:`label`) and ``kind`` (``day``, ``week``,
    ``month`` or ``""``: what a report of it is called) are not part of equality."""

    start: datetime
    end: datetime
    name: str = field(default="", compare=False, repr=False)
    kind: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        # (cheap on purpose: the ledger builds a period per limit for every reservation)
        for attr in ("start", "end"):
            value: datetime = getattr(self, attr)
            if value.tzinfo is not UTC:
                if value.tzinfo is None or value.utcoffset():
                    raise ValueError(f"a period's {attr} must be a UTC midnight, not {value!r}")
                # one representation (UTC itself, not an equal zero offset), so isoformat agrees
                object.__setattr__(self, attr, value.replace(tzinfo=UTC))
            if value.hour or value.minute or value.second or value.microsecond:
                raise ValueError(f"a period's {attr} must be a UTC midnight, not {value!r}")
        if self.end <= self.start:
            raise ConfigError(f"period ends ({(self.end - _DAY).date()}) before it starts ({self.start.date()})")

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def of_days(cls, first: date, last: date, label: str = "") -> Period:
        """The UTC days ``first`` to ``last``, both included (:class:`ConfigError` when reversed)."""
        if last < first:
            raise ConfigError(f"period ends ({last}) before it starts ({first})")
        return cls(_midnight(first), _midnight(last) + _DAY, label)

    @classmethod
    def day(cls, day: date, label: str = "") -> Period:
        """One UTC day."""
        return cls.of_days(day, day, label)

    @classmethod
    def ending(cls, last: date, days: int, label: str = "") -> Period:
        """The ``days`` UTC days ending with ``last`` (included)."""
        if days < 1:
            raise ValueError(f"a period has at least one day, not {days}")
        return cls.of_days(last - timedelta(days=days - 1), last, label)

    @classmethod
    def month_to(cls, last: date, label: str = "") -> Period:
        """The calendar month of ``last`` up to ``last`` (included)."""
        return cls.of_days(last.replace(day=1), last, label)

    @classmethod
    def daily(cls, now: datetime) -> Period:
        """The budget day: the UTC day containing ``now``."""
        return cls.day(_utc_day(now))

    @classmethod
    def monthly(cls, now: datetime, reset_day: int = 1) -> Period:
        """The budget month containing ``now``: from ``reset_day`` of a month to the day before the
        next month's (days 29-31 are refused: they do not exist in every month)."""
        if not 1 <= reset_day <= MAX_RESET_DAY:
            raise ValueError(f"reset day must be 1..{MAX_RESET_DAY}")
        day = _utc_day(now)
        year, month = day.year, day.month
        if day.day < reset_day:
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        start = date(year, month, reset_day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return cls(_midnight(start), _midnight(date(year, month, reset_day)))

    @classmethod
    def budget(cls, window: BudgetWindow, now: datetime, reset_day: int = 1) -> Period:
        """The ``daily`` or ``monthly`` budget window containing ``now``."""
        return cls.daily(now) if window == "daily" else cls.monthly(now, reset_day)

    @classmethod
    def report(cls, kind: str, end: date) -> Period:
        """A report's period ending on ``end``: ``day`` is that day, ``week`` the 7 days ending it,
        ``month`` the calendar month up to it (:data:`REPORT_KINDS`)."""
        if kind == "day":
            return replace(cls.day(end), kind=kind)
        if kind == "week":
            return replace(cls.ending(end, 7), kind=kind)
        if kind == "month":
            return replace(cls.month_to(end), kind=kind)
        raise ValueError(f"unknown period {kind!r}: one of {', '.join(REPORT_KINDS)}")

    # -- questions ------------------------------------------------------------------------------

    @property
    def label(self) -> str:
        """How output names it: its name (``today``, ``last 7 days``...), else ``first..last``."""
        return self.name or f"{self.first_day}..{self.last_day}"

    @property
    def first_day(self) -> date:
        """The first UTC day (included)."""
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The last UTC day (included)."""
        return (self.end - _DAY).date()

    @property
    def days(self) -> int:
        """How many UTC days the period covers."""
        return (self.end - self.start).days

    def contains(self, when: date | datetime) -> bool:
        """Whether an aware instant, or a UTC day, falls in the period."""
        if isinstance(when, datetime):
            if when.tzinfo is None:
                raise ValueError("an instant must be timezone-aware")
            return self.start <= when < self.end
        return self.first_day <= when <= self.last_day

    def previous(self) -> Period:
        """The period of the same length that ends where this one starts."""
        return Period(self.start - (self.end - self.start), self.start)

    def remaining(self, now: datetime) -> timedelta:
        """Time from ``now`` to the end of the period (zero once it is over)."""
        return max(timedelta(0), self.end - now)

    def __repr__(self) -> str:
        return f"Period({self.first_day}..{self.last_day})"


def parse_period(text: str, now: datetime) -> Period:
    """A :class:`Period` from one of :data:`PERIOD_HELP`'s names, relative to the UTC day of ``now``;
    :class:`ConfigError` (one line, with the accepted names) for anything else."""
    today = _utc_day(now)
    try:
        return _parse(text, today)
    except OverflowError:  # 9999999d, or a range touching date.max: a message, not a traceback
        raise ConfigError(f"period {text!r} is out of range: use {PERIOD_HELP}") from None


def _parse(text: str, today: date) -> Period:
    value = text.strip().lower()
    if value in ("today", "day"):
        return replace(Period.day(today, "today"), kind="day")
    if value == "yesterday":
        return replace(Period.day(today - _DAY, "yesterday"), kind="day")
    if value == "week":
        return replace(Period.ending(today, 7, "last 7 days"), kind="week")
    if value == "month":
        return replace(Period.month_to(today, "this month"), kind="month")
    if value.endswith("d") and value[:-1].isdigit() and int(value[:-1]) >= 1:
        days = int(value[:-1])
        return Period.ending(today, days, f"last {days} days")
    if len(value) == 7 and value[4:5] == "-" and value[:4].isdigit() and value[5:].isdigit():
        return _month(value, today)
    first, dots, last = value.partition("..")
    try:
        first_day = date.fromisoformat(first) if len(first) == 10 else None
        last_day = date.fromisoformat(last) if len(last) == 10 else None
    except ValueError:
        first_day = last_day = None
    if first_day is not None and not dots:
        return replace(Period.day(first_day, first_day.isoformat()), kind="day")
    if first_day is not None and last_day is not None:
        return Period.of_days(first_day, last_day)
    raise ConfigError(f"unknown period {text!r}: use {PERIOD_HELP}")


def _month(value: str, today: date) -> Period:
    """``YYYY-MM``: the calendar month, up to today while it runs."""
    year, month = int(value[:4]), int(value[5:])
    if not 1 <= month <= 12 or year < 1:
        raise ConfigError(f"unknown period {value!r}: use {PERIOD_HELP}")
    first = date(year, month, 1)
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    last = min(following - _DAY, today) if first <= today else following - _DAY
    return replace(Period.of_days(first, last, value), kind="month")
