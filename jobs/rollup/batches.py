"""The rollup's rows for a run of days, computed in memory-bounded batches.

A run's stale days are grouped into batches of consecutive days (:func:`day_batches`), each holding at
most :func:`batch_bytes` of event files, and each batch is one query over a store that opens only its
own days' partitions (:func:`batch_rows`): peak memory is the batch's, not the history's, and the rows
of a day do not depend on its batch. :func:`rollup_rows` is the query plus the exact percentiles and
mergeable histograms computed from each row's values (:mod:`jobs.rollup.histogram`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.rollup import histogram

if TYPE_CHECKING:
    import pyarrow as pa

    from hive_core.store.datadir import DataDir
    from queries import Store

__all__ = ["MAX_BATCH_BYTES", "ROLLUP_VIEWS", "batch_bytes", "batch_rows", "day_batches", "day_runs", "query_rows",
           "rollup_rows", "rows_ahead", "with_distributions"]


#: the named views ``queries/rollups/daily.sql`` reads: a batch's store registers only these
ROLLUP_VIEWS = ("api_calls", "usage", "stream_outcomes")


def rollup_rows(store: Store, since: date, until: date) -> pa.Table:
    """The daily rollup rows of ``since..until`` computed from the events (nothing written)."""
    return with_distributions(query_rows(store, since, until))


def query_rows(store: Store, since: date, until: date) -> pa.Table:
    """The rollup query's rows of ``since..until``: each row's latencies still a list of values
    (:func:`with_distributions` makes them the rollup's percentiles and histograms)."""
    # The query sorts its own output, so the scans need not keep the files' row order (10-20%
    # faster on one day); the connection's setting is restored for whoever uses it next.
    from queries import named_table

    store.con.execute("SET preserve_insertion_order = false")
    try:
        return named_table(store, "rollups/daily", {"since": since, "until": until})
    finally:
        store.con.execute("RESET preserve_insertion_order")


def with_distributions(table: pa.Table) -> pa.Table:
    """The query's ``latency_values`` / ``ttft_values`` replaced by each row's exact
    percentiles and histogram (:func:`jobs.rollup.histogram.from_sorted`), in the rollup's column order."""
    import numpy as np
    import pyarrow as pa

    from jobs.rollup.monthly import QUANTILES, from_numpy, list_parts

    derived: dict[str, pa.Array] = {}
    lists: dict[str, pa.Array] = {}
    for prefix in ("latency", "ttft"):
        offsets, values = list_parts(table[f"{prefix}_values"])
        quantiles, hist_offsets, buckets, counts = histogram.from_sorted(
            offsets, _sorted_rows(offsets, values.to_numpy()), [q for _, q in QUANTILES])
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


def _sorted_rows(offsets: Any, values: Any) -> Any:
    """``values`` with each row's slice (``offsets``) sorted: one small in-place sort per row costs
    a fifth of DuckDB's ``list(x ORDER BY x)`` (a ``list_sort`` of every list, on 2 cores)."""
    values = values.copy()  # the Arrow buffer's view is read-only
    bounds = offsets.tolist()
    for lo, hi in itertools.pairwise(bounds):
        if hi - lo > 1:
            values[lo:hi].sort()
    return values


def day_runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days grouped into (first, last) runs: one query per run."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and (day - runs[-1][1]).days == 1:  # not last + 1 day: that overflows at date.max
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


#: the most event-file bytes one query rolls up: its peak memory follows the batch's events, whatever
#: the history's length, so a rebuild of a year peaks where one of a month does. Each batch also
#: costs about 0.2 s of CPU whatever its size (its store, planning the query, closing): 256 -> 384 MB
#: cut the bench's year from 53 to 34 batches and its CPU by 6-11% (two A/Bs of 3 alternated runs),
#: its peak RSS from 1.11x to 1.15x the month's (a rebuild holds two batches at its peak: one's
#: query, the previous one's rows); at 512 MB the year peaked at 1.23x the month's
MAX_BATCH_BYTES = 384 * 1000**2
#: peak memory of a batch per byte of its event files, with a margin for Arrow and numpy copies
_EXPANSION = 2


def batch_bytes(memory_limit: int) -> int:
    """Event-file bytes per batch under ``memory_limit`` (``HIVE_MEMORY_LIMIT``)."""
    return max(1, min(MAX_BATCH_BYTES, memory_limit // _EXPANSION))


def day_batches(days: Iterable[date], sizes: Mapping[date, int], max_bytes: int) -> list[tuple[date, date]]:
    """:func:`day_runs` cut so that no batch holds more than ``max_bytes`` of event files (a day
    larger than that is a batch of its own): one query per batch, memory bounded by the batch."""
    batches: list[tuple[date, date]] = []
    for first, last in day_runs(days):
        start, total = first, 0
        day = first
        while day <= last:
            size = sizes.get(day, 0)
            if total and total + size > max_bytes:
                batches.append((start, day - timedelta(days=1)))
                start, total = day, 0
            total += size
            if day == last:
                break
            day += timedelta(days=1)
        batches.append((start, last))
    return batches


def batch_rows(datadir: DataDir, memory_limit: int, skipped: list[tuple[Path, str]], first: date,
               last: date) -> pa.Table:
    """One batch's query rows (:func:`query_rows`: :func:`with_distributions` completes them) from a
    store over that batch's partitions only: a query over a year's views reads every file's footer
    and holds the lot, which made a year's rebuild 3x the month's peak and 18x its time per event.
    Only the rollup's event types are listed (:data:`ROLLUP_VIEWS`). The files its store skipped
    are added to ``skipped``."""
    from queries import connect

    with connect(datadir.root, warn=False, memory_limit=memory_limit, days=(first, last), views=ROLLUP_VIEWS) as store:
        skipped.extend(store.skipped)
        return query_rows(store, first, last)


def rows_ahead(batches: list[tuple[date, date]], rows_of: Callable[[date, date], pa.Table], *, ahead: bool = True,
               finish: Callable[[pa.Table], pa.Table] | None = None) -> Iterator[tuple[tuple[date, date], pa.Table]]:
    """Each batch with its rows, in order; the next batch's rows are computed in a thread while the
    caller writes the current one's. DuckDB runs a query without the GIL and leaves a core idle in
    its single-threaded phases, which the Python work on the previous batch (Parquet encoding,
    the per-day files, the month rows) fills, instead of each query waiting for the previous
    batch's files. At most one query runs at a time (peak memory stays one batch's) and one
    batch's finished rows wait (its query rows, each event's latencies, are let go once finished).
    ``ahead=False``: each batch's rows after the previous one's were written (``rows_of`` is not
    safe to call from another thread). ``finish``: applied to each batch's rows in the caller's
    thread once the next batch's query has started (the query thread would otherwise leave a core
    idle while it computes a batch's percentiles and histograms: :func:`with_distributions`)."""
    def done(table: pa.Table) -> pa.Table:
        return finish(table) if finish is not None else table

    if len(batches) < 2 or not ahead:
        for first, last in batches:
            yield (first, last), done(rows_of(first, last))
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollup-batch") as pool:
        pending = [pool.submit(rows_of, *batches[0])]  # popped: a future holds its result
        for i, batch in enumerate(batches):
            table = pending.pop().result()
            if i + 1 < len(batches):
                pending.append(pool.submit(rows_of, *batches[i + 1]))
            # the query's rows (each event's latencies) are let go once finished: only the finished
            # rows are held while the caller writes them and the next query runs
            table = done(table)
            yield batch, table
