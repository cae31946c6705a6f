"""The daily rollup: events in, one Parquet file per UTC day out, incremental and idempotent.

Layout (all under ``<data>/rollups/``, paths from :class:`hive_core.store.datadir.DataDir`)::

    daily/date=YYYY-MM-DD/part.parquet      one row per (day, model, provider, request_type,
                                            task_category): queries/rollups/daily.sql
    monthly/month=YYYY-MM/totals.parquet    per model, the whole month (jobs.rollup.monthly)
    monthly/month=YYYY-MM/days.parquet      per (day, model), the month's days
    state.json                              what each day was computed from and what was written
                                            (jobs.rollup.state)

Memory stays flat as history grows: stale days are rolled up in batches of consecutive days, one
query each, holding a bounded size of event files (:mod:`jobs.rollup.batches`, smaller under a small
``HIVE_MEMORY_LIMIT``), and DuckDB's ``memory_limit`` is that setting (it spills beyond). A rebuild
of a year peaks where one of a month does; the rows of a day do not depend on its batch.

A run takes the ``rollup`` job lock, lists the event files, and recomputes only the stale days: those
whose event files changed since their rollup (new days, late events, compactions, and today while it
keeps receiving events) and those whose output files changed outside the rollup (a deleted or
damaged day or month file is regenerated, byte for byte). Each such day is rewritten atomically. A
run with nothing new writes nothing, so the day files stay byte-identical (their rows are sorted and
hold no wall-clock values). ``rebuild`` recomputes every day: the rollups are a pure function of the
events, so it produces the same files.

A rollup is never deleted because its events are missing:

* a store whose events are all gone (``events/`` missing or empty: an unmounted disk) while rollups
  exist is an error (:class:`hive_core.errors.DataError`), and nothing is changed;
* a day whose events alone are gone keeps its rollup, and the run reports it (``kept``): the file
  is then the only record of that day's spend;
* a day whose events ``hive-jobs prune`` removed (``rollups/pruned.json``, :mod:`jobs.rollup.prune`)
  keeps its rollup silently and is never recomputed, even from partitions a killed prune left;
* a day whose rollup file *and* events are both gone cannot be regenerated: it is reported once
  (``forgotten``) and its month's rows are left as they were.

Temporary files that a killed run left (``.part.parquet.<pid>.<tid>.tmp``, ...) are removed once they
are :data:`hive_core.store.atomic.TEMP_GRACE_S` old. A file that cannot be written (a read-only data
directory, a full disk) stops the run with one :class:`~hive_core.errors.DataError` line; whatever
it wrote is whole, and the next run redoes the rest.

After the files, the ``steps`` the caller passes run, in order, under the same lock, with the run's
open store and the rows it just computed (:class:`RollupReport`). The rollup names none of them: the
stages that read its files sit above it, and :mod:`jobs.pipeline` (what ``hive-jobs rollup`` and
the schedule run) passes the ranking table refresh and the budget alerts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.errors import DataError
from hive_core.store.lock import DEFAULT_LOCK_TIMEOUT_S, STORE_LOCK, job_lock, unwritable
from jobs.rollup.batches import (
    ROLLUP_VIEWS,
    batch_bytes,
    batch_rows,
    day_batches,
    day_runs,
    rollup_rows,
    rows_ahead,
    with_distributions,
)
from jobs.rollup.state import MONTH_PARTS, RollupState, month_of, scan_event_days

if TYPE_CHECKING:
    import pyarrow as pa

    from hive_core.settings import Settings
    from hive_core.store.datadir import DataDir
    from queries import Store

__all__ = ["KEEP_ROWS_DAYS", "PostStep", "RollupReport", "read_day_tables", "read_days", "rollup", "split_by_day"]


@dataclass
class RollupReport:
    """What a rollup run did."""

    data_dir: Path
    days_with_events: int = 0
    rolled_up: list[date] = field(default_factory=list)
    #: days in scope whose rollup is kept though their events are gone
    kept: list[date] = field(default_factory=list)
    #: days the last run knew whose rollup file and events are both gone (reported once)
    forgotten: list[date] = field(default_factory=list)
    rows: int = 0
    #: event files and partitions not read, with the reason
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    #: what the run repaired: temporaries of killed runs removed, an unreadable state replaced
    repaired: list[str] = field(default_factory=list)
    steps: dict[str, Any] = field(default_factory=dict)
    #: the run's open store while the post steps run, else None
    store: Store | None = field(default=None, repr=False, compare=False)
    #: the rows this run computed, per day, while the post steps run (the files hold the same): the
    #: last :data:`KEEP_ROWS_DAYS` days rolled up
    day_rows: dict[date, pa.Table] = field(default_factory=dict, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        """No event at all in the store."""
        return self.days_with_events == 0

    @property
    def unchanged(self) -> int:
        """Days with events whose rollup was already current."""
        return self.days_with_events - len(self.rolled_up)

    def as_dict(self) -> dict[str, Any]:
        """The run as ``hive-jobs rollup --json`` prints it: days as ISO dates, skipped files as
        ``{path, reason}``, and the ranking table's row count (``rankings_rows``: what the step named
        ``rankings`` returned, ``None`` when the caller ran none; the rollup only reads it)."""
        return {
            "data_dir": str(self.data_dir), "days_with_events": self.days_with_events,
            "rolled_up": [d.isoformat() for d in self.rolled_up],
            "kept": [d.isoformat() for d in self.kept], "forgotten": [d.isoformat() for d in self.forgotten],
            "rows": self.rows, "skipped": [{"path": str(p), "reason": r} for p, r in self.skipped],
            "repaired": list(self.repaired), "rankings_rows": getattr(self.steps.get("rankings"), "rows", None),
        }


#: A step run after the rollup's files as ``step(settings, report)``, under the rollup's lock;
#: ``report.store`` is the run's open :class:`queries.Store` meanwhile, with the rollup's views (reuse
#: it rather than open another; add a view it lacks with ``Store.add_views``). What it returns lands in ``report.steps[name]``.
PostStep = Callable[["Settings", RollupReport], object]


#: days of freshly computed rows a run keeps for its post steps (older ones are read from the files)
KEEP_ROWS_DAYS = 31


def _in_scope(day: date, only: date | None, since: date | None) -> bool:
    return (only is None or day == only) and (since is None or day >= since)


def rollup(
    settings: Settings,
    *,
    day: date | None = None,
    since: date | None = None,
    rebuild: bool = False,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    steps: Sequence[tuple[str, PostStep]] = (),
    max_batch_bytes: int | None = None,
    engine: str = "duckdb",
) -> RollupReport:
    """Bring the daily rollups up to date (only ``day``, or days from ``since``, when given), then
    run each ``(name, step)`` of ``steps`` (see :data:`PostStep`). Stale days are rolled up in
    batches of at most ``max_batch_bytes`` of event files (default: :func:`batch_bytes` of
    ``HIVE_MEMORY_LIMIT``); the files are the same whatever the batches. ``report.store`` registers
    the rollup's own views; a step that reads another adds it (``Store.add_views``).
    ``engine="spark"`` computes each run of stale days' rows with Spark (:mod:`jobs.rollup.spark`);
    everything else is the same.

    Raises :class:`~hive_core.errors.DataError` when events are gone but rollups exist (nothing is
    changed) or a file cannot be written, :class:`~hive_core.errors.LockHeld` when another run
    holds the lock past ``lock_timeout_s``.
    """
    from queries import connect

    datadir = settings.datadir
    report = RollupReport(data_dir=datadir.root)
    try:
        with job_lock(datadir, STORE_LOCK, timeout_s=lock_timeout_s), contextlib.ExitStack() as stack:
            plan = _plan(datadir, report, only=day, since=since, rebuild=rebuild)
            report.repaired.extend(_remove_temporaries(datadir))
            batches: list[tuple[date, date]] = []
            rows_of: Callable[[date, date], pa.Table] = _no_rows
            finish: Callable[[pa.Table], pa.Table] | None = None
            if plan.stale:  # DuckDB (and the check of every file) only when there is work
                batches = (day_runs(plan.stale) if engine == "spark"  # Spark bounds its own memory
                           else day_batches(plan.stale, plan.sizes, max_batch_bytes or batch_bytes(settings.memory_limit)))
                if engine == "duckdb" and len(batches) > 1:
                    # a store of its own per batch, over its own days; none over every day (opening
                    # one cost a tenth of a month's rebuild): the post steps open what they need
                    rows_of = partial(batch_rows, datadir, settings.memory_limit, report.skipped)
                    finish = with_distributions  # in this thread, while the next batch's query runs
                else:  # one batch (cron's daily run), or Spark: the run's store, which the post steps reuse
                    store = report.store = stack.enter_context(connect(datadir.root, warn=False, views=ROLLUP_VIEWS,
                                                                       memory_limit=settings.memory_limit))
                    report.skipped.extend(store.skipped_of(ROLLUP_VIEWS))  # as a batch's store reports
                    rows_of = (_spark_rows(datadir, store, stack) if engine == "spark"
                               else partial(rollup_rows, store))
            # each batch's own store (batch_rows) may run in a thread; a shared store or Spark may not
            _roll(datadir, report, plan, batches, rows_of, ahead=engine == "duckdb", finish=finish)
            try:
                for name, step in steps:
                    report.steps[name] = step(settings, report)
            finally:
                report.store, report.day_rows = None, {}
    except OSError as exc:  # the one seam where the rollup's file errors become a message
        raise unwritable("rollup", exc, datadir.root) from exc
    return report


@dataclass
class _Plan:
    current: dict[date, str]
    state: RollupState
    stale: list[date]
    #: bytes on disk of each day's event files
    sizes: dict[date, int]
    kept: list[date]
    forgotten: list[date]
    #: months rebuilt from their day files (theirs changed outside the rollup, or the state was lost)
    months: set[str]


def _plan(datadir: DataDir, report: RollupReport, *, only: date | None, since: date | None,
          rebuild: bool) -> _Plan:
    """Which days in scope are stale, which lost their events, which months need rebuilding.
    Refuses (changing nothing) when every event is gone but rollups exist."""
    from jobs.rollup.prune import load_pruned

    events = scan_event_days(datadir.root)
    # a pruned day is a day without events, whatever a killed prune left of its partitions
    pruned = load_pruned(datadir)
    current = {d: fp for d, fp in events.fingerprints.items() if d not in pruned}
    report.days_with_events = len(current)
    report.skipped.extend(events.out_of_range)
    state = RollupState.load(datadir.rollup_state)
    on_disk = set(_days_on_disk(datadir))
    if not current and (on_disk or state.days) and not (on_disk <= pruned and set(state.days) <= pruned):
        where = "is missing" if not datadir.events.is_dir() else "holds no events"
        raise DataError(f"events directory {datadir.events} {where} but {len(on_disk | set(state.days))} "
                        "day(s) of rollups exist: is the disk mounted? nothing was changed (to start over on "
                        f"purpose, remove {datadir.rollups} too)")
    if state.problem:
        report.repaired.append(f"{datadir.rollup_state}: unreadable ({state.problem}): every day recomputed from "
                               "the events")

    with_events = [d for d in current if _in_scope(d, only, since)]
    # (a pruned day is kept by design: not reported every run)
    kept = sorted(d for d in on_disk if d not in current and d not in pruned and _in_scope(d, only, since))
    forgotten = sorted(d for d in state.days if d not in current and d not in on_disk and _in_scope(d, only, since))
    # Months whose files (or a kept day's file) changed outside the rollup are rebuilt from the day
    # files, not updated from their own (which may be damaged); so is every month of a lost state.
    months = {m for m in {month_of(d) for d in [*with_events, *kept]} if not state.month_ok(datadir, m)}
    months |= {month_of(d) for d in kept if not state.output_ok(datadir, datadir.rollup_day(d))}
    # Such a month needs every day of it with events current, in scope or not.
    stale = set(with_events if rebuild else state.stale(datadir, current, with_events))
    stale |= {d for d in current if month_of(d) in months}
    return _Plan(current, state, sorted(stale), events.sizes, kept, forgotten, months)


def _remove_temporaries(datadir: DataDir) -> list[str]:
    """Temporary files of killed runs in the rollup's and the ranking table's directories (none in
    object storage: a write there is one PUT, so nothing is listed)."""
    from hive_core.store.atomic import remove_stale_temporaries
    from hive_core.store.datadir import is_remote

    if is_remote(datadir.root):
        return []
    dirs = [datadir.rollups, datadir.rankings]
    for sub in (datadir.rollups_daily, datadir.rollups_monthly):
        with contextlib.suppress(OSError):
            dirs.extend(p for p in sub.iterdir() if p.is_dir())
    return [f"{path}: removed temporary file left by a killed run"
            for directory in dirs for path in remove_stale_temporaries(directory)]


def _no_rows(first: date, last: date) -> pa.Table:
    raise AssertionError(f"no stale day to roll up, asked for {first}..{last}")


def _spark_rows(datadir: DataDir, store: Store, stack: contextlib.ExitStack) -> Callable[[date, date], pa.Table]:
    """Rows from Spark, cast to the schema of DuckDB's (asked of an empty range: no scan)."""
    from jobs.rollup.spark import spark_rows, spark_session, stop_spark

    schema = rollup_rows(store, date(1970, 1, 1), date(1970, 1, 1)).schema
    spark = spark_session()
    stack.callback(stop_spark, spark)
    return lambda first, last: spark_rows(spark, datadir, first, last, schema)


