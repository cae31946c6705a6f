"""The daily rollup: events in, one Parquet file per UTC day out, incremental and idempotent.

Layout (all under ``<data>/rollups/``)::

    daily/date=YYYY-MM-DD/part.parquet      one row per (day, model, provider, request_type,
                                            task_category): queries/rollups/daily.sql
    monthly/month=YYYY-MM/totals.parquet    per model, the whole month (jobs.model_rollup)
    monthly/month=YYYY-MM/days.parquet      per (day, model), the month's days
    state.json                              fingerprint of each day's event files (jobs.rollup_state)

A run takes the ``rollup`` job lock, lists the event files, and recomputes only the days whose
file fingerprint differs from the one recorded (new days, late events for old days, compactions,
and today while it keeps receiving events). Each such day is rewritten atomically; days whose
events are gone lose their rollup. A run with nothing new writes nothing, so the day files stay
byte-identical (their rows are sorted and hold no wall-clock values). ``rebuild`` recomputes every
day: the rollups are a pure function of the events, so it produces the same files.

After the files, the post-rollup steps run (:data:`POST_STEPS`, imported by name): the ranking
table refresh, and whatever other job registers itself there (budget alerts, say).
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs import histogram
from jobs.lock import DEFAULT_LOCK_TIMEOUT_S, STORE_LOCK, job_lock
from jobs.rollup_state import RollupState, day_fingerprints

if TYPE_CHECKING:
    import pyarrow as pa

    from hive_core.settings import Settings
    from queries import Store

__all__ = ["POST_STEPS", "RollupReport", "day_path", "day_runs", "named_table", "read_days", "rollup", "rollup_rows"]

#: (name, "module:function") run after every rollup as ``function(settings, report)``, in order,
#: under the rollup lock; ``report.store`` is the run's open :class:`queries.Store` meanwhile (reuse
#: it rather than opening another). The result lands in ``report.steps[name]``. Append a step here
#: to run it after each rollup.
POST_STEPS: list[tuple[str, str]] = [
    ("rankings", "jobs.rankings_job:refresh_after_rollup"),
    ("budget-alerts", "jobs.alerts:alerts_after_rollup"),
]


@dataclass
class RollupReport:
    """What a rollup run did."""

    data_dir: Path
    days_with_events: int = 0
    rolled_up: list[date] = field(default_factory=list)
    removed: list[date] = field(default_factory=list)
    rows: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    steps: dict[str, Any] = field(default_factory=dict)
    #: the run's open store while the post steps run, else None
    store: Store | None = field(default=None, repr=False, compare=False)
    #: the rows this run computed, per day, while the post steps run (the files hold the same)
    day_rows: dict[date, pa.Table] = field(default_factory=dict, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        """No event at all in the store."""
        return self.days_with_events == 0

    @property
    def unchanged(self) -> int:
        """Days with events whose rollup was already current."""
        return self.days_with_events - len([d for d in self.rolled_up if d not in self.removed])


def day_path(rollups_dir: Path, day: date) -> Path:
    """``<rollups>/daily/date=YYYY-MM-DD/part.parquet``."""
    return rollups_dir / "daily" / f"date={day.isoformat()}" / "part.parquet"


def named_table(store: Store, name: str, params: dict[str, Any]) -> pa.Table:
    """Run the named query ``queries/<name>.sql`` as an Arrow table; DuckDB errors -> QueryError."""
    import duckdb

    from hive_core.errors import QueryError
    from queries import load

    try:
        return store.con.sql(load(name), params=params).to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(f"{name} failed: {str(exc).strip().splitlines()[0]}") from exc


def rollup_rows(store: Store, since: date, until: date) -> pa.Table:
    """The daily rollup rows of ``since..until`` computed from the events (nothing written)."""
    # The query sorts its own output, so the scans need not keep the files' row order (10-20%
    # faster on one day); the connection's setting is restored for whoever uses it next.
    store.con.execute("SET preserve_insertion_order = false")
    try:
        table = named_table(store, "rollups/daily", {"since": since, "until": until})
    finally:
        store.con.execute("RESET preserve_insertion_order")
    return _with_distributions(table)


def _with_distributions(table: pa.Table) -> pa.Table:
    """The query's sorted ``latency_values`` / ``ttft_values`` replaced by each row's exact
    percentiles and histogram (:func:`jobs.histogram.from_sorted`), in the rollup's column order."""
    import numpy as np
    import pyarrow as pa

    from jobs.model_rollup import QUANTILES, from_numpy, list_parts

    derived: dict[str, pa.Array] = {}
    lists: dict[str, pa.Array] = {}
    for prefix in ("latency", "ttft"):
        offsets, values = list_parts(table[f"{prefix}_values"])
        quantiles, hist_offsets, buckets, counts = histogram.from_sorted(
            offsets, values.to_numpy(), [q for _, q in QUANTILES])
        for j, (label, _q) in enumerate(QUANTILES):
            derived[f"{prefix}_{label}_ms"] = from_numpy(quantiles[:, j], nan_is_null=True)
        list_offsets = from_numpy(hist_offsets.astype(np.int32))
        lists[f"{prefix}_buckets"] = pa.ListArray.from_arrays(list_offsets, from_numpy(buckets.astype(np.int32)))
        lists[f"{prefix}_counts"] = pa.ListArray.from_arrays(list_offsets, from_numpy(counts.astype(np.int64)))
    columns: dict[str, Any] = {}
    for name in table.column_names:
        if name == "latency_values":  # where the percentiles and histograms go
            columns.update(derived)
            columns.update(lists)
        elif name != "ttft_values":
            columns[name] = table[name]
    return pa.table(columns)


