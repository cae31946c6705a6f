"""Issue 15: the Spark rollup (``local[2]``) beside the DuckDB one on the same 10M events.

Both rebuild the 30 simulated days of ``bench_jobs`` (~333k events a day) as whole processes, the
way cron or a cluster runs them: ``hive-jobs rollup --rebuild`` and the same with ``--engine spark``,
alternated on one store so the machine's load falls on both alike. Spark is expected to be slower on
one machine: the figure is the cost of the cluster path, not a target. Its JVM start-up (a process
that only starts and stops the Spark session the rollup uses) is reported as a share of its time.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from datetime import UTC, datetime

from bench.bench_jobs import HIVE_JOBS, fresh_copy, process_seconds, simulated
from bench.common import Figure

#: rebuilds of each engine (alternated); Spark's take about 4 minutes each on 2 cores
RUNS = 2

_START_STOP = ("from jobs.rollup.spark import spark_session, stop_spark\n"
               "stop_spark(spark_session())\n")


def run() -> list[Figure]:
    """Spark's and DuckDB's rebuild times, their ratio, and the JVM's share of Spark's."""
    end = datetime.now(UTC).date()
    work = fresh_copy(simulated("month", 30, end), "spark")
    rebuild = [*HIVE_JOBS, "--data-dir", str(work), "rollup", "--rebuild"]
    subprocess.run([*HIVE_JOBS, "--data-dir", str(work), "rollup", "--daily"], check=True, capture_output=True)
    duck: list[float] = []
    spark: list[float] = []
    for _ in range(RUNS):
        duck.append(process_seconds(rebuild))
        spark.append(process_seconds([*rebuild, "--engine", "spark"]))
    startup = statistics.median(process_seconds([sys.executable, "-c", _START_STOP]) for _ in range(RUNS))
    shutil.rmtree(work, ignore_errors=True)
    duck_s, spark_s = statistics.median(duck), statistics.median(spark)
    return [
        Figure("hive-jobs rollup --rebuild --engine spark, 30 days / 10M events (process)", spark_s, "s",
               "- (cost of the cluster path)", None, peer="--engine duckdb (process)", peer_value=duck_s,
               ratio=spark_s / duck_s, note=f"Spark local[2]; medians of {RUNS} alternated runs each; ratio = Spark / DuckDB"),
        Figure("Spark session start + stop (JVM), share of the Spark rebuild", startup, "s", "-", None,
               peer="the Spark rebuild", peer_value=spark_s, ratio=startup / spark_s,
               note="python -c 'stop_spark(spark_session())': what any Spark run pays before its first task"),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure)
