"""Budgets at UTC day, month and year boundaries, with reservations in flight across them.

Every instant comes from an injected clock or ``now=`` (never the wall clock), some of them written
in far time zones: a period is a UTC day or month whatever offset the caller's clock carries.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from hive_core.budget import Budget, Ledger, Limit
from hive_core.period import Period
from hive_core.store.datadir import DataDir
from hive_core.store.events import Usage
from jobs.budget.ledger import rebuild_ledger
from tests.plugins.emulator import MODEL
from tests.plugins.store import ListSink

LIMITS = [Limit("global", daily_usd=1.0, monthly_usd=1.5)]
BEFORE = datetime(2026, 12, 31, 23, 59, 50, tzinfo=UTC)  # ten seconds before a new day, month and year
AFTER = BEFORE + timedelta(seconds=15)
KIRITIMATI, HONOLULU = timezone(timedelta(hours=14)), timezone(timedelta(hours=-10))


def reserve(ledger: Ledger, rid: str, usd: float, now: datetime) -> list[str]:
    breaches = ledger.reserve(rid, request_id=rid, app=None, model=MODEL, amount_usd=usd, limits=LIMITS, now=now,
                              stale_after_s=900)
    return [b.window for b in breaches]


def test_limits_reset_at_utc_midnight_with_reservations_in_flight(data_dir: Path) -> None:
    with Ledger(DataDir(data_dir).ledger) as ledger:
        assert reserve(ledger, "a", 0.6, BEFORE.astimezone(HONOLULU)) == []  # 13:59:50 in Honolulu: Dec 31 UTC
        assert ledger.settle("a", 0.6, now=BEFORE)
        assert reserve(ledger, "b", 0.6, BEFORE) == ["daily"]  # 0.6 spent today + 0.6 > 1.0
        assert reserve(ledger, "b", 0.3, BEFORE) == []  # in flight across midnight
        # 10:00 on Jan 1 in Kiritimati is still Dec 31 in UTC: December's spend and limits apply
        early = datetime(2027, 1, 1, 10, 0, tzinfo=KIRITIMATI)
        assert reserve(ledger, "x", 0.7, early) == ["daily", "monthly"]
        # after midnight UTC: a new day, month and year; what is in flight still counts
        assert reserve(ledger, "c", 0.8, AFTER.astimezone(KIRITIMATI)) == ["daily"]  # 0.3 in flight + 0.8
        assert reserve(ledger, "c", 0.7, AFTER) == []  # 0.3 + 0.7 = the limit, not over it
        assert ledger.settle("b", 0.3, now=AFTER)  # reserved in December, settled in January
        assert ledger.spend("global", Period.daily(BEFORE)) == pytest.approx(0.6)
        assert ledger.spend("global", Period.monthly(BEFORE)) == pytest.approx(0.6)
        assert ledger.spend("global", Period.daily(AFTER)) == pytest.approx(0.3)
        assert ledger.spend("global", Period.monthly(AFTER)) == pytest.approx(0.3)
        assert Period.daily(AFTER).first_day == Period.monthly(AFTER).first_day == date(2027, 1, 1)
        assert ledger.reserved("global") == pytest.approx(0.7)


def test_a_request_straddling_midnight_counts_on_its_usage_event_day(data_dir: Path) -> None:
    """Reserved at 23:59:50, usage recorded at 23:59:59, settled when the budget's clock already
    reads the new day: the ledger counts it on Dec 31, like the event, so a rebuild changes nothing."""
    instants = iter([BEFORE, AFTER, AFTER])
    log = ListSink()
    with Budget(data_dir, clock=lambda: next(instants)) as budget:
        sink = budget.settling_sink(log)
        reservation = budget.reserve(MODEL, "hi")
        sink.record(Usage(ts=BEFORE + timedelta(seconds=9), request_id=reservation.request_id, model=MODEL,
                          cost_usd=0.25, cost_source="billed"))
        assert reservation.state == "settled"
        day = budget.ledger.spend_by_day()
    assert day == {("global", "2026-12-31"): 0.25, (f"model:{MODEL}", "2026-12-31"): 0.25}
    from ingest.log import EventLog

    with EventLog(data_dir) as events:
        events.record_many(log.events)
    rebuild_ledger(data_dir, now=AFTER)
    with Ledger(DataDir(data_dir).ledger) as ledger:
        assert ledger.spend_by_day() == day
