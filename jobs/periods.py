"""TRANSITIONAL: periods are :mod:`hive_core.period`'s; this module goes once its last users
(``hive_cli/hive/analytics.py``, ``hive_cli/hive/models_performance.py`` and ``bench/bench_jobs.py``)
import that instead. It hands out the one :class:`hive_core.period.Period`, with the inclusive
``since``/``until`` names those users still read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hive_core import period as _period
from hive_core.clock import system_clock

__all__ = ["PERIOD_HELP", "Period", "parse_period"]

PERIOD_HELP = _period.PERIOD_HELP


class Period(_period.Period):
    """:class:`hive_core.period.Period` built from, and read as, inclusive UTC days."""

    __slots__ = ()

    def __init__(self, since: date, until: date, label: str = "") -> None:
        start = datetime.combine(since, time(), tzinfo=UTC)
        super().__init__(start, datetime.combine(until, time(), tzinfo=UTC) + timedelta(days=1), label)

    @property
    def since(self) -> date:
        return self.first_day

    @property
    def until(self) -> date:
        return self.last_day


def parse_period(text: str, today: date | None = None) -> Period:
    """:func:`hive_core.period.parse_period` relative to ``today`` (default the system's UTC day)."""
    day = today or system_clock().date()
    parsed = _period.parse_period(text, datetime.combine(day, time(), tzinfo=UTC))
    return Period(parsed.first_day, parsed.last_day, parsed.label)