def day_runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days grouped into (first, last) runs: one query per run."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _in_scope(day: date, only: date | None, since: date | None) -> bool:
    return (only is None or day == only) and (since is None or day >= since)


def rollup(
    settings: Settings,
    *,
    day: date | None = None,
    since: date | None = None,
    rebuild: bool = False,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    post_steps: bool = True,
) -> RollupReport:
    """Bring the daily rollups up to date (only ``day``, or days from ``since``, when given)."""
    from queries import connect

    report = RollupReport(data_dir=settings.data_dir)
    with job_lock(settings.state_dir, STORE_LOCK, timeout_s=lock_timeout_s), contextlib.ExitStack() as stack:
        plan = _plan(settings, report, only=day, since=since, rebuild=rebuild)
        if plan.stale:  # DuckDB (and the check of every file) only when there is work
            report.store = stack.enter_context(connect(settings.data_dir, warn=False))
            report.skipped = report.store.skipped
        _roll(settings, report, plan)
        if post_steps:
            try:
                for name, target in POST_STEPS:
                    module_name, attr = target.split(":")
                    report.steps[name] = getattr(importlib.import_module(module_name), attr)(settings, report)
            finally:
                report.store, report.day_rows = None, {}
    return report


@dataclass
class _Plan:
    current: dict[date, str]
    state: RollupState
    stale: list[date]
    gone: list[date]


def _plan(settings: Settings, report: RollupReport, *, only: date | None, since: date | None,
          rebuild: bool) -> _Plan:
    """Which days in scope are stale (files changed since their rollup) and which lost their events."""
    rollups_dir = settings.rollups_dir
    current = day_fingerprints(settings.data_dir)
    report.days_with_events = len(current)
    state = RollupState.load(rollups_dir / "state.json")
    known = set(current) | set(state.days) | set(_days_on_disk(rollups_dir))
    scope = {d for d in known if _in_scope(d, only, since)}
    gone = sorted(d for d in scope if d not in current)
    stale = sorted(d for d in scope if d in current and (rebuild or state.days.get(d) != current[d]))
    return _Plan(current, state, stale, gone)


def _roll(settings: Settings, report: RollupReport, plan: _Plan) -> None:
    """Recompute the stale days, drop the days without events, save the state."""
    from jobs.model_rollup import day_model_rows

    rollups_dir = settings.rollups_dir
    state_path = rollups_dir / "state.json"
    day_models: dict[date, pa.Table | None] = {}
    for first, last in day_runs(plan.stale):
        assert report.store is not None
        table = rollup_rows(report.store, first, last)
        report.rows += table.num_rows
        days = list(_split_by_day(table, first, last))
        _write_days(rollups_dir, days)
        report.day_rows.update(days)
        for d, rows in _split_by_day(day_model_rows(table), first, last):
            day_models[d] = rows if rows.num_rows else None
    for d in plan.gone:
        shutil.rmtree(day_path(rollups_dir, d).parent, ignore_errors=True)
        plan.state.days.pop(d, None)
        day_models[d] = None
    _write_months(rollups_dir, day_models)
    # The state is saved last: a run killed before this point redoes its days next time.
    for d in plan.stale:
        plan.state.days[d] = plan.current[d]
    if plan.stale or plan.gone or not state_path.exists():
        plan.state.save(state_path)
    report.rolled_up, report.removed = plan.stale, plan.gone


def read_days(rollups_dir: Path, since: date, until: date, exclude: frozenset[date] = frozenset()) -> pa.Table | None:
    """The daily rollup rows of ``since..until`` from the files, but the days in ``exclude``
    (``None`` when there are none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    day = since
    while day <= until:
        path = day_path(rollups_dir, day)
        if day not in exclude and path.exists():
            tables.append(pq.ParquetFile(path).read())  # read_table would import pyarrow.dataset: 60 ms
        day += timedelta(days=1)
    tables = [t for t in tables if t.num_rows]
    return pa.concat_tables(tables) if tables else None


def _days_on_disk(rollups_dir: Path) -> list[date]:
    from hive_core.layout import partition_date

    root = rollups_dir / "daily"
    if not root.is_dir():
        return []
    return [d for p in root.iterdir() if (d := partition_date(p)) is not None]


def _split_by_day(table: pa.Table, first: date, last: date) -> Iterable[tuple[date, pa.Table]]:
    """Each day of the run with its rows (the table is sorted by day; a day may have none)."""
    import numpy as np

    days = table["day"].to_numpy()
    day = first
    while day <= last:
        lo, hi = np.searchsorted(days, np.datetime64(day), "left"), np.searchsorted(days, np.datetime64(day), "right")
        yield day, table.slice(int(lo), int(hi - lo))
        day += timedelta(days=1)


def _write_days(rollups_dir: Path, days: list[tuple[date, pa.Table]]) -> None:
    """Write each day's file; several days two at a time (encoding, compression and fsync release
    the GIL), one day without a thread pool (importing it alone costs a single day's write)."""
    if len(days) == 1:
        _write_day(rollups_dir, *days[0])
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        for write in [pool.submit(_write_day, rollups_dir, d, rows) for d, rows in days]:
            write.result()


def _write_day(rollups_dir: Path, day: date, rows: pa.Table) -> None:
    from jobs.model_rollup import write_rows

    write_rows(rows, day_path(rollups_dir, day))


def _write_months(rollups_dir: Path, day_models: dict[date, pa.Table | None]) -> None:
    from jobs.model_rollup import write_month

    months: dict[str, dict[date, pa.Table | None]] = {}
    for d, table in day_models.items():
        months.setdefault(d.strftime("%Y-%m"), {})[d] = table
    for month, days in sorted(months.items()):
        write_month(rollups_dir, month, days)
