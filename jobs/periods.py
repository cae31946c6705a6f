"""Report periods: ``today``, ``yesterday``, ``7d``, ``30d``, ``month`` or ``YYYY-MM-DD..YYYY-MM-DD``.

A period is a pair of UTC days, both included. ``7d`` and ``30d`` end today (today included), ``month``
is the calendar month so far. The previous period is the one of the same length just before.
"""

from __future__ import annotations

from datetime import date, timedelta

from hive_core.clock import system_clock
from hive_core.errors import ConfigError

__all__ = ["PERIOD_HELP", "Period", "parse_period"]

PERIOD_HELP = "today, yesterday, 7d, 30d, month, or YYYY-MM-DD..YYYY-MM-DD (UTC days, inclusive)"


class Period:
    """An inclusive range of UTC days."""

    __slots__ = ("label", "since", "until")

    def __init__(self, since: date, until: date, label: str | None = None) -> None:
        if until < since:
            raise ConfigError(f"period ends ({until}) before it starts ({since})")
        self.since, self.until = since, until
        self.label = label or f"{since}..{until}"

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        until = self.since - timedelta(days=1)
        return Period(until - timedelta(days=self.days - 1), until)

    def __repr__(self) -> str:
        return f"Period({self.since}..{self.until})"


def parse_period(text: str, today: date | None = None) -> Period:
    """A :class:`Period` from its name (relative to ``today``, default the system's UTC day);
    :class:`ConfigError` for anything else."""
    today = today or system_clock().date()
    value = text.strip().lower()
    if value == "today":
        return Period(today, today, "today")
    if value == "yesterday":
        day = today - timedelta(days=1)
        return Period(day, day, "yesterday")
    if value.endswith("d") and value[:-1].isdigit() and int(value[:-1]) >= 1:
        return Period(today - timedelta(days=int(value[:-1]) - 1), today, f"last {value[:-1]} days")
    if value == "month":
        return Period(today.replace(day=1), today, "this month")
    if ".." in value:
        first, _, last = value.partition("..")
        try:
            return Period(date.fromisoformat(first), date.fromisoformat(last))
        except ValueError:
            pass
    raise ConfigError(f"unknown period {text!r}: use {PERIOD_HELP}")
