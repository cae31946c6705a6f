"""The Spark rollup (issue 15) against the DuckDB one, row by row, on the same events: counts and
sums exact, histograms the same buckets, percentiles within the histogram's error (1%).

Spark runs for real in local mode (PySpark, the `spark` test extra; Java 17): slow, once per module."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess

import pyarrow.parquet as pq
import pytest

from hive_core.settings import Settings
from hive_core.store.datadir import DataDir
from hive_core.store.events import Usage
from jobs.rollup.daily import rollup
from tests.cases import DAY0, write_events, write_history
from tests.plugins.cli import BIN

pytestmark = pytest.mark.slow

PERCENTILES = [f"{p}_{q}_ms" for p in ("latency", "ttft") for q in ("p50", "p95", "p99")]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataDir, DataDir]:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("Spark needs a Java 17 runtime: `make test` installs openjdk-17-jre-headless")
    duck = Settings(data_dir=tmp_path_factory.mktemp("duck"))
    days = write_history(duck.data_dir, days=4, n=300)
    # the rare parts of usage: BYOK with and without the upstream cost, cache writes, media, web search
    write_events(duck.data_dir, [
        Usage(ts=f"{days[1]}T10:00:00Z", request_id="byok-1", model="acme/fast", provider="Acme", is_byok=True,
              cost_usd=0.0001, cost_source="billed", upstream_cost_usd=0.02, prompt_tokens=5, completion_tokens=7, cache_write_tokens=3,
              prompt_image_tokens=11, web_search_requests=2),
        Usage(ts=f"{days[1]}T11:00:00Z", request_id="byok-2", model="acme/fast", provider="Acme", is_byok=True,
              cost_usd=None, cost_source="unknown", prompt_tokens=1, completion_tokens=1, completion_audio_tokens=4),
    ], writer="rare")
    spark = Settings(data_dir=tmp_path_factory.mktemp("spark"))
    shutil.copytree(duck.data_dir / "events", spark.data_dir / "events")
    rollup(duck)
    # the command a cron line or a cluster runs, as a process (its JVM ends with it)
    done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", str(spark.data_dir), "rollup", "--engine", "spark",
                           "--json"], capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if not k.startswith("HIVE_")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["rolled_up"] == [d.isoformat() for d in days]
    return duck.datadir, spark.datadir


def _rows(data: DataDir) -> dict[tuple[object, ...], dict[str, object]]:
    rows: dict[tuple[object, ...], dict[str, object]] = {}
    for path in sorted(data.rollups_daily.glob("*/part.parquet")):
        for row in pq.read_table(path).to_pylist():
            rows[tuple(row[k] for k in ("day", "model", "provider", "request_type", "task_category"))] = row
    return rows


def test_same_files_schema_and_rows(both: tuple[DataDir, DataDir]) -> None:
    duck, spark = both
    days = sorted(p.name for p in duck.rollups_daily.iterdir())
    assert days == sorted(p.name for p in spark.rollups_daily.iterdir())
    for day in days:
        assert pq.read_schema(duck.rollups_daily / day / "part.parquet") == \
            pq.read_schema(spark.rollups_daily / day / "part.parquet")
    a, b = _rows(duck), _rows(spark)
    assert list(a) == list(b) and len(a) > 50  # same keys in the same order


def test_counts_sums_and_histograms_equal_percentiles_within_1pct(both: tuple[DataDir, DataDir]) -> None:
    a, b = (_rows(d) for d in both)
    compared = 0
    for key, row in a.items():
        other = b[key]
        for name, value in row.items():
            if name in PERCENTILES:
                if value is None:
                    assert other[name] is None, (key, name)
                else:
                    assert other[name] is not None and math.isclose(value, other[name], rel_tol=0.01), (key, name)
            elif isinstance(value, float):
                assert value == pytest.approx(other[name], rel=1e-12, abs=1e-15), (key, name)
            else:
                assert value == other[name], (key, name)
            compared += 1
    assert compared > 2000


def test_a_spark_day_merges_with_duckdb_days(both: tuple[DataDir, DataDir]) -> None:
    """The month files and range percentiles read Spark's days unchanged."""
    duck, spark = both
    for part in ("days", "totals"):
        month = f"{DAY0:%Y-%m}"
        assert pq.read_table(duck.rollup_month(month, part)).equals(pq.read_table(spark.rollup_month(month, part)))
