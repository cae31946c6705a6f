"""The daily rollup's rows computed by Spark, for when one machine is not enough.

``hive-jobs rollup --engine spark`` (or ``spark-submit jobs/rollup/spark.py --data-dir DIR``) runs the
rollup exactly as :mod:`jobs.rollup.daily` does - the same stale days, the same files, state and
months, the same post steps - except that each run of stale days' rows comes from Spark instead of
DuckDB. Spark reads exactly the rows DuckDB's views read (:func:`_events`) and aggregates on its
executors; only the rollup rows, a few thousand a day, reach the driver, which writes them through the
same writer. So a
Spark-made day and a DuckDB-made day are the same table: same columns and types, same histogram
buckets (``jobs.rollup.histogram``: ``ceil(ln(x) / ln(GAMMA))``), counts and costs equal (costs are
summed as DECIMAL(38, 12) like the SQL), and the percentiles are Spark's exact ``percentile``, which
interpolates like DuckDB's ``quantile_cont``.

This mirrors ``queries/rollups/daily.sql`` column by column; ``tests/test_rollup_spark.py`` compares
the two row by row on a simulated store with foreign files, so a change to one that the other lacks
fails there.

**The same rows as DuckDB's views** (``queries.connect``), by the store's own rules rather than
Spark's: the files come from the checked listing (:func:`hive_core.store.event_files.list_event_files`:
strays, superseded compaction inputs and files DuckDB skips - not Parquet, no envelope, a column no
lossless cast makes the schema's - are never read); every file is read with the event type's schema
(columns an older file lacks are NULL; the lossless casts DuckDB accepts - narrower integers,
``float32``, ``large_string``, dictionaries, other timestamp units, naive timestamps as UTC - are
Spark's type widening too, where merging the files' own schemas fails); and a *checked* file's rows
pass the row rules of :mod:`hive_core.store.quarantine` (``ts`` present, inside ``TS_MIN..TS_MAX``,
on its partition's UTC day, a whole microsecond), read one (``ts`` type, day) group at a time as
DuckDB does. A nanosecond ``ts`` reaches Spark as its integer (Spark has no nanosecond type:
``spark.sql.legacy.parquet.nanosAsLong``), so the sub-microsecond rule is checked before the cast. A
file that passes the checks yet cannot be read fails the run, as it fails DuckDB's query (Spark's
``ignoreCorruptFiles`` would drop its events silently).

The Spark session: inside ``spark-submit`` the submitted one (its master, its cluster); otherwise
``local[2]`` (``HIVE_SPARK_MASTER`` overrides). PySpark is an optional dependency (``hive[spark]``).
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobs.rollup import histogram
from jobs.rollup.state import SOURCES

if TYPE_CHECKING:
    import pyarrow as pa

    from hive_core.store.datadir import DataDir

__all__ = ["KEYS", "spark_rows", "spark_session", "stop_spark"]

KEYS = ("day", "model", "provider", "request_type", "task_category")
#: the percentiles of a row, as in jobs.rollup.monthly.QUANTILES
_QS = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
_COST = "decimal(38,12)"


def spark_session() -> Any:
    """The submitted session under ``spark-submit``, else a ``local[2]`` one in UTC."""
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError:
        from hive_core.errors import ConfigError

        raise ConfigError("the Spark engine needs PySpark: pip install 'hive[spark]' (and Java 17+)") from None
    builder = SparkSession.builder.appName("hive-rollup")
    if not SparkConf().contains("spark.master"):  # not under spark-submit
        builder = builder.master(os.environ.get("HIVE_SPARK_MASTER", "local[2]"))
    return (builder.config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.legacy.parquet.nanosAsLong", "true")  # see _checked_rows
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")  # a progress bar per stage on stderr: cron mails it
            .getOrCreate())


def stop_spark(spark: Any) -> None:
    """Stop the session and, when this process launched its JVM (not under ``spark-submit``), the
    JVM too: a library call must not leave a Java process behind (the next one starts a new one)."""
    from pyspark import SparkContext

    spark.stop()
    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    if gateway is None or proc is None:
        return
    gateway.shutdown()
    if proc.stdin is not None:
        proc.stdin.close()  # the launched JVM exits when its stdin closes
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # a JVM that will not exit is killed
        proc.kill()
        proc.wait()
    SparkContext._gateway = None
    SparkContext._jvm = None


def spark_rows(spark: Any, datadir: DataDir, first: date, last: date, schema: pa.Schema) -> pa.Table:
    """The daily rollup rows of ``first..last`` (what ``rollup_rows`` returns), cast to ``schema``."""
    import pyarrow as pa

    frames = {t: _events(spark, datadir, t, first, last) for t in SOURCES}
    if frames["api_call"] is None and frames["usage"] is None and frames["stream_outcome"] is None:
        return schema.empty_table()
    table = _rows(frames).toArrow()
    columns = [table[name].cast(schema.field(name).type) if name in table.column_names
               else pa.nulls(table.num_rows, schema.field(name).type) for name in schema.names]
    return pa.Table.from_arrays(columns, schema=schema)


def _events(spark: Any, datadir: DataDir, type_name: str, first: date, last: date) -> Any:
    """One event type's rows of the days that DuckDB's views hold (see the module docstring), as a
    DataFrame with its UTC ``day``; None when the days have no file."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from hive_core.store.event_files import list_event_files
    from hive_core.store.quarantine import groups
    from hive_core.store.schema_cache import event_schemas

    # the verdicts are cached per file: the run's store checked these same files already
    fileset = list_event_files(datadir.root, type_name, days=(first, last))
    schema = from_arrow_schema(event_schemas()[type_name])
    frames = []
    sound = [str(p) for p in fileset.files if p not in fileset.checked]
    if sound:
        frames.append(spark.read.schema(schema).parquet(*sound))
    frames.extend(_checked_rows(spark, schema, ts_type, day, [str(p) for p in paths])
                  for ts_type, day, paths in groups(fileset.checked))
    if not frames:
        return None
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other)
    frame = frame.withColumn("day", F.to_date("ts"))
    return frame.where((F.col("day") >= F.lit(first)) & (F.col("day") <= F.lit(last)))