def _roll(datadir: DataDir, report: RollupReport, plan: _Plan, batches: list[tuple[date, date]],
          rows_of: Callable[[date, date], pa.Table], *, ahead: bool,
          finish: Callable[[pa.Table], pa.Table] | None = None) -> None:
    """Recompute the stale days, rewrite their months, save the state. ``finish`` completes each
    batch's rows from ``rows_of`` (:func:`jobs.rollup.batches.rows_ahead`)."""
    from jobs.rollup.monthly import day_model_rows, write_month

    state = plan.state
    day_models: dict[date, pa.Table | None] = {}
    # the post steps reuse the rows of recent days (the rankings' window is a week); a year's
    # rebuild holding every day's rows with their histograms peaked at 3x a month's
    keep_since = plan.stale[-1] - timedelta(days=KEEP_ROWS_DAYS) if plan.stale else date.max
    for (first, last), table in rows_ahead(batches, rows_of, ahead=ahead, finish=finish):
        report.rows += table.num_rows
        days = list(split_by_day(table, first, last))
        _write_days(datadir, days)
        report.day_rows.update((d, rows) for d, rows in days if d > keep_since)
        for d, rows in split_by_day(day_model_rows(table), first, last):
            day_models[d] = rows if rows.num_rows else None
    months: dict[str, dict[date, pa.Table | None]] = {}
    for d, rows in day_models.items():
        months.setdefault(month_of(d), {})[d] = rows
    for month in plan.months:
        months[month] = _month_from_day_files(datadir, month, day_models)
    for month, month_days in sorted(months.items()):
        write_month(datadir, month, month_days, fresh=month in plan.months)
        for part in MONTH_PARTS:
            state.record(datadir, datadir.rollup_month(month, part))
    # The state is saved last: a run killed before this point redoes its days next time.
    for d in [*plan.stale, *plan.kept]:
        state.record(datadir, datadir.rollup_day(d))
    for d in plan.stale:
        state.days[d] = plan.current[d]
    for d in plan.forgotten:
        del state.days[d]
    state.trusted, state.problem = True, None
    state.save(datadir.rollup_state)
    report.rolled_up, report.kept, report.forgotten = plan.stale, plan.kept, plan.forgotten


