"""The ranking table: measured rows per (task, model) and ("*", model), Wilson bounds, shrinkage to
priors, quality from ratings, written by every rollup and by ``hive-jobs rankings`` (TestCli)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from hive_core.selection.rankings import (
    DEFAULT_PRIOR,
    Metrics,
    load_rankings,
    ranking_schema,
    strategy_scores,
    wilson_lower,
)
from hive_core.settings import Settings
from hive_core.store.events import Event, QualityRating
from jobs.pipeline import rollup
from jobs.rankings.table import rankings
from tests.cases import day_events, write_events
from tests.plugins.cli import run_jobs

TODAY = datetime.now(UTC).date()  # the suite's clock (HIVE_TEST_NOW moves it before this import)
#: every run of this module acts at noon of TODAY: the history is dated from TODAY, and a run that
#: crosses UTC midnight (HIVE_TEST_NOW=...T23:59:30Z) must not move the window under it
NOON = datetime.combine(TODAY, time(12), UTC)
AS_OF = ["--as-of", NOON.isoformat()]


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, as_of=NOON)


def history(settings: Settings, *, failing: str | None = "acme/slow", days: int = 3, n: int = 80) -> None:
    """Two models of equal price and speed, ``n // 2`` requests each a day; ``failing`` fails half its
    attempts with server errors. Each model's requests are made on their own: drawn from both at
    random, a small ``n`` left one model out on some dates (all 4 of n=4 were one model's on one
    day in 8), and the tests that read both rows failed with the calendar."""
    models = {"acme/fast": ("Acme", 500.0, 0.0), "acme/slow": ("Acme", 500.0, 0.0)}
    if failing:
        models[failing] = ("Acme", 500.0, 0.5)
    events: list[Event] = []
    for i in range(days):
        for k, (model, spec) in enumerate(sorted(models.items())):
            # seeds apart per model: request ids are "<day>-<seed>-<i>"
            for e in day_events(TODAY - timedelta(days=i), n=n // 2, seed=2 * i + k, models={model: spec}):
                if getattr(e, "status", None) == "rate_limited":
                    e = e.model_copy(update={"status": "server_error", "http_status": 502})
                events.append(e)
    write_events(settings.data_dir, events)


def table(settings: Settings) -> dict[tuple[str, str], dict[str, object]]:
    rows = pq.read_table(settings.datadir.rankings_file).to_pylist()
    return {(r["task_category"], r["model"]): r for r in rows}


def test_failing_model_is_demoted(settings: Settings) -> None:
    history(settings)
    report = rollup(settings)
    assert report.steps["rankings"].rows > 0
    rows = table(settings)
    fast, slow = rows[("*", "acme/fast")], rows[("*", "acme/slow")]
    assert fast["success_rate"] == 1.0 and 0.3 < slow["success_rate"] < 0.8  # type: ignore[operator]
    for strategy in ("score_balanced", "score_performance", "score_quality_first", "score_cost_optimized"):
        assert fast[strategy] > slow[strategy], strategy  # type: ignore[operator]
    loaded = load_rankings(settings.data_dir)
    assert loaded.metrics(None, "acme/slow") is not None


def test_rows_follow_the_contract(settings: Settings) -> None:
    history(settings)
    report = rankings(settings)
    written = pq.read_table(report.path)
    assert written.schema.equals(ranking_schema())
    rows = table(settings)
    tasks = {task for task, _ in rows}
    assert tasks == {"*", "chat", "code-generation"}  # requests without a task count in "*" only
    for row in rows.values():
        assert row["window_days"] == 7
        assert row["success_lower"] == pytest.approx(wilson_lower(row["successes"], row["samples"]))  # type: ignore[arg-type]
    calls = f"{settings.datadir.event_type('api_call')}/*/*.parquet"
    for model in ("acme/fast", "acme/slow"):
        star = rows[("*", model)]
        samples, ok = duckdb.connect().sql(f"select count(*) filter (status <> 'cancelled'), count(*) filter (status = 'ok') "
                                 f"from '{calls}' where model = '{model}'").fetchall()[0]
        assert (star["samples"], star["successes"]) == (samples, ok)
        tagged = sum(r["samples"] for (t, m), r in rows.items() if m == model and t != "*")  # type: ignore[misc]
        assert 0 < tagged < samples  # the untagged requests are in "*" only
        assert star["cost_per_request_usd"] > 0  # type: ignore[operator]


def test_scores_are_the_contract_functions(settings: Settings) -> None:
    history(settings, failing=None, days=1, n=10)
    rankings(settings)
    row = table(settings)[("*", "acme/fast")]
    metrics = Metrics(samples=row["samples"], success_rate=row["success_rate"], success_lower=row["success_lower"],  # type: ignore[arg-type]
                      latency_p95_ms=row["latency_p95_ms"], ttft_p50_ms=row["ttft_p50_ms"],  # type: ignore[arg-type]
                      cost_per_request_usd=row["cost_per_request_usd"], quality=None, quality_samples=0)  # type: ignore[arg-type]
    expected = strategy_scores(metrics, DEFAULT_PRIOR)
    assert row["score_balanced"] == pytest.approx(expected["balanced"])
    assert row["score_cost_optimized"] == pytest.approx(expected["cost-optimized"])


def test_small_samples_stay_near_the_prior(settings: Settings) -> None:
    history(settings, failing="acme/slow", days=1, n=4)
    rankings(settings)
    rows = table(settings)
    prior_only = strategy_scores(Metrics(), DEFAULT_PRIOR)["balanced"]
    for model in ("acme/fast", "acme/slow"):
        row = rows[("*", model)]
        assert row["samples"] < 10  # type: ignore[operator]
        assert abs(row["score_balanced"] - prior_only) < 0.1  # type: ignore[operator]


def test_catalog_priors_are_used_when_synced(settings: Settings, catalog_path: Path) -> None:
    history(settings, failing=None, days=1, n=10)
    assert rankings(settings).priors.startswith("neutral")
    settings.datadir.catalog_file.parent.mkdir(parents=True)
    shutil.copy(catalog_path, settings.datadir.catalog_file)
    assert rankings(settings).priors == "catalog"


def test_quality_comes_from_ratings(settings: Settings) -> None:
    history(settings, failing=None, days=1, n=20)
    rid = f"{TODAY}-0-3"
    write_events(settings.data_dir, [QualityRating(ts=NOON, request_id=rid, score=0.25),
                                     QualityRating(ts=NOON, request_id=rid, score=0.75)], writer="rater")
    rankings(settings)
    rated = [r for r in table(settings).values() if r["quality_samples"]]
    assert {r["task_category"] for r in rated} >= {"*"}
    assert all(r["quality"] == 0.5 and r["quality_samples"] == 2 for r in rated)


def test_quality_comes_from_ratings_after_a_rollup(settings: Settings) -> None:
    """The pipeline's rollup shares its store (the rollup's views only) with the rankings step, which
    adds the ratings' view to it: the ratings are read through it."""
    history(settings, failing=None, days=1, n=20)
    rid = f"{TODAY}-0-3"
    write_events(settings.data_dir, [QualityRating(ts=NOON, request_id=rid, score=0.25),
                                     QualityRating(ts=NOON, request_id=rid, score=0.75)], writer="rater")
    report = rollup(settings)
    assert report.rolled_up == [TODAY] and report.steps["rankings"].rows
    rated = [r for r in table(settings).values() if r["quality_samples"]]
    assert {r["task_category"] for r in rated} >= {"*"}
    assert all(r["quality"] == 0.5 and r["quality_samples"] == 2 for r in rated)


