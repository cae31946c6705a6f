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
    """Key tuple -> percentiles ``qs`` of the merged ``<prefix>_buckets/_counts`` histograms."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return {}
    key_col = _key_column(table, keys)
    codes = pc.dictionary_encode(key_col).combine_chunks() if isinstance(key_col, pa.ChunkedArray) \
        else pc.dictionary_encode(key_col)
    group = codes.indices.to_numpy(zero_copy_only=False)
    buckets = table[f"{prefix}_buckets"].combine_chunks()
    counts = table[f"{prefix}_counts"].combine_chunks()
    offsets = buckets.offsets.to_numpy()
    b_flat = buckets.flatten().to_numpy(zero_copy_only=False)
    c_flat = counts.flatten().to_numpy(zero_copy_only=False)
    firsts: dict[int, int] = {}
    for row, g in enumerate(group):
        firsts.setdefault(int(g), row)
    out: dict[tuple[Any, ...], list[float | None]] = {}
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(len(codes.dictionary) + 1))
    for g in range(len(codes.dictionary)):
        rows = order[bounds[g]:bounds[g + 1]]
        merged = histogram.merge([b_flat[offsets[r]:offsets[r + 1]] for r in rows],
                                 [c_flat[offsets[r]:offsets[r + 1]] for r in rows])
        first = firsts[g]
        out[tuple(table[k][first].as_py() for k in keys)] = histogram.quantile_cont(*merged, qs)
    return out


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
