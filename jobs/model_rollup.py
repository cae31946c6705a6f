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

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs import histogram

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["SUM_COLUMNS", "canonical", "day_model_rows", "merge_by", "month_path", "read_models", "write_month", "write_rows"]

#: counters summed when rows merge (everything additive in a rollup row)
SUM_COLUMNS = (
    "requests", "attempts", "successes", "errors", "retries", "fallbacks", "usage_events",
    "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "cost_usd",
    "cost_billed_usd", "cost_estimated_usd", "cost_unknown", "streams", "streams_cancelled",
    "streams_truncated", "tokens_per_s_sum", "tokens_per_s_n",
)
#: largest groups x bucket-span merged through a dense array (8 bytes each)
_DENSE_LIMIT = 4_000_000
HISTOGRAMS = (("latency", "latency_buckets", "latency_counts"), ("ttft", "ttft_buckets", "ttft_counts"))
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def canonical(table: pa.Table) -> pa.Table:
    """One chunk per column and list items named ``element`` (Parquet's name): the bytes written
    must not depend on how the rows were assembled (DuckDB, pyarrow and Parquet name list items
    differently, and the name lands in the file's stored Arrow schema)."""
    import pyarrow as pa

    fields = [pa.field(f.name, pa.list_(pa.field("element", f.type.value_type)), f.nullable)
              if pa.types.is_list(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields)).combine_chunks()


def write_rows(table: pa.Table, path: Path) -> None:
    """Replace ``path`` with rollup rows, atomically and in :func:`canonical` form. Only the string
    columns are dictionary-encoded: the histogram lists are nearly unique per row, and encoding
    them took 40% of the write and made the file larger."""
    import pyarrow as pa

    from ingest import write_atomic

    strings = [f.name for f in table.schema
               if pa.types.is_string(f.type) or (pa.types.is_list(f.type) and pa.types.is_string(f.type.value_type))]
    write_atomic(canonical(table), path, overwrite=True, dictionary=strings)


def month_path(rollups_dir: Path, month: str, part: str = "totals") -> Path:
    """``<rollups>/monthly/month=YYYY-MM/totals.parquet`` (or ``days.parquet``)."""
    return rollups_dir / "monthly" / f"month={month}" / f"{part}.parquet"


