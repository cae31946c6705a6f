"""Cost analytics: totals equal the raw sum of usage.cost_usd, previous period, breakdowns, shares,
periods; library and ``hive analytics cost`` (TestCli)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

import queries
from hive_core.period import Period
from hive_core.settings import Settings
from hive_core.store.events import Usage
from jobs.insights.analytics import cost
from jobs.rollup.daily import rollup
from tests.cases import DAY0, day_events, write_events, write_history
from tests.plugins.cli import run_hive

PERIOD = Period.of_days(DAY0 + timedelta(days=3), DAY0 + timedelta(days=5))
DAY0_TS = datetime(DAY0.year, DAY0.month, DAY0.day, 23, 0, tzinfo=UTC)


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


def raw_sum(settings: Settings, since: date, until: date) -> float:
    with queries.connect(settings.data_dir) as store:
        sql = "select coalesce(sum(cost_usd), 0) from usage where cast(ts as date) between $s and $u"
        return float(store.con.execute(sql, {"s": since, "u": until}).fetchall()[0][0])


def six_days(settings: Settings) -> None:
    """Six days of events; the first four rolled up, then a late event and two days that are not."""
    write_history(settings.data_dir, days=4)
    rollup(settings)
    write_events(settings.data_dir, [e for i in (4, 5) for e in day_events(DAY0 + timedelta(days=i), n=40)], writer="new")
    write_events(settings.data_dir, day_events(DAY0 + timedelta(days=3), n=2, seed=7), writer="late")


def test_total_equals_raw_usage_sum(settings: Settings) -> None:
    six_days(settings)
    report = cost(settings, PERIOD, "model")
    assert round(report.total_usd, 2) == round(raw_sum(settings, PERIOD.first_day, PERIOD.last_day), 2)
    assert report.total_usd == pytest.approx(raw_sum(settings, PERIOD.first_day, PERIOD.last_day), abs=1e-9)
    assert report.previous_total_usd == pytest.approx(raw_sum(settings, DAY0, DAY0 + timedelta(days=2)), abs=1e-9)
    assert sum(r.cost_usd for r in report.rows) == pytest.approx(report.total_usd)
    assert sum(r.share for r in report.rows) == pytest.approx(1.0)


def test_superseded_usage_counts_once(settings: Settings) -> None:
    write_history(settings.data_dir, days=1)
    rollup(settings)
    with queries.connect(settings.data_dir) as store:
        eid, rid, model = store.con.execute("select event_id, request_id, model from usage limit 1").fetchall()[0]
    write_events(settings.data_dir, [Usage(ts=DAY0_TS, request_id=rid, model=model, cost_usd=100.0, cost_source="billed",
                                           supersedes=eid)], writer="reconcile")
    day = Period.of_days(DAY0, DAY0)
    assert cost(settings, day).total_usd == pytest.approx(raw_sum(settings, DAY0, DAY0), abs=1e-9)
    rollup(settings)
    assert cost(settings, day).total_usd == pytest.approx(raw_sum(settings, DAY0, DAY0), abs=1e-9)


def test_breakdowns(settings: Settings) -> None:
    six_days(settings)
    by_day = cost(settings, PERIOD, "day")
    assert [r.key for r in by_day.rows] == [str(PERIOD.first_day + timedelta(days=i)) for i in range(3)]
    for row in by_day.rows:
        day = date.fromisoformat(row.key)
        assert row.cost_usd == pytest.approx(raw_sum(settings, day, day), abs=1e-9)
    by_task = cost(settings, PERIOD, "task")
    assert {r.key for r in by_task.rows} == {"chat", "code-generation", "(none)"}
    by_type = cost(settings, PERIOD, "request-type")
    assert {r.key for r in by_type.rows} == {"chat", "test"}
    report = cost(settings, PERIOD, "provider")
    assert report.billed_usd + report.estimated_usd == pytest.approx(report.total_usd)
    assert 0 < report.billed_share < 1  # type: ignore[operator]


def test_empty_store(settings: Settings) -> None:
    report = cost(settings, PERIOD)
    assert report.total_usd == 0 and report.rows == [] and report.change_pct is None


def byok_day(settings: Settings) -> None:
    """One day: a plain billed call, a BYOK call (OpenRouter's fee 0.001, the provider's 0.30 on the
    user's key), and a BYOK call of an older Hive, its provider price not recorded."""
    def usage(rid: str, cost_usd: float, **fields: object) -> Usage:
        return Usage(ts=DAY0_TS, request_id=rid, model="acme/fast", cost_usd=cost_usd, cost_source="billed",
                     **fields)  # type: ignore[arg-type]

    write_events(settings.data_dir, [usage("plain", 0.05, upstream_cost_usd=0.05, web_search_requests=2,
                                           cache_write_tokens=300),
                                     usage("byok", 0.001, is_byok=True, upstream_cost_usd=0.30),
                                     usage("old-byok", 0.0, is_byok=True)])


def test_byok_upstream_is_reported_apart_from_openrouters_charges(settings: Settings) -> None:
    """Finance reads total_usd as the OpenRouter invoice: BYOK fees are in it, the providers' BYOK
    bills are not (they are on the users' own keys); all_in adds them, and says when it is partial."""
    byok_day(settings)
    report = cost(settings, Period.of_days(DAY0, DAY0))
    assert report.total_usd == pytest.approx(0.051) == raw_sum(settings, DAY0, DAY0)
    assert (report.byok_requests, report.byok_upstream_unknown) == (2, 1)
    assert report.byok_fee_usd == pytest.approx(0.001) and report.byok_upstream_usd == pytest.approx(0.30)
    assert report.all_in_usd == pytest.approx(0.351)
    assert (report.web_search_requests, report.cache_write_tokens) == (2, 300)
    (row,) = report.rows
    assert (row.cost_usd, row.share, row.byok_requests) == (pytest.approx(0.051), 1.0, 2)
    assert row.byok_upstream_usd == pytest.approx(0.30)
    rollup(settings)  # the same from the rollup files
    assert cost(settings, Period.of_days(DAY0, DAY0)).as_dict() == report.as_dict()


class TestCli:
    def test_total_equals_raw_usage_sum(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        six_days(settings)
        period = f"{PERIOD.first_day}..{PERIOD.last_day}"
        code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "analytics", "cost", "--period", period, "--json"], capsys)
        doc = json.loads(out)
        assert code == 0 and {"total_usd", "previous_total_usd", "rows"} <= set(doc)
        assert round(doc["total_usd"], 2) == round(raw_sum(settings, PERIOD.first_day, PERIOD.last_day), 2)
        assert doc["previous_total_usd"] == pytest.approx(raw_sum(settings, DAY0, DAY0 + timedelta(days=2)), abs=1e-9)
        code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "analytics", "cost", "--period", period,
                                 "--by", "day"], capsys)
        assert code == 0 and f"${doc['total_usd']:,.2f}" in out and str(PERIOD.last_day) in out

    def test_periods(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = run_hive(["--data-dir", str(settings.data_dir), "analytics", "cost", "--period", "fortnight"],
                                capsys)
        # a usage error (the shared PERIOD type): one line naming the periods it accepts
        assert code == 2 and "unknown period 'fortnight': use today, yesterday, day, week" in err and err.count("\n") == 1

    def test_byok_upstream_is_reported_apart_from_openrouters_charges(
            self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        byok_day(settings)
        code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "analytics", "cost", "--period",
                                 f"{DAY0}..{DAY0}", "--json"], capsys)
        doc = json.loads(out)
        assert code == 0 and doc["total_usd"] == pytest.approx(0.051)
        assert (doc["byok_upstream_usd"], doc["all_in_usd"], doc["byok_upstream_unknown"]) == (
            pytest.approx(0.30), pytest.approx(0.351), 1)
        code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "analytics", "cost", "--period",
                                 f"{DAY0}..{DAY0}"], capsys)
        assert code == 0 and ("BYOK: 2 request(s) on your own provider keys: OpenRouter's fees $0.001 are in the "
                              "total; the providers billed $0.30 on your keys, not in the total (1 of unknown price)") in out
        assert "all-in, OpenRouter + BYOK providers: $0.35 (at least)" in out

    def test_empty_store(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "analytics", "cost", "--period", "today"], capsys)
        assert code == 0 and "no usage in this period" in out