def test_empty_store_writes_an_empty_table(settings: Settings) -> None:
    report = rankings(settings)
    assert report.rows == 0 and pq.read_table(report.path).num_rows == 0


def test_corrupt_table_is_rewritten(settings: Settings) -> None:
    """The table is derived data: the job never reads it, so a torn one is simply replaced."""
    history(settings, days=1, n=20)
    settings.datadir.rankings.mkdir()
    settings.datadir.rankings_file.write_bytes(b"PAR1 torn")
    assert rankings(settings).rows > 0
    assert load_rankings(settings.data_dir).models() == {"acme/fast", "acme/slow"}


def test_window_follows_the_settings_clock(settings: Settings) -> None:
    """One clock: the window ends on the settings' day (or ``today``), whatever the wall clock says."""
    history(settings, failing=None, days=3, n=10)
    assert rankings(settings, window_days=1).rows > 0
    later = settings.replace(as_of=NOON + timedelta(days=5))
    assert rankings(later, window_days=3).rows == 0  # TODAY is outside the 3 days before the 5th day on
    assert rankings(later, window_days=6).rows > 0
    assert rankings(later, window_days=1, today=TODAY).rows > 0


class TestCli:
    def test_failing_model_is_demoted(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        history(settings)
        run_jobs(["--data-dir", str(settings.data_dir), *AS_OF, "rollup"], capsys)
        code, out, _ = run_jobs(["--data-dir", str(settings.data_dir), *AS_OF, "rankings", "--window", "3"], capsys)
        assert code == 0 and "rows for 2 models over 3 days" in out
        rows = table(settings)
        assert rows[("*", "acme/fast")]["score_balanced"] > rows[("*", "acme/slow")]["score_balanced"]  # type: ignore[operator]

    def test_empty_store_writes_an_empty_table(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run_jobs(["--data-dir", str(settings.data_dir), *AS_OF, "rankings", "--json"], capsys)
        assert code == 0 and '"rows": 0' in out

    def test_corrupt_table_is_rewritten(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        history(settings, days=1, n=20)
        settings.datadir.rankings.mkdir()
        settings.datadir.rankings_file.write_bytes(b"PAR1 torn")
        code, out, err = run_jobs(["--data-dir", str(settings.data_dir), *AS_OF, "rankings"], capsys)
        assert code == 0 and "rows for 2 models" in out and err == ""
        assert load_rankings(settings.data_dir).models() == {"acme/fast", "acme/slow"}


def test_the_window_rows_are_in_day_order_whichever_source_each_day_came_from(settings: Settings) -> None:
    """Rows just rolled up (``known``) and rows read from the files merge in one order: float sums
    then add up the same way, so the table does not depend on which days the last run recomputed."""
    from jobs.rollup.daily import read_day_tables
    from jobs.rollup.period_rows import fine_rows

    history(settings, days=4, n=30)
    rollup(settings)
    since = TODAY - timedelta(days=3)
    files = read_day_tables(settings.datadir, since, TODAY)
    assert len(files) == 4
    early = {d: rows for d, rows in files.items() if d <= since + timedelta(days=1)}  # as if just recomputed
    mixed, stored = fine_rows(settings, since, TODAY, known=early), fine_rows(settings, since, TODAY)
    assert mixed is not None and stored is not None
    assert mixed.to_pylist() == stored.to_pylist()
    before = table(settings)
    rankings(settings, known=early)
    assert {k: {**r, "computed_at": None} for k, r in table(settings).items()} == \
        {k: {**r, "computed_at": None} for k, r in before.items()}
