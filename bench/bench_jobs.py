"""Batch-job figures: the daily rollup as a whole process (one day; 30 days rebuilt, side by side
with a bare DuckDB group-by over the same columns) and percentiles over 365 days from rollups.

Data is simulated once (``hive-jobs simulate``'s library) and cached under
``$TMPDIR/hive-bench-jobs``; 365 days of rollups are made by copying the 30 rolled-up days'
files to earlier dates (rewriting only the ``day`` column), which has the shape of a real year
without simulating 120M events.
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.common import Figure, median_time

CACHE = Path(os.environ.get("HIVE_BENCH_CACHE", Path(tempfile.gettempdir()) / "hive-bench-jobs"))
REPO = Path(__file__).resolve().parent.parent
CALLS_PER_DAY = 127_300  # ~333,000 events a day (api_call + usage + stream_outcome)
SEED = 11
HIVE_JOBS = [str(Path(sys.executable).with_name("hive-jobs"))]

BARE = {
    "api_call": "cast(ts as date), coalesce(served_model, model), provider, request_type, task_category, "
                "count(request_id), count(*), count(status), sum(attempt), sum(fallback_index), "
                "sum(latency_ms), sum(ttft_ms)",
    "usage": "cast(ts as date), model, provider, request_type, task_category, count(*), sum(prompt_tokens), "
             "sum(completion_tokens), sum(reasoning_tokens), sum(cached_tokens), sum(cost_usd), count(cost_source)",
    "stream_outcome": "cast(ts as date), model, request_type, task_category, count(*), count(outcome), "
                      "sum(tokens_per_s)",
}


def simulated(name: str, days: int, end: date) -> Path:
    """A cached simulated store (events only)."""
    from jobs.simulate.simulate import simulate

    root = CACHE / f"{name}-{days}d-{CALLS_PER_DAY}-{SEED}-{end}"
    marker = root / ".complete"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        simulate(root, days=days, calls_per_day=CALLS_PER_DAY, seed=SEED, end=end)
        marker.touch()
    return root


def fresh_copy(src: Path, name: str) -> Path:
    """A copy of a store's events without rollups, state or rankings."""
    dst = CACHE / "work" / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src / "events", dst / "events")
    return dst


def process_seconds(args: list[str]) -> float:
    return process_times(args)[0]