def read_day_file(path: Path) -> pa.Table:
    """One day file's rows; :class:`~hive_core.errors.DataError` (one line) when it cannot be read."""
    import pyarrow as pa

    from hive_core.store.objects import read_parquet
    from jobs.rollup.monthly import with_all_counters

    try:
        table = read_parquet(path)
    except (OSError, pa.ArrowException) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: unreadable rollup file ({reason}): run `hive-jobs rollup` to regenerate it "
                        "(or restore it from a backup if its events are gone)") from exc
    return with_all_counters(table)


def _month_from_day_files(datadir: DataDir, month: str, computed: dict[date, pa.Table | None]) -> dict[date, pa.Table | None]:
    """Every day of ``month`` that has a day file, as (day, model) rows: the rows just computed, or
    read back from the file (a day kept without events)."""
    from jobs.rollup.monthly import day_model_rows

    days: dict[date, pa.Table | None] = {}
    for d in _days_on_disk(datadir):
        if month_of(d) == month:
            rows = computed[d] if d in computed else day_model_rows(read_day_file(datadir.rollup_day(d)))
            days[d] = rows if rows is not None and rows.num_rows else None
    return days


def read_days(datadir: DataDir, since: date, until: date, exclude: frozenset[date] = frozenset()) -> pa.Table | None:
    """The daily rollup rows of ``since..until`` from the files, but the days in ``exclude``
    (``None`` when there are none)."""
    import pyarrow as pa

    tables = list(read_day_tables(datadir, since, until, exclude).values())
    # by name: a day kept in an older format has its columns in another order
    return pa.concat_tables(tables, promote_options="default") if tables else None


