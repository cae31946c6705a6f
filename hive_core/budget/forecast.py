"""The burn-rate forecast: at the recent daily rate, what will a period's spend be at its end?

The rate is the spend of the last :data:`WINDOW_DAYS` days (today's partial day included) divided
by the time they cover, counted from the first day with any spend when the history is shorter, and
never less than one day (so the first hour's burst is not read as a daily rate). The projection is
``spent so far + rate x days left in the period``; ``over_on`` is the UTC day the running spend
crosses the limit at that rate (today when it already has), ``None`` when it stays under.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from hive_core.period import Period

__all__ = ["WINDOW_DAYS", "Forecast", "forecast", "history_since"]

WINDOW_DAYS = 7


@dataclass(frozen=True, slots=True)
class Forecast:
    """Projected spend at the end of a period at the recent rate."""

    rate_per_day: float
    projected_usd: float
    #: first UTC day the spend is over the limit at this rate; None when it stays under
    over_on: date | None


def forecast(
    period: Period,
    spent_usd: float,
    daily_spend: Mapping[date, float],
    now: datetime,
    limit_usd: float | None = None,
) -> Forecast:
    """Project ``spent_usd`` (spend so far in ``period``) to the period's end.

    ``daily_spend``: spend per UTC day (any range; the window is taken from it, and its first day
    with spend marks where the history starts).
    """
    today = now.astimezone(UTC).date()
    start = today - timedelta(days=WINDOW_DAYS - 1)
    history = [day for day, usd in daily_spend.items() if usd > 0 and day <= today]
    if history:
        start = max(start, min(history))
    recent = Period.of_days(start, today)
    elapsed_days = max(1.0, (now - recent.start).total_seconds() / 86_400)
    window = sum(usd for day, usd in daily_spend.items() if recent.contains(day))
    rate = window / elapsed_days
    projected = spent_usd + rate * (period.remaining(now).total_seconds() / 86_400)
    over_on: date | None = None
    if limit_usd is not None:
        if spent_usd > limit_usd:
            over_on = today
        elif rate > 0:
            crossing = now + timedelta(days=(limit_usd - spent_usd) / rate)
            if crossing < period.end:
                over_on = crossing.astimezone(UTC).date()  # the UTC day, whatever now's offset
    return Forecast(rate, projected, over_on)


def history_since(periods: Iterable[Period], now: datetime) -> date:
    """The first UTC day of spend that the spend so far in ``periods`` and the forecast's window
    (with a day to spare) need: where ``hive budget show`` and the alerts start reading."""
    return min([*(p.first_day for p in periods), Period.daily(now).first_day - timedelta(days=WINDOW_DAYS)])
