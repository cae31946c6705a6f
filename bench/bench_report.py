"""``hive-jobs report --period month`` over a month of ~10M events, as a whole process (target <= 5 s).

The month is simulated once (``hive-jobs simulate --days 30 --calls-per-day 128000``, ~10M events,
~25 s) into a cached directory under the system temp dir, keyed by the simulation's parameters and
its end day, and rolled up (``hive-jobs rollup --daily``): the report reads the rollups, as it does
under cron (``run-due`` rolls up before reporting). The figure is the median of 3 timed runs of the
report process writing its self-contained HTML; the month covered is the 30 simulated days.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import Figure

__all__ = ["run"]

VENV_BIN = Path(sys.executable).parent
DAYS, PER_DAY, SEED = 30, 128_000, 1


def _store() -> Path:
    today = datetime.now(UTC).date()
    data = Path(tempfile.gettempdir()) / f"hive-bench-report-{DAYS}x{PER_DAY}-s{SEED}-{today}"
    done = data / ".ready"
    jobs = str(VENV_BIN / "hive-jobs")
    if not done.exists():
        subprocess.run([jobs, "--data-dir", str(data), "simulate", "--days", str(DAYS), "--calls-per-day",
                        str(PER_DAY), "--seed", str(SEED)], check=True, capture_output=True)
        done.touch()
    # Always: a no-op when the rollups are current, a catch-up when the cached store is older than
    # the rollup format (the report would otherwise time a live rollup of every stale day).
    subprocess.run([jobs, "--data-dir", str(data), "rollup", "--daily"], check=True, capture_output=True)
    return data


def run() -> list[Figure]:
    from bench.bench_jobs import compile_hive

    data = _store()
    compile_hive()  # timed as installed: bytecode written, not compiled on every run
    end = datetime.now(UTC).date()
    since = end - timedelta(days=DAYS - 1)
    samples = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(3):
            t = time.perf_counter()
            # The month section is END's calendar month; the report also reads the previous period and
            # the 30 days the suggestions cover, so every simulated day is read on every run.
            subprocess.run([str(VENV_BIN / "hive-jobs"), "--data-dir", str(data), "--as-of", f"{end}T12:00:00Z",
                            "report", "--period", "month", "--format", "html", "--out", out],
                           check=True, capture_output=True)
            samples.append(time.perf_counter() - t)
    value = statistics.median(samples)
    return [Figure("hive-jobs report --period month (10M events, process)", value, "s", "<= 5 s", value <= 5.0,
                   note=f"store {since}..{end}, rolled up; median of 3 runs; HTML written")]