def _checked_rows(spark: Any, schema: Any, ts_type: str, day: date, paths: list[str]) -> Any:
    """The rows of one group of checked files (one ``ts`` type, one partition day) that
    :func:`hive_core.store.quarantine.reason_sql` keeps, ``ts`` as the schema's timestamp."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StructField, StructType

    from hive_core.store.layout import TS_MAX, TS_MIN

    # ts as Spark sees this group's files (a nanosecond one: its integer); the rest, the schema's
    ts_kind = spark.read.parquet(paths[0]).schema["ts"].dataType
    read = StructType([field if field.name != "ts" else StructField("ts", ts_kind) for field in schema])
    frame = spark.read.schema(read).parquet(*paths)
    ts = F.col("ts")
    if isinstance(ts_kind, LongType):  # epoch nanoseconds; the 'sub_us' rule, then whole microseconds
        frame = frame.where(ts.isNotNull() & (ts % 1000 == 0)).withColumn("ts", F.timestamp_micros(F.expr("ts div 1000")))
    else:  # a naive timestamp means UTC, and the session's zone is UTC
        frame = frame.withColumn("ts", ts.cast("timestamp"))
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    kept = (ts.isNotNull() & (ts >= F.lit(TS_MIN)) & (ts < F.lit(TS_MAX))  # 'missing', 'range'
            & (ts >= F.lit(start)) & (ts < F.lit(start + timedelta(days=1))))  # 'day'
    return frame.where(kept)


def _col_or_null(frame: Any, name: str, kind: str) -> Any:
    from pyspark.sql import functions as F

    return F.col(name) if name in frame.columns else F.lit(None).cast(kind)


def _count_if(condition: Any) -> Any:
    from pyspark.sql import functions as F

    return F.count(F.when(condition, 1))


def _sum_if(condition: Any, column: Any) -> Any:
    from pyspark.sql import functions as F

    return F.sum(F.when(condition, column))


def _rows(frames: dict[str, Any]) -> Any:
    """queries/rollups/daily.sql in the DataFrame API: partial rows per source, stacked, summed per key."""
    from pyspark.sql import functions as F

    parts: list[Any] = []
    calls, values = None, None
    if frames["api_call"] is not None:
        calls = frames["api_call"].select(
            "day", F.coalesce("served_model", "model").alias("model"), "provider", "request_type",
            "task_category", "request_id", "attempt", "status", (F.col("status") == "ok").alias("ok"),
            "fallback_index", "latency_ms", "ttft_ms")
        parts.append(calls.groupBy(*KEYS).agg(
            _count_if(F.col("attempt") == 1).alias("first_attempts"), F.count(F.lit(1)).alias("attempts"),
            _count_if(F.col("ok")).alias("successes"), _count_if(~F.col("ok")).alias("errors")))
        parts.append(calls.where(F.col("fallback_index") > 0).groupBy(*KEYS)
                     .agg(F.countDistinct("request_id").alias("fallbacks")))
        errors = calls.where(~F.col("ok")).groupBy(*KEYS, "status").agg(F.count(F.lit(1)).alias("n"))
        parts.append(errors.groupBy(*KEYS).agg(F.sort_array(F.collect_list(F.struct("status", "n"))).alias("_errors"))
                     .select(*KEYS, F.col("_errors.status").alias("error_statuses"),
                             F.col("_errors.n").alias("error_counts")))
        values = _distributions(calls.where(F.col("ok")))
    if frames["usage"] is not None:
        usage = frames["usage"]
        cost = F.col("cost_usd").cast(_COST)
        byok = F.coalesce(_col_or_null(usage, "is_byok", "boolean"), F.lit(False))
        extra = ["cache_write_tokens", "prompt_audio_tokens", "prompt_image_tokens", "completion_audio_tokens",
                 "completion_image_tokens", "web_search_requests"]
        parts.append(usage.groupBy(*KEYS).agg(
            F.count(F.lit(1)).alias("usage_events"),
            *[F.sum(c).alias(c) for c in ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens")],
            *[F.sum(_col_or_null(usage, c, "bigint")).alias(c) for c in extra],
            F.sum(cost).alias("cost_usd"),
            _sum_if(F.col("cost_source") == "billed", cost).alias("cost_billed_usd"),
            _sum_if(F.col("cost_source") == "estimated", cost).alias("cost_estimated_usd"),
            _count_if(F.col("cost_usd").isNull()).alias("cost_unknown"),
            _count_if(byok).alias("byok_requests"),
            _sum_if(byok, cost).alias("byok_fee_usd"),
            _sum_if(byok, _col_or_null(usage, "upstream_cost_usd", "double").cast(_COST)).alias("byok_upstream_usd"),
            _count_if(byok & _col_or_null(usage, "upstream_cost_usd", "double").isNull()).alias("byok_upstream_unknown")))
    if frames["stream_outcome"] is not None:
        parts.append(_stream_rows(frames["stream_outcome"], parts[0] if calls is not None else None))
    stacked = parts[0]
    for part in parts[1:]:
        stacked = stacked.unionByName(part, allowMissingColumns=True)
    totals = stacked.groupBy(*KEYS).agg(*_totals())
    dist_columns = [f"{p}_{label}_ms" for p in ("latency", "ttft") for label, _ in _QS]
    lists = [f"{p}_{part}" for p in ("latency", "ttft") for part in ("buckets", "counts")]
    if values is None:
        totals = totals.select("*", *[F.lit(None).cast("double").alias(c) for c in dist_columns],
                               *[F.lit(None).cast("array<int>" if c.endswith("buckets") else "array<bigint>").alias(c)
                                 for c in lists])
    else:
        joined = totals.join(values, on=[totals[k].eqNullSafe(values[f"v_{k}"]) for k in KEYS], how="left")
        totals = joined.drop(*[f"v_{k}" for k in KEYS])
    # a row with no successful value: NULL percentiles, empty histograms (the SQL's coalesce to [])
    totals = totals.select(*[c for c in totals.columns if c not in lists],
                           *[F.coalesce(F.col(c), F.array().cast("array<int>" if c.endswith("buckets")
                                                                  else "array<bigint>")).alias(c) for c in lists])
    return totals.orderBy(*[F.col(k).asc_nulls_first() for k in KEYS])


def _totals() -> list[Any]:
    from pyspark.sql import functions as F

    def total(name: str) -> Any:
        return F.coalesce(F.sum(name), F.lit(0)).cast("bigint").alias(name)

    def usd(name: str) -> Any:
        return F.coalesce(F.sum(name).cast("double"), F.lit(0.0)).alias(name)

    first_attempts = F.coalesce(F.sum("first_attempts"), F.lit(0))
    fallbacks = F.coalesce(F.sum("fallbacks"), F.lit(0))
    attempts = F.coalesce(F.sum("attempts"), F.lit(0))
    return [
        (first_attempts + fallbacks).cast("bigint").alias("requests"),
        total("attempts"), total("successes"), total("errors"),
        (attempts - first_attempts - fallbacks).cast("bigint").alias("retries"),
        total("fallbacks"),
        F.coalesce(F.first("error_statuses", ignorenulls=True), F.array().cast("array<string>")).alias("error_statuses"),
        F.coalesce(F.first("error_counts", ignorenulls=True), F.array().cast("array<bigint>")).alias("error_counts"),
        *[total(c) for c in ("usage_events", "prompt_tokens", "completion_tokens", "reasoning_tokens",
                             "cached_tokens", "cache_write_tokens", "prompt_audio_tokens", "prompt_image_tokens",
                             "completion_audio_tokens", "completion_image_tokens", "web_search_requests")],
        usd("cost_usd"), usd("cost_billed_usd"), usd("cost_estimated_usd"), total("cost_unknown"),
        total("byok_requests"), usd("byok_fee_usd"), usd("byok_upstream_usd"), total("byok_upstream_unknown"),
        total("streams"), total("streams_cancelled"), total("streams_truncated"),
        usd("tokens_per_s_sum"), total("tokens_per_s_n"),
    ]


def _stream_rows(streams: Any, call_rows: Any | None) -> Any:
    """Streams per key; their provider is that of the call rows of the same (day, model, type, task)
    when there is exactly one and it is known (stream_outcome events carry none)."""
    from pyspark.sql import functions as F

    k4 = ["day", "model", "request_type", "task_category"]
    agg = streams.groupBy(*k4).agg(
        F.count(F.lit(1)).alias("streams"),
        _count_if(F.col("outcome") == "cancelled").alias("streams_cancelled"),
        _count_if(F.col("outcome") == "truncated").alias("streams_truncated"),
        F.sum(F.col("tokens_per_s").cast("decimal(38,6)")).alias("tokens_per_s_sum"),
        F.count("tokens_per_s").alias("tokens_per_s_n"))
    if call_rows is None:
        return agg.withColumn("provider", F.lit(None).cast("string"))
    providers = call_rows.groupBy(*k4).agg(
        F.when((F.countDistinct("provider") == 1) & (F.count("provider") == F.count(F.lit(1))),
               F.min("provider")).alias("provider"))
    joined = agg.join(providers, on=[agg[k].eqNullSafe(providers[k]) for k in k4], how="left")
    return joined.select(*[agg[k] for k in k4], providers["provider"], "streams", "streams_cancelled",
                         "streams_truncated", "tokens_per_s_sum", "tokens_per_s_n")


def _distributions(ok_calls: Any) -> Any:
    """Per key (as ``v_day``, ``v_model``...): exact P50/P95/P99 and the log-bucket histogram of
    latency and TTFT, NaN and NULL values left out as the SQL's list filter does."""
    from pyspark.sql import functions as F

    out = None
    for prefix, column in (("latency", "latency_ms"), ("ttft", "ttft_ms")):
        values = ok_calls.where(F.col(column).isNotNull() & ~F.isnan(column)).select(*KEYS, F.col(column).alias("x"))
        quantiles = values.groupBy(*KEYS).agg(F.percentile("x", F.array(*[F.lit(q) for _, q in _QS])).alias("_q"))
        bucket = F.when(F.col("x") > 0, F.ceil(F.log("x") / F.lit(histogram.LN_GAMMA))) \
            .otherwise(F.lit(histogram.ZERO_BUCKET)).cast("int")
        hist = (values.groupBy(*KEYS, bucket.alias("b")).agg(F.count(F.lit(1)).alias("c"))
                .groupBy(*KEYS).agg(F.sort_array(F.collect_list(F.struct("b", "c"))).alias("_h")))
        both = quantiles.alias("q").join(hist.alias("h"), on=[F.col(f"q.{k}").eqNullSafe(F.col(f"h.{k}")) for k in KEYS])
        both = both.select(*[F.col(f"q.{k}").alias(f"v_{k}") for k in KEYS],
                           *[F.col("q._q")[i].alias(f"{prefix}_{label}_ms") for i, (label, _) in enumerate(_QS)],
                           F.col("h._h.b").alias(f"{prefix}_buckets"), F.col("h._h.c").alias(f"{prefix}_counts"))
        if out is None:
            out = both
            continue
        merged = out.alias("a").join(both.alias("t"), on=[F.col(f"a.v_{k}").eqNullSafe(F.col(f"t.v_{k}")) for k in KEYS],
                                     how="full")
        out = merged.select(*[F.coalesce(F.col(f"a.v_{k}"), F.col(f"t.v_{k}")).alias(f"v_{k}") for k in KEYS],
                            *[F.col(f"a.{c}") for c in out.columns if not c.startswith("v_")],
                            *[F.col(f"t.{c}") for c in both.columns if not c.startswith("v_")])
    return out