def _group_index(table: pa.Table, keys: tuple[str, ...]) -> tuple[np.ndarray, pa.Table]:
    """Group id per row (groups sorted by key, NULLs first) and the table of distinct keys."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    distinct = table.select(list(keys)).group_by(list(keys)).aggregate([])
    distinct = distinct.sort_by([(k, "ascending", "at_start") for k in keys])
    if distinct.num_rows == 0:
        return np.empty(0, np.int64), distinct
    # join row -> group through a string rendering of the key (few distinct keys; nulls kept apart)
    def render(t: pa.Table) -> pa.Array:
        parts = [pc.fill_null(pc.cast(t[k], pa.string()), "\x00null") for k in keys]
        return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "\x01")
    index = pc.index_in(render(table), value_set=render(distinct)).to_numpy(zero_copy_only=False)
    return index.astype(np.int64), distinct


def _merge_lists(group: np.ndarray, groups: int, buckets: pa.ChunkedArray, counts: pa.ChunkedArray,
                 value_type: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Per group, the sum of its rows' sparse histograms (or error mixes) as two list arrays."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    b_list, c_list = buckets.combine_chunks(), counts.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(b_list), 0).to_numpy()
    values = b_list.flatten()
    weights = c_list.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.repeat(group, lengths)
    if pa.types.is_string(value_type):
        names = pc.unique(values)
        sorted_names = names.take(pc.array_sort_indices(names))
        codes = pc.index_in(values, value_set=sorted_names).to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        codes = values.to_numpy(zero_copy_only=False).astype(np.int64)
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
    offsets = np.concatenate([[0], np.cumsum(np.bincount(uniq[0], minlength=groups))]).astype(np.int32)
    if pa.types.is_string(value_type):
        items: pa.Array = sorted_names.take(pa.array(uniq[1]))
    else:
        items = pa.array(uniq[1].astype(np.int32), value_type)
    return (pa.ListArray.from_arrays(pa.array(offsets), items),
            pa.ListArray.from_arrays(pa.array(offsets), pa.array(sums, pa.int64())))


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
        columns[name] = pa.array(acc)
    statuses, counts = _merge_lists(group, n, table["error_statuses"], table["error_counts"], pa.string())
    columns["error_statuses"], columns["error_counts"] = statuses, counts
    for prefix, b_col, c_col in HISTOGRAMS:
        b_arr, c_arr = _merge_lists(group, n, table[b_col], table[c_col], pa.int32())
        columns[b_col], columns[c_col] = b_arr, c_arr
        qs = histogram.grouped_quantiles(b_arr.offsets.to_numpy(), b_arr.flatten().to_numpy(),
                                         c_arr.flatten().to_numpy(), [q for _, q in QUANTILES])
        for j, (label, _q) in enumerate(QUANTILES):
            columns[f"{prefix}_{label}_ms"] = pa.array(qs[:, j], pa.float64(), from_pandas=True)
    return pa.table(columns)


def write_month(rollups_dir: Path, month: str, day_models: dict[date, pa.Table | None]) -> None:
    """Rewrite one month's files: replace the given days' model rows (``None`` removes a day)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    days_path, totals_path = month_path(rollups_dir, month, "days"), month_path(rollups_dir, month)
    days: list[pa.Table] = []
    if days_path.exists():
        kept = pq.read_table(days_path)
        drop = pa.array(sorted(day_models), pa.date32())
        days.append(kept.filter(pc.invert(pc.is_in(kept["day"], value_set=drop))))
    days.extend(t for t in day_models.values() if t is not None and t.num_rows)
    if sum(t.num_rows for t in days) == 0:
        totals_path.unlink(missing_ok=True)
        days_path.unlink(missing_ok=True)
        return
    day_rows = pa.concat_tables(days, promote_options="permissive").sort_by([("day", "ascending"), ("model", "ascending")])
    totals = merge_by(day_rows, ("model",))
    totals = totals.append_column("day", pa.nulls(totals.num_rows, pa.date32()))
    bounds = day_rows.group_by("model").aggregate([("day", "min"), ("day", "max")])
    first = pc.index_in(totals["model"], value_set=bounds["model"])
    totals = totals.append_column("first_day", bounds["day_min"].take(first))
    totals = totals.append_column("last_day", bounds["day_max"].take(first))
    day_rows = day_rows.select(totals.column_names)
    # Days first: a reader between the two renames uses either file consistently (see read_models).
    write_rows(day_rows, days_path)
    write_rows(totals.cast(day_rows.schema), totals_path)


def day_model_rows(fine: pa.Table) -> pa.Table:
    """The (day, model) rows of fine rollup rows (any number of days), sorted by day then model."""
    merged = merge_by(fine, ("day", "model"))
    merged = merged.append_column("first_day", merged["day"])
    return merged.append_column("last_day", merged["day"])


def _month_rows(rollups_dir: Path, month: date, since: date, until: date, exclude: frozenset[date]) -> pa.Table | None:
    """One month's contribution to a range: its totals if the range covers its data, else day rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    name = month.strftime("%Y-%m")
    totals_path = month_path(rollups_dir, name)
    if not totals_path.exists():
        return None
    totals = pq.read_table(totals_path)
    covered = totals.num_rows and pc.min(totals["first_day"]).as_py() >= since \
        and pc.max(totals["last_day"]).as_py() <= until and not any(d.strftime("%Y-%m") == name for d in exclude)
    if covered:
        return totals
    days = pq.read_table(month_path(rollups_dir, name, "days"))
    mask = pc.and_(pc.greater_equal(days["day"], pa.scalar(since, pa.date32())),
                   pc.less_equal(days["day"], pa.scalar(until, pa.date32())))
    if exclude:
        mask = pc.and_(mask, pc.invert(pc.is_in(days["day"], value_set=pa.array(sorted(exclude), pa.date32()))))
    return days.filter(mask)


def read_models(rollups_dir: Path, since: date, until: date, exclude: frozenset[date] = frozenset()) -> pa.Table:
    """Model rows covering ``since..until`` (inclusive), before merging: whole-month rows where the
    range covers the month's data, day rows elsewhere. Days in ``exclude`` (stale rollups the caller
    computes live) are left out, so a month holding one reads its day rows."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    months = []
    month = date(since.year, since.month, 1)
    while month <= until:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    # Parquet decoding releases the GIL: months are read in parallel.
    with ThreadPoolExecutor(max_workers=min(4, len(months) or 1)) as pool:
        found = list(pool.map(lambda m: _month_rows(rollups_dir, m, since, until, exclude), months))
    pieces = [p for p in found if p is not None and p.num_rows]
    if not pieces:
        return pa.table({})
    return pa.concat_tables(pieces)
