"""Fast group-bys over daily rollup rows for reports and suggestions: sums, percentiles, error mixes.

:func:`jobs.rollup.monthly.merge_by` merges every list column of every row at once (right for writing
monthly files); a report over a month of a busy store only needs a few counters per group and one
histogram's percentiles, so these helpers do just that: counters through Arrow's ``group_by``,
percentiles by merging each group's histograms with :func:`jobs.rollup.histogram.merge` and reading them
with :func:`jobs.rollup.histogram.quantile_cont` (the same arithmetic the rollups promise, within ``ALPHA``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hive_core.errors import CALLER_FAULT_STATUSES
from jobs.rollup import histogram

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["NOT_SAMPLES", "error_mix", "group_sums", "model_errors", "percentiles", "samples"]

#: attempt outcomes that say nothing about the model - the caller's faults: a wrong key or base URL,
#: a network outage, an unknown model id or malformed request, no credits, a flagged prompt, a
#: cancel, a budget refusal (:data:`hive_core.errors.CALLER_FAULT_STATUSES`). Success rates and
#: error mixes everywhere (rankings, performance, suggestions, reports) leave them out; the rollup
#: keeps counting them, so reports can still show them.
NOT_SAMPLES = CALLER_FAULT_STATUSES


def samples(attempts: int, errors: Mapping[str, int]) -> int:
    """Attempts that reached a verdict on the model: ``attempts`` minus the :data:`NOT_SAMPLES`."""
    return int(attempts) - sum(n for status, n in errors.items() if status in NOT_SAMPLES)


def model_errors(errors: Mapping[str, int]) -> dict[str, int]:
    """The error mix without the :data:`NOT_SAMPLES`: the failures that count against the model."""
    return {status: n for status, n in errors.items() if status not in NOT_SAMPLES}

_KEY_NULL = "\x00"


def _key_column(table: pa.Table, keys: Sequence[str]) -> pa.Array:
    """One string per row standing for its key tuple (NULLs kept apart from any real value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = [pc.fill_null(pc.cast(table[k], pa.string()), _KEY_NULL) for k in keys]
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "\x01")


def group_sums(table: pa.Table, keys: Sequence[str], columns: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per distinct key: the keys and the sum of each column."""
    grouped = table.select([*keys, *columns]).group_by(list(keys), use_threads=False).aggregate(
        [(c, "sum") for c in columns])
    return [{**{k: row[k] for k in keys}, **{c: row[f"{c}_sum"] for c in columns}} for row in grouped.to_pylist()]


def percentiles(table: pa.Table, keys: Sequence[str], qs: Sequence[float], prefix: str = "latency"
                ) -> dict[tuple[Any, ...], list[float | None]]:
    """Key tuple -> percentiles ``qs`` of the merged ``<prefix>_buckets/_counts`` histograms.

    Every group at once: the histograms merged as the monthly files merge them
    (:func:`jobs.rollup.monthly.merge_lists`) and read with
    :func:`jobs.rollup.histogram.grouped_quantiles`, the arithmetic of
    :func:`~jobs.rollup.histogram.quantile_cont` (a merge per group in Python cost a monthly report
    half a second)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from jobs.rollup.monthly import list_parts, merge_lists

    if table.num_rows == 0:
        return {}
    key_col = _key_column(table, keys)
    codes = pc.dictionary_encode(key_col).combine_chunks() if isinstance(key_col, pa.ChunkedArray) \
        else pc.dictionary_encode(key_col)
    group = codes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n = len(codes.dictionary)
    buckets, counts = merge_lists(group, n, table[f"{prefix}_buckets"], table[f"{prefix}_counts"], pa.int32())
    offsets, items = list_parts(buckets)
    quantiles = histogram.grouped_quantiles(offsets, items.to_numpy(), list_parts(counts)[1].to_numpy(), qs)
    _, firsts = np.unique(group, return_index=True)  # each group's first row, in group order
    key_rows = table.select(list(keys)).take(pa.array(firsts)).to_pylist()
    return {tuple(row[k] for k in keys): [None if np.isnan(v) else float(v) for v in quantiles[g]]
            for g, row in enumerate(key_rows)}


def error_mix(table: pa.Table, keys: Sequence[str]) -> dict[tuple[Any, ...], dict[str, int]]:
    """Key tuple -> {error status: attempts}, summed over the rows of each key."""
    import pyarrow as pa
    import pyarrow.compute as pc

    statuses = table["error_statuses"].combine_chunks()
    parents = pc.list_parent_indices(statuses)
    flat = pa.table({
        **{k: table[k].combine_chunks().take(parents) for k in keys},
        "status": statuses.flatten(),
        "n": table["error_counts"].combine_chunks().flatten(),
    })
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in group_sums(flat, [*keys, "status"], ["n"]):
        out.setdefault(tuple(row[k] for k in keys), {})[row["status"]] = int(row["n"])
    return out
