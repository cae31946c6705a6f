"""Per-model performance from the rollups: percentiles within 1 % of exact over a range, success and
error mix, health thresholds, quality; library and ``hive models performance`` (TestCli)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from hive_core.period import Period
from hive_core.settings import Settings
from hive_core.store.events import QualityRating
from jobs.insights.performance import health, performance
from jobs.rollup.daily import rollup
from tests.cases import DAY0, write_events, write_history
from tests.plugins.cli import run_hive

PERIOD = Period.of_days(DAY0, DAY0 + timedelta(days=3))
FIELDS = ("model", "requests", "success_rate", "p50_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p95_ms",
          "tokens_per_s", "quality", "health")


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    write_history(data_dir, days=4, n=120)
    settings = Settings(data_dir=data_dir)
    rollup(settings)
    return settings


def exact(settings: Settings) -> dict[str, tuple[float, ...]]:
    sql = f"""select coalesce(served_model, model), quantile_cont(latency_ms, [0.5, 0.95, 0.99]) filter (status = 'ok'),
                     quantile_cont(ttft_ms, [0.5, 0.95]) filter (status = 'ok'), count(*) filter (status = 'ok') / count(*)
              from '{settings.data_dir}/events/api_call/*/*.parquet' group by all"""
    return {m: (*lat, *ttft, rate) for m, lat, ttft, rate in duckdb.connect().sql(sql).fetchall()}


def test_percentiles_within_1pct_of_exact(settings: Settings) -> None:
    rows = performance(settings, PERIOD)
    truth = exact(settings)
    assert {r.model for r in rows} == set(truth)
    for r in rows:
        want = truth[r.model]
        for got, value in zip((r.p50_ms, r.p95_ms, r.p99_ms, r.ttft_p50_ms, r.ttft_p95_ms), want[:5], strict=True):
            assert got is not None and abs(got - value) <= 0.01 * value
        assert r.success_rate == pytest.approx(want[5])
        assert r.errors.get("rate_limited", 0) == r.attempts - r.successes
        assert r.tokens_per_s is not None and 20 <= r.tokens_per_s <= 200


def test_model_filter_and_partial_period(settings: Settings) -> None:
    (row,) = performance(settings, Period.of_days(DAY0 + timedelta(days=1), DAY0 + timedelta(days=2)), "acme/slow")
    assert row.model == "acme/slow" and row.requests > 0
    assert performance(settings, PERIOD, "nobody/none") == []


def test_health_thresholds() -> None:
    assert health(0.999, 800.0, 100, 99) == "healthy"
    assert health(0.95, 800.0, 100, 95) == "degraded"
    assert health(0.999, 20_000.0, 100, 99) == "degraded"
    assert health(0.85, 800.0, 100, 85) == "unhealthy"
    assert health(0.999, 40_000.0, 100, 99) == "unhealthy"
    assert health(0.3, 800.0, 100, 30) == "unavailable"
    assert health(0.0, None, 5, 0) == "unavailable"
    assert health(0.0, None, 2, 0) == "unhealthy"  # too few attempts to call it down


def test_quality_from_ratings(settings: Settings) -> None:
    write_events(settings.data_dir, [QualityRating(ts=datetime(2026, 11, 11, 9, tzinfo=UTC),
                                                   request_id="x", score=0.8, model="acme/fast")], writer="rate")
    rows = {r.model: r for r in performance(settings, PERIOD)}
    assert (rows["acme/fast"].quality, rows["acme/fast"].quality_samples) == (0.8, 1)
    assert rows["zeta/mid"].quality is None


class TestCli:
    def test_percentiles_within_1pct_of_exact(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "models", "performance",
                                 "--period", f"{PERIOD.first_day}..{PERIOD.last_day}", "--json"], capsys)
        assert code == 0
        doc = json.loads(out)
        truth = exact(settings)
        assert {d["model"] for d in doc} == set(truth)
        for d in doc:
            assert set(FIELDS) <= set(d)
            assert abs(d["p95_ms"] - truth[d["model"]][1]) <= 0.01 * truth[d["model"]][1]
            assert d["health"] in {"healthy", "degraded", "unhealthy", "unavailable"}
        code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "models", "performance",
                                 "--period", f"{PERIOD.first_day}..{PERIOD.last_day}", "--model", "acme/fast"], capsys)
        assert code == 0 and "acme/fast" in out and "acme/slow" not in out

    def test_model_filter_and_partial_period(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "models", "performance", "--period", "today",
                                 "--model", "nobody/none"], capsys)
        assert code == 0 and "no calls to nobody/none" in out
