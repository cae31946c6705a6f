"""Per-model rollups: merge fine rollup rows by model, keep them per month, read any range fast.

The daily files hold one row per (day, model, provider, request_type, task_category). Questions
asked per model over long ranges ("P95 of every model over 365 days") would have to open and decode
every day's file; instead each month keeps two small files

    <data>/rollups/monthly/month=YYYY-MM/totals.parquet   one row per model for the month (day NULL)
    <data>/rollups/monthly/month=YYYY-MM/days.parquet     one row per (day, model)

derived from the daily rows (a pure function of them; rewritten whenever a day of the month is).
A range reads the totals of every month it covers entirely and the day rows of the (at most two)
months it covers partly: a year is about 13 small files. Counts, tokens and costs are summed; histograms are merged bucket by
bucket; percentiles of merged rows come from the merged histograms (within ``histogram.ALPHA``).
``requests`` of a merged row is the sum of its rows' (a request retried on two providers of one
model counts twice: rare, and documented).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.rollup import histogram

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from hive_core.store.datadir import DataDir

__all__ = [
    "SUM_COLUMNS", "canonical", "day_model_rows", "from_numpy", "list_parts", "merge_by", "merge_lists", "read_models",
    "with_all_counters", "write_month", "write_rows",
]

#: counters summed when rows merge (everything additive in a rollup row)
SUM_COLUMNS = (
    "requests", "attempts", "successes", "errors", "retries", "fallbacks", "usage_events",
    "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "cache_write_tokens",
    "prompt_audio_tokens", "prompt_image_tokens", "completion_audio_tokens", "completion_image_tokens",
    "web_search_requests", "cost_usd", "cost_billed_usd", "cost_estimated_usd", "cost_unknown",
    "byok_requests", "byok_fee_usd", "byok_upstream_usd", "byok_upstream_unknown", "streams",
    "streams_cancelled", "streams_truncated", "tokens_per_s_sum", "tokens_per_s_n",
)
#: counters in USD (the other counters are integers)
_FLOAT_SUMS = frozenset(name for name in SUM_COLUMNS if name.endswith("_usd") or name == "tokens_per_s_sum")
#: largest groups x bucket-span merged through a dense array (8 bytes each)
_DENSE_LIMIT = 4_000_000
HISTOGRAMS = (("latency", "latency_buckets", "latency_counts"), ("ttft", "ttft_buckets", "ttft_counts"))
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def canonical(table: pa.Table) -> pa.Table:
    """One chunk per column and list items named ``element`` (Parquet's name): the bytes written
    must not depend on how the rows were assembled (DuckDB, pyarrow and Parquet name list items
    differently, and the name lands in the file's stored Arrow schema). Renaming is a zero-copy
    view, not a cast."""
    import pyarrow as pa

    table = table.combine_chunks()
    columns, fields = [], []
    for f, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_list(f.type):
            f = pa.field(f.name, pa.list_(pa.field("element", f.type.value_type)), f.nullable)
            column = pa.chunked_array([chunk.view(f.type) for chunk in column.chunks], f.type)
        columns.append(column)
        fields.append(f)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def with_all_counters(table: pa.Table) -> pa.Table:
    """Rollup rows of an older format with the counters it lacked, as 0 (appended): the events they
    came from did not record them (the usage fields of schema 2). Only a day kept without its
    events is read in an older format: every other day is recomputed when the format changes."""
    import numpy as np
    import pyarrow as pa

    for name in SUM_COLUMNS:
        if name not in table.column_names:
            dtype = np.float64 if name in _FLOAT_SUMS else np.int64
            table = table.append_column(name, from_numpy(np.zeros(table.num_rows, dtype), pa.from_numpy_dtype(dtype)))
    return table


def write_rows(table: pa.Table, path: Path) -> None:
    """Replace ``path`` with rollup rows, atomically and in :func:`canonical` form. Only the string
    columns are dictionary-encoded: the histogram lists are nearly unique per row, and encoding
    them took 40% of the write and made the file larger."""
    import pyarrow as pa

    from ingest import write_atomic

    strings = [f.name for f in table.schema
               if pa.types.is_string(f.type) or (pa.types.is_list(f.type) and pa.types.is_string(f.type.value_type))]
    write_atomic(canonical(table), path, overwrite=True, dictionary=strings)


def _group_index(table: pa.Table, keys: tuple[str, ...]) -> tuple[np.ndarray, pa.Table]:
    """Group id per row (groups sorted by key, NULLs first) and the table of distinct keys.

    Each key column becomes sorted codes (:func:`_column_codes`), the codes one mixed-radix int64
    per row, and ``np.unique`` of those the groups: no ``pyarrow.compute`` (50 ms to import) in
    the daily rollup's process."""
    import numpy as np
    import pyarrow as pa

    coded = [_column_codes(table[k]) for k in keys]
    combined = np.zeros(table.num_rows, dtype=np.int64)
    for codes, size, _pick in coded:
        combined = combined * size + codes
    groups, group = np.unique(combined, return_inverse=True)
    columns = {}
    for key, (_codes, size, pick) in reversed(list(zip(keys, coded, strict=True))):  # last key's digit first
        groups, digit = np.divmod(groups, size)
        columns[key] = pick(digit)
    return group.ravel().astype(np.int64), pa.table({k: columns[k] for k in keys})


def _column_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, int, Callable[[np.ndarray], pa.Array]]:
    """Per row, the rank of its value among the column's distinct values (NULL first); how many
    there are; and a function from ranks to an array of those values. Dates and integers without
    NULLs go through numpy, anything else (strings: a few dozen models) through a Python dict."""
    import numpy as np
    import pyarrow as pa

    kind = column.type
    if column.null_count == 0 and (pa.types.is_date32(kind) or pa.types.is_integer(kind)):
        numbers = column.to_numpy()
        storage = np.int32 if pa.types.is_date32(kind) else numbers.dtype  # date32: days since 1970
        distinct, codes = np.unique(numbers.astype(np.int64), return_inverse=True)
        values = distinct.astype(storage)
        return codes.ravel().astype(np.int64), len(values), lambda ranks: from_numpy(values[ranks], kind)
    items = column.to_pylist()
    ordered = sorted(set(items), key=lambda v: (v is not None, v))
    rank = {v: i for i, v in enumerate(ordered)}
    codes = np.fromiter((rank[v] for v in items), np.int64, len(items))
    return codes, len(ordered), lambda ranks: pa.array([ordered[i] for i in ranks.tolist()], kind)


def list_parts(lists: pa.ChunkedArray | pa.ListArray) -> tuple[np.ndarray, pa.Array]:
    """Offsets (from 0) of each row's items (a null list is empty) and the items of all rows,
    concatenated. (``ListArray.flatten`` would import ``pyarrow.compute``.)"""
    import pyarrow as pa

    if isinstance(lists, pa.ChunkedArray):
        array = lists.chunk(0) if lists.num_chunks == 1 else lists.combine_chunks()
    else:
        array = lists
    offsets = array.offsets.to_numpy()
    return offsets - offsets[0], array.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def from_numpy(values: np.ndarray, type: pa.DataType | None = None, *, nan_is_null: bool = False) -> pa.Array:
    """An Arrow array over a numpy array's buffer (NaN as null with ``nan_is_null``). ``pa.array``
    on a numpy array would import ``numpy.ma``, 8 ms of every rollup process."""
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    buffers = [None, pa.py_buffer(values)]
    null_count = 0
    if nan_is_null:
        valid = ~np.isnan(values)
        buffers[0] = pa.py_buffer(np.packbits(valid, bitorder="little"))
        null_count = int(len(values) - valid.sum())
    return pa.Array.from_buffers(type or pa.from_numpy_dtype(values.dtype), len(values), buffers, null_count=null_count)


def merge_lists(group: np.ndarray, groups: int, buckets: pa.ChunkedArray, counts: pa.ChunkedArray,
                 value_type: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Per group, the sum of its rows' sparse histograms (or error mixes) as two list arrays."""
    import numpy as np
    import pyarrow as pa

    offsets, items = list_parts(buckets)
    weights = list_parts(counts)[1].to_numpy().astype(np.int64)
    rows = np.repeat(group, np.diff(offsets))
    if pa.types.is_string(value_type):  # a handful of distinct statuses
        strings = items.to_pylist()
        names = sorted(set(strings))
        index = {name: i for i, name in enumerate(names)}
        codes = np.fromiter((index[name] for name in strings), np.int64, len(strings))
    else:
        codes = items.to_numpy().astype(np.int64)
    # one int64 key per (group, bucket), ordered by group then bucket
    low = int(codes.min()) if len(codes) else 0
    span = (int(codes.max()) - low + 1) if len(codes) else 1
    keys = rows * span + (codes - low)
    if groups * span <= _DENSE_LIMIT:  # a dense count per key: no sort
        dense = np.bincount(keys, weights=weights, minlength=groups * span)
        uniq_key = np.flatnonzero(dense)
        sums = dense[uniq_key].astype(np.int64)
    else:  # sparse keys (the zero bucket far below the others, or very many groups)
        uniq_key, inverse = np.unique(keys, return_inverse=True)
        sums = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniq_key)).astype(np.int64)
    uniq = np.stack([uniq_key // span, uniq_key % span + low])
    merged_offsets = from_numpy(np.concatenate([[0], np.cumsum(np.bincount(uniq[0], minlength=groups))]).astype(np.int32))
    if pa.types.is_string(value_type):
        merged: pa.Array = pa.array([names[i] for i in uniq[1].tolist()], value_type)
    else:
        merged = from_numpy(uniq[1].astype(np.int32), value_type)
    return (pa.ListArray.from_arrays(merged_offsets, merged),
            pa.ListArray.from_arrays(merged_offsets, from_numpy(sums.astype(np.int64))))


def merge_by(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """Merge rollup rows by ``keys``: sums, merged histograms and error mixes, percentiles from them."""
    import numpy as np
    import pyarrow as pa

    group, out = _group_index(table, keys)
    n = out.num_rows
    columns: dict[str, Any] = {k: out[k] for k in keys}
    for name in SUM_COLUMNS:
        values = table[name].to_numpy()
        dtype = np.float64 if pa.types.is_floating(table.schema.field(name).type) else np.int64
        acc = np.zeros(n, dtype=dtype)
        np.add.at(acc, group, values.astype(dtype))
        columns[name] = from_numpy(acc)
    statuses, counts = merge_lists(group, n, table["error_statuses"], table["error_counts"], pa.string())
    columns["error_statuses"], columns["error_counts"] = statuses, counts
    for prefix, b_col, c_col in HISTOGRAMS:
        b_arr, c_arr = merge_lists(group, n, table[b_col], table[c_col], pa.int32())
        columns[b_col], columns[c_col] = b_arr, c_arr
        b_offsets, b_items = list_parts(b_arr)
        qs = histogram.grouped_quantiles(b_offsets, b_items.to_numpy(), list_parts(c_arr)[1].to_numpy(),
                                         [q for _, q in QUANTILES])
        for j, (label, _q) in enumerate(QUANTILES):
            columns[f"{prefix}_{label}_ms"] = from_numpy(qs[:, j], nan_is_null=True)
    return pa.table(columns)


def write_month(datadir: DataDir, month: str, day_models: dict[date, pa.Table | None], *, fresh: bool = False) -> None:
    """Rewrite one month's files: replace the given days' model rows (``None`` removes a day).
    ``fresh``: the month is exactly ``day_models`` (its files are not read: they may be damaged)."""
    import numpy as np
    import pyarrow as pa

    from hive_core.store.objects import read_parquet

    days_path, totals_path = datadir.rollup_month(month, "days"), datadir.rollup_month(month, "totals")
    by_day: dict[date, pa.Table] = {}  # each day's (day, model) rows, sorted by model
    if days_path.exists() and not fresh:
        kept = canonical(read_parquet(days_path))
        for day, rows in _day_slices(kept):
            by_day[day] = rows
    for day, rows in day_models.items():
        by_day.pop(day, None)
        if rows is not None and rows.num_rows:
            by_day[day] = canonical(rows)
    if not by_day:
        totals_path.unlink(missing_ok=True)
        days_path.unlink(missing_ok=True)
        return
    order = next(iter(by_day.values())).column_names
    day_rows = pa.concat_tables([by_day[day].select(order) for day in sorted(by_day)])
    totals = merge_by(day_rows, ("model",))
    group, _models = _group_index(day_rows, ("model",))  # the same groups, in the same order
    day_numbers = day_rows["day"].to_numpy().astype("datetime64[D]").astype(np.int64)
    first, last = np.full(totals.num_rows, np.iinfo(np.int64).max), np.full(totals.num_rows, np.iinfo(np.int64).min)
    np.minimum.at(first, group, day_numbers)
    np.maximum.at(last, group, day_numbers)
    totals = totals.append_column("day", pa.nulls(totals.num_rows, pa.date32()))
    totals = totals.append_column("first_day", from_numpy(first.astype(np.int32), pa.date32()))
    totals = totals.append_column("last_day", from_numpy(last.astype(np.int32), pa.date32()))
    day_rows = day_rows.select(totals.column_names)
    # Days first: a reader between the two renames uses either file consistently (see read_models).
    write_rows(day_rows, days_path)
    write_rows(totals, totals_path)


def _day_slices(rows: pa.Table) -> list[tuple[date, pa.Table]]:
    """The rows of each day of a table sorted by day (zero-copy slices)."""
    import numpy as np

    days = rows["day"].to_numpy()
    starts = np.flatnonzero(np.concatenate([[True], days[1:] != days[:-1]])) if len(days) else np.empty(0, np.int64)
    ends = np.append(starts[1:], len(days))
    return [(rows["day"][int(a)].as_py(), rows.slice(int(a), int(b - a))) for a, b in zip(starts, ends, strict=True)]


def day_model_rows(fine: pa.Table) -> pa.Table:
    """The (day, model) rows of fine rollup rows (any number of days), sorted by day then model."""
    merged = merge_by(fine, ("day", "model"))
    merged = merged.append_column("first_day", merged["day"])
    return merged.append_column("last_day", merged["day"])


def _month_rows(datadir: DataDir, month: date, since: date, until: date, exclude: frozenset[date],
                skip: frozenset[str]) -> pa.Table | None:
    """One month's contribution to a range: its totals if the range covers its data, else day rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    name = f"{month.year:04d}-{month.month:02d}"
    totals_path = datadir.rollup_month(name, "totals")
    if name in skip or not totals_path.exists():
        return None
    totals = _read(totals_path)
    covered = totals.num_rows and pc.min(totals["first_day"]).as_py() >= since \
        and pc.max(totals["last_day"]).as_py() <= until and not any(d.strftime("%Y-%m") == name for d in exclude)
    if covered:
        return totals
    days = _read(datadir.rollup_month(name, "days"))
    mask = pc.and_(pc.greater_equal(days["day"], pa.scalar(since, pa.date32())),
                   pc.less_equal(days["day"], pa.scalar(until, pa.date32())))
    if exclude:
        mask = pc.and_(mask, pc.invert(pc.is_in(days["day"], value_set=pa.array(sorted(exclude), pa.date32()))))
    return days.filter(mask)


def _read(path: Path) -> pa.Table:
    """A month file; one :class:`~hive_core.errors.DataError` line when it cannot be read."""
    import pyarrow as pa

    from hive_core.errors import DataError
    from hive_core.store.objects import read_parquet

    try:
        return read_parquet(path)
    except (OSError, pa.ArrowException) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: unreadable rollup file ({reason}): run `hive-jobs rollup` to regenerate it") from exc


def read_models(datadir: DataDir, since: date, until: date, exclude: frozenset[date] = frozenset(),
                skip_months: frozenset[str] = frozenset()) -> pa.Table:
    """Model rows covering ``since..until`` (inclusive), before merging: whole-month rows where the
    range covers the month's data, day rows elsewhere. Days in ``exclude`` (stale rollups the caller
    computes live) are left out, so a month holding one reads its day rows; months in
    ``skip_months`` (``YYYY-MM`` whose files changed outside the rollup) are not read at all."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    months = []
    month = date(since.year, since.month, 1)
    while month <= until:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    # Parquet decoding releases the GIL: months are read in parallel.
    with ThreadPoolExecutor(max_workers=min(4, len(months) or 1)) as pool:
        found = list(pool.map(lambda m: _month_rows(datadir, m, since, until, exclude, skip_months), months))
    pieces = [p for p in found if p is not None and p.num_rows]
    if not pieces:
        return pa.table({})
    return pa.concat_tables(pieces)
