"""The Spark rollup (issue 15) against the DuckDB one, row by row, on the same events: counts and
sums exact, histograms the same buckets, percentiles within the histogram's error (1%). The events
include foreign files, so Spark must read exactly the rows DuckDB's views read: quarantined rows
(dated outside their partition's day or TS_MIN..TS_MAX, without ts, finer than a microsecond) left
out, a file DuckDB skips never read, a pandas file's nanoseconds and narrower types accepted.

Spark runs for real in local mode (PySpark, the `spark` test extra; Java 17): slow, once per module."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hive_core.settings import Settings
from hive_core.store.datadir import DataDir
from hive_core.store.events import ApiCall, Usage, arrow_schema
from jobs.rollup.daily import rollup
from tests.cases import DAY0, api_call, write_events, write_history
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
        Usage(ts=datetime.fromisoformat(f"{days[1]}T10:00:00+00:00"), request_id="byok-1", model="acme/fast", provider="Acme", is_byok=True,
              cost_usd=0.0001, cost_source="billed", upstream_cost_usd=0.02, prompt_tokens=5, completion_tokens=7, cache_write_tokens=3,
              prompt_image_tokens=11, web_search_requests=2),
        Usage(ts=datetime.fromisoformat(f"{days[1]}T11:00:00+00:00"), request_id="byok-2", model="acme/fast", provider="Acme", is_byok=True,
              cost_usd=None, cost_source="unknown", prompt_tokens=1, completion_tokens=1, completion_audio_tokens=4),
    ], writer="rare")
    _foreign_files(duck.data_dir, days[1])
    spark = Settings(data_dir=tmp_path_factory.mktemp("spark"))
    shutil.copytree(duck.data_dir / "events", spark.data_dir / "events")
    rollup(duck)
    # the command a cron line or a cluster runs, as a process (its JVM ends with it)
    done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", str(spark.data_dir), "rollup", "--engine", "spark",
                           "--json"], capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if not k.startswith("HIVE_")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "7 events quarantined in 2 files" in done.stderr and "noenvelope-000001.parquet: not a Hive" in done.stderr
    assert json.loads(done.stdout)["rolled_up"] == [d.isoformat() for d in days]
    return duck.datadir, spark.datadir


def _foreign_files(data_dir: Path, day: date) -> None:
    """Files of ``day``'s api_call partition that Hive's writer did not write (pyarrow, as pandas
    and other tools write them): 7 quarantined rows in 2 files, 2 rows kept, 1 file skipped."""
    partition = DataDir(data_dir).partition("api_call", day)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)

    def table(ts: list[datetime | None], first: int) -> pa.Table:
        rows = [api_call(first + i, model="acme/fast", served_model="acme/fast", provider="Acme", request_type="chat",
                         task_category="chat", latency_ms=100.0 + 50 * i).model_dump() for i in range(len(ts))]
        return pa.Table.from_pylist(rows, schema=arrow_schema(ApiCall)).set_column(
            1, "ts", pa.array(ts, pa.timestamp("us", tz="UTC")))

    assert arrow_schema(ApiCall).names[1] == "ts"
    # kept; two dated the next day (in the same run of days: Spark once counted them there), one the
    # day before, one in 9999, one without ts
    pq.write_table(table([start + timedelta(hours=13), start + timedelta(days=1, hours=10),
                          start + timedelta(days=1, hours=11), start - timedelta(hours=2),
                          datetime(9999, 12, 31, tzinfo=UTC), None], 900), partition / "foreign-000001.parquet")
    # pandas: nanoseconds (one whole microsecond, kept; one finer; one the next day), float32, int32,
    # large_string (Spark's own schema merge refuses float32 beside double)
    ns = int(start.timestamp()) * 10**9 + 14 * 3600 * 10**9
    pandas = table([start] * 3, 910)
    pandas = pa.table({name: (pa.array([ns + 1_000, ns + 1_500, ns + 86_400 * 10**9], pa.int64())
                              .cast(pa.timestamp("ns", tz="UTC")) if name == "ts"
                              else column.cast(pa.float32()) if name == "latency_ms"
                              else column.cast(pa.int32()) if name == "attempt"
                              else column.cast(pa.large_string()) if name == "model" else column)
                       for name, column in zip(pandas.column_names, pandas.columns, strict=True)})
    pq.write_table(pandas, partition / "pandas-000001.parquet")
    # no event_id: not a Hive event file, skipped by DuckDB (Spark once counted its row)
    pq.write_table(table([start + timedelta(hours=15)], 920).drop_columns(["event_id"]),
                   partition / "noenvelope-000001.parquet")


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
                    theirs = other[name]
                    assert isinstance(value, float) and isinstance(theirs, float), (key, name)
                    assert math.isclose(value, theirs, rel_tol=0.01), (key, name)
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