def process_times(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process: on a shared 2-core machine the wall time of a
    short job is mostly waiting, its CPU time much less so."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def compile_hive() -> None:
    """Write current bytecode for Hive's packages, as installing them does (as bench_selector does):
    the jobs are timed as a user runs them, not compiling the ~70 modules of a checkout on every
    run (this environment sets PYTHONDONTWRITEBYTECODE: ~90 ms of CPU of a daily rollup process)."""
    for package in ("hive", "hive_core", "hive_cli", "ingest", "jobs", "queries"):
        compileall.compile_dir(REPO / package, quiet=1)


def _bare_scan_seconds(data_dir: Path) -> float:
    """A bare DuckDB group-by of the same columns, as a whole process like ours."""
    lines = ["import duckdb, glob", "con = duckdb.connect()", "con.execute(\"SET TimeZone='UTC'\")"]
    for kind, cols in BARE.items():
        files = f"sorted(glob.glob({str(data_dir / 'events' / kind / '*' / '*.parquet')!r}))"
        lines.append(f"con.sql('select {cols} from read_parquet($f) group by all', params={{'f': {files}}}).fetchall()")
    return process_seconds([sys.executable, "-c", "\n".join(lines)])


def _year_of_events(month_src: Path, end: date) -> Path:
    """365 days of events (~120M): the 30 simulated days' files copied to earlier dates, their ``ts``
    shifted by whole days (faster than simulating 120M events; the same shape per day)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from hive_core.store.datadir import DataDir
    from hive_core.store.layout import partition_date

    root = CACHE / f"year-events-{CALLS_PER_DAY}-{SEED}-{end}"
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    src, dst = DataDir(month_src), DataDir(root)
    for kind in BARE:
        partitions = sorted((p for p in src.event_type(kind).iterdir() if partition_date(p)), key=lambda p: p.name)
        for i in range(365):
            day = end - timedelta(days=i)
            origin = partitions[i % len(partitions)]
            shift = day - partition_date(origin)  # type: ignore[operator]
            target = dst.partition(kind, day)
            target.mkdir(parents=True, exist_ok=True)
            for file in sorted(origin.glob("*.parquet")):
                table = pq.read_table(file)
                ts = table["ts"]
                shifted = pc.add(ts, pa.scalar(shift, pa.duration("us")))
                table = table.set_column(table.schema.get_field_index("ts"), table.schema.field("ts"), shifted)
                pq.write_table(table, target / file.name)
    (root / ".complete").touch()
    return root


def _peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one process, from its own rusage."""
    start = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{args} exited {child.returncode}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def memory_figures(month: Path, end: date) -> list[Figure]:
    """Issue 15: rebuild peak RSS for 30 and 365 days of ~333k events/day (flat), time per million
    events beside a bare DuckDB group-by of the same columns."""
    from hive_core.settings import Settings

    year = _year_of_events(month, end)
    limit = Settings.from_env({}).memory_limit
    figures: list[Figure] = []
    results = {}
    for name, store in (("30 days", month), ("365 days", year)):
        work = fresh_copy(store, f"memory-{name.split()[0]}")
        subprocess.run([*HIVE_JOBS, "--data-dir", str(work), "rollup", "--daily"], check=True, capture_output=True)
        seconds, rss = _peak_rss_mb([*HIVE_JOBS, "--data-dir", str(work), "rollup", "--rebuild"])
        events = _event_count(work)
        bare = _bare_scan_seconds(work)
        results[name] = rss
        figures.append(Figure(f"rollup --rebuild peak RSS, {name} / {events / 1e6:.0f}M events", rss, "MB",
                              f"<= {limit / 1e6:,.0f} MB", rss * 1e6 <= limit,
                              note="HIVE_MEMORY_LIMIT default: a quarter of the RAM"))
        figures.append(Figure(f"rollup --rebuild time per 1M events, {name}", seconds / events * 1e6, "s",
                              "<= 1.8x bare", seconds / bare <= 1.8, peer="bare DuckDB group-by (process)",
                              peer_value=bare / events * 1e6, ratio=seconds / bare))
        shutil.rmtree(work, ignore_errors=True)
    flat = results["365 days"] / results["30 days"]
    figures.append(Figure("rebuild peak RSS, 365 days / 30 days", flat, "x", "<= 1.2x", flat <= 1.2))
    return figures


def _event_count(data_dir: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for kind in BARE
               for f in (data_dir / "events" / kind).glob("*/*.parquet"))


def _year_of_rollups(month_src: Path, end: date) -> Path:
    """365 days of rollups: the 30 real days' files copied to earlier dates (day column rewritten)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hive_core.store.datadir import DataDir
    from jobs.rollup.state import RollupState

    root = CACHE / f"year-v4-{end}"  # v4: rollup format daily-v4
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    src, dst = DataDir(month_src), DataDir(root)
    days = sorted(RollupState.load(src.rollup_state).days)
    from jobs.rollup.monthly import day_model_rows, write_month

    months: dict[str, dict[date, pa.Table | None]] = {}
    for i in range(365):
        day = end - timedelta(days=i)
        table = pq.read_table(src.rollup_day(days[i % len(days)]))
        table = table.set_column(0, "day", pa.array([day] * table.num_rows, pa.date32()))
        path = dst.rollup_day(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        months.setdefault(day.strftime("%Y-%m"), {})[day] = day_model_rows(table)
    for month, tables in months.items():
        write_month(dst, month, tables)
    (root / ".complete").touch()
    return root


def run() -> list[Figure]:
    """The jobs figures (a few minutes on 2 cores the first time; cached data after that)."""
    from hive_core.period import Period
    from jobs.insights.performance import performance

    end = datetime.now(UTC).date()
    figures: list[Figure] = []
    compile_hive()

    day_store = simulated("day", 1, end)
    one_s, one_cpu = min(process_times([*HIVE_JOBS, "--data-dir", str(fresh_copy(day_store, f"one-day-{i}")),
                                        "rollup", "--daily"]) for i in range(3))
    one = CACHE / "work" / "one-day-0"
    figures.append(Figure("hive-jobs rollup --daily, 1 day / 333k events (process)", one_s, "s", "<= 0.5 s",
                          one_s <= 0.5, note=f"fresh store each time; includes the rankings refresh; CPU {one_cpu:.3f} s"))
    noop_s, noop_cpu = min(process_times([*HIVE_JOBS, "--data-dir", str(one), "rollup", "--daily"]) for _ in range(3))
    figures.append(Figure("hive-jobs rollup --daily, nothing new (process)", noop_s, "s", "-", None,
                          note=f"CPU {noop_cpu:.3f} s"))

    month = simulated("month", 30, end)
    work = fresh_copy(month, "month")
    subprocess.run([*HIVE_JOBS, "--data-dir", str(work), "rollup", "--daily"], check=True, capture_output=True)
    ours = min(process_seconds([*HIVE_JOBS, "--data-dir", str(work), "rollup", "--rebuild"]) for _ in range(2))
    bare = min(_bare_scan_seconds(work) for _ in range(2))
    figures.append(Figure("hive-jobs rollup --rebuild, 30 days / 10M events (process)", ours, "s", "<= 3 s",
                          ours <= 3.0, peer="bare DuckDB group-by (process)", peer_value=bare, ratio=ours / bare,
                          note="ratio target <= 3x"))

    figures.extend(memory_figures(month, end))

    year = _year_of_rollups(work, end)
    from hive_core.settings import Settings

    settings = Settings(data_dir=year)
    period = Period.ending(end, 365)
    rows = performance(settings, period)
    per_query = median_time(lambda: performance(settings, period), repeat=7)
    figures.append(Figure(f"P50/P95/P99 of every model ({len(rows)}) over 365 days from rollups", per_query * 1000,
                          "ms", "<= 50 ms", per_query <= 0.05, note="hive models performance --period 365d, library call"))
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure)