def read_day_tables(datadir: DataDir, since: date, until: date,
                    exclude: frozenset[date] = frozenset()) -> dict[date, pa.Table]:
    """Each day of ``since..until`` with rows in its file, but the days in ``exclude``, in day order.
    More than a week of files is read by a few threads (Parquet decoding releases the GIL: a
    month's report read its 30 files in half the time); a week, the rankings', in this one
    (importing the pool costs about what it saves)."""
    days = [day for i in range((until - since).days + 1)  # counted, so the last day never steps past date.max
            if (day := since + timedelta(days=i)) not in exclude and datadir.rollup_day(day).exists()]
    paths = [datadir.rollup_day(day) for day in days]
    if len(paths) <= _SERIAL_READS:
        tables = [read_day_file(path) for path in paths]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="rollup-read") as pool:
            tables = list(pool.map(read_day_file, paths))  # the first unreadable day, in day order, raises
    return {day: table for day, table in zip(days, tables, strict=True) if table.num_rows}


#: day files :func:`read_day_tables` reads without threads
_SERIAL_READS = 7


def _days_on_disk(datadir: DataDir) -> list[date]:
    """The (in-range) days with a day file, sorted."""
    from hive_core.store.layout import day_in_range, partition_date

    root = datadir.rollups_daily
    if not root.is_dir():
        return []
    days = (d for p in root.iterdir() if (d := partition_date(p)) is not None and day_in_range(d))
    return sorted(d for d in days if datadir.rollup_day(d).is_file())


def split_by_day(table: pa.Table, first: date, last: date) -> Iterable[tuple[date, pa.Table]]:
    """Each day of the run with its rows (the table is sorted by day; a day may have none)."""
    import numpy as np

    days = table["day"].to_numpy()
    for i in range((last - first).days + 1):  # counted, so the last day never steps past date.max
        day = first + timedelta(days=i)
        lo, hi = np.searchsorted(days, np.datetime64(day), "left"), np.searchsorted(days, np.datetime64(day), "right")
        yield day, table.slice(int(lo), int(hi - lo))


def _write_days(datadir: DataDir, days: list[tuple[date, pa.Table]]) -> None:
    """Write each day's file; several days two at a time (encoding, compression and fsync release
    the GIL), one day without a thread pool (importing it alone costs a single day's write)."""
    if len(days) == 1:
        _write_day(datadir, *days[0])
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        for write in [pool.submit(_write_day, datadir, d, rows) for d, rows in days]:
            write.result()


def _write_day(datadir: DataDir, day: date, rows: pa.Table) -> None:
    from jobs.rollup.monthly import write_rows

    write_rows(rows, datadir.rollup_day(day))
