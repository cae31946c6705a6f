"""The ranking table: the contract between the rankings job (writer) and the selector (reader).

``hive-jobs`` writes ``<data>/rankings/rankings.parquet`` (``DataDir.rankings_file``) with :func:`ranking_schema`; one row per
(task category, model, window). ``task_category = "*"`` aggregates every category. The pure
functions here (:func:`wilson_lower`, :func:`shrink`, :func:`strategy_scores`) are what the job
calls to fill the score columns, and what the selector calls for its own numbers, so both agree.

Scoring. Four features, each in about [0, 1], higher is better:

* quality  - rated quality, shrunk to the prior by ``quality_samples`` (k = 10);
* success  - Wilson 95 % lower bound of the success rate, shrunk to the prior (k = 20);
* latency  - ``0.5 / (1 + p95 / 8 s) + 0.5 / (1 + ttft_p50 / 1 s)``, each shrunk (k = 10);
* cost     - effective cost per request = ``cost_per_request_usd`` (billed USD per *successful*
  request, i.e. total cost / successes, so anything billed for failed attempts is included),
  shrunk to the catalog price estimate (k = 5), mapped by ``1 - log10(1 + c / 1e-5 USD) / 5``
  (1e-5 USD -> 0.94, 1 cent -> 0.40, 1 USD -> 0.0).

Table columns: ``samples`` are calls that count for success (attempts minus caller-side
outcomes), ``success_lower`` is :func:`wilson_lower` of successes/samples, latencies are of
successful calls, ``quality`` is the mean rating in [0, 1] over ``quality_samples`` ratings.

Strategy weights (quality, success, latency, cost):

===============  =======  =======  =======  =====
strategy         quality  success  latency  cost
===============  =======  =======  =======  =====
quality-first    0.60     0.25     0.10     0.05
performance      0.25     0.25     0.45     0.05
balanced         0.35     0.25     0.15     0.25
cost-optimized   0.4 x quality-first + 0.6 x cost  (= 0.24, 0.10, 0.04, 0.62)
===============  =======  =======  =======  =====

Cost-optimized is defined as a mix of quality-first and cost on purpose: then, whatever the
numbers, it can never prefer a costlier model than quality-first does (see the selector tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.errors import DataError, SchemaMismatch
from hive_core.store.datadir import DataDir, is_remote
from hive_core.store.filecache import cached_parse

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "ALL_TASKS",
    "DEFAULT_PRIOR",
    "MIN_SAMPLES",
    "RANKING_COLUMNS",
    "STRATEGIES",
    "STRATEGY_WEIGHTS",
    "Metrics",
    "Rankings",
    "effective_cost",
    "load_rankings",
    "ranking_schema",
    "shrink",
    "strategy_scores",
    "wilson_lower",
]

STRATEGIES: tuple[str, ...] = ("cost-optimized", "balanced", "performance", "quality-first")
ALL_TASKS = "*"
#: samples a (task, model) row needs before the selector trusts it over catalog priors
MIN_SAMPLES = 20

#: column -> Arrow type name; the order is the file's column order
RANKING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("task_category", "string"), ("model", "string"), ("window_days", "int64"), ("samples", "int64"),
    ("successes", "int64"), ("success_rate", "double"), ("success_lower", "double"),
    ("latency_p95_ms", "double"), ("ttft_p50_ms", "double"), ("cost_per_request_usd", "double"),
    ("quality", "double"), ("quality_samples", "int64"), ("score_cost_optimized", "double"),
    ("score_balanced", "double"), ("score_performance", "double"), ("score_quality_first", "double"),
    ("computed_at", "timestamp[us, tz=UTC]"),
)
_NULLABLE = {"latency_p95_ms", "ttft_p50_ms", "cost_per_request_usd", "quality"}

#: (quality, success, latency, cost) per strategy; cost-optimized derives from quality-first
STRATEGY_WEIGHTS: dict[str, tuple[float, float, float, float]] = {
    "quality-first": (0.60, 0.25, 0.10, 0.05),
    "performance": (0.25, 0.25, 0.45, 0.05),
    "balanced": (0.35, 0.25, 0.15, 0.25),
}
COST_MIX = 0.4  # cost-optimized = COST_MIX * quality-first + (1 - COST_MIX) * cost
STRATEGY_WEIGHTS["cost-optimized"] = tuple(  # type: ignore[assignment]
    COST_MIX * w + (1 - COST_MIX) * (i == 3) for i, w in enumerate(STRATEGY_WEIGHTS["quality-first"])
)

_BALANCED, _PERFORMANCE, _QUALITY_FIRST = (STRATEGY_WEIGHTS[name] for name in ("balanced", "performance", "quality-first"))
K_QUALITY, K_SUCCESS, K_LATENCY, K_COST = 10, 20, 10, 5
P95_REF_MS, TTFT_REF_MS, COST_REF_USD = 8000.0, 1000.0, 1e-5
_COST_SPAN = math.log10(1 + 1 / COST_REF_USD)


def ranking_schema() -> pa.Schema:
    """The Arrow schema of ``rankings.parquet`` (imports pyarrow, so only writers and tests call it)."""
    import pyarrow as pa

    types = {"string": pa.string(), "int64": pa.int64(), "double": pa.float64(),
             "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC")}
    return pa.schema([pa.field(name, types[kind], nullable=name in _NULLABLE or name == "computed_at")
                      for name, kind in RANKING_COLUMNS])


def wilson_lower(successes: int, n: int, z: float = 1.96) -> float:
    """Lower bound of the Wilson score interval (95 % by default); 0.0 when ``n == 0``."""
    if n <= 0:
        return 0.0
    p = min(max(successes / n, 0.0), 1.0)
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z2 / n))


def shrink(measured: float | None, prior: float, n: int, k: float) -> float:
    """``(n * measured + k * prior) / (n + k)``: few samples stay near the prior; None -> prior."""
    if measured is None or n <= 0:
        return prior
    return (n * measured + k * prior) / (n + k)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Measured numbers of one (task, model) row - or a prior, with ``samples == 0``."""

    # (fields with defaults: `duplicates` pairs them with any such record by shape; nothing is repeated)
    samples: int = 0
    success_rate: float | None = None
    success_lower: float | None = None
    latency_p95_ms: float | None = None
    ttft_p50_ms: float | None = None
    cost_per_request_usd: float | None = None
    quality: float | None = None
    quality_samples: int = 0


#: what :func:`strategy_scores` assumes when the caller has no better prior
DEFAULT_PRIOR = Metrics(success_rate=0.95, success_lower=0.95, latency_p95_ms=8000.0, ttft_p50_ms=1000.0,
                        cost_per_request_usd=1e-3, quality=0.6)


def _value(value: float | None, default: float) -> float:
    return default if value is None else value


def effective_cost(metrics: Metrics, prior: Metrics = DEFAULT_PRIOR) -> float:
    """Expected USD per successful request: the measured cost per success shrunk to the prior's."""
    cost = shrink(metrics.cost_per_request_usd, _value(prior.cost_per_request_usd, 1e-3), metrics.samples, K_COST)
    return max(cost, 0.0)


def features(metrics: Metrics, prior: Metrics = DEFAULT_PRIOR) -> tuple[float, float, float, float]:
    """(quality, success, latency, cost) in about [0, 1], as documented in the module docstring."""
    n = metrics.samples
    quality = shrink(metrics.quality, _value(prior.quality, 0.6), metrics.quality_samples, K_QUALITY)
    success = shrink(metrics.success_lower, _value(prior.success_lower, 0.95), n, K_SUCCESS)
    p95 = shrink(metrics.latency_p95_ms, _value(prior.latency_p95_ms, P95_REF_MS), n, K_LATENCY)
    ttft = shrink(metrics.ttft_p50_ms, _value(prior.ttft_p50_ms, TTFT_REF_MS), n, K_LATENCY)
    latency = 0.5 / (1 + max(p95, 0.0) / P95_REF_MS) + 0.5 / (1 + max(ttft, 0.0) / TTFT_REF_MS)
    cost = 1 - math.log10(1 + effective_cost(metrics, prior) / COST_REF_USD) / _COST_SPAN
    return min(max(quality, 0.0), 1.0), success, latency, cost


def strategy_scores(metrics: Metrics, prior: Metrics | None = None, bonus: float = 0.0) -> dict[str, float]:
    """Score of each strategy (higher is better). ``bonus`` (the selector's tier pull and
    exploration bonus) is added to every strategy's non-cost part, so cost-optimized stays exactly
    ``COST_MIX * quality-first + (1 - COST_MIX) * cost``."""
    quality, success, latency, cost = features(metrics, prior or DEFAULT_PRIOR)
    # Each weighted sum spelled out, added left to right as sum() did (a selector computes 339 of
    # these per task: the generator and zip were half the time).
    w = _BALANCED
    balanced = w[0] * quality + w[1] * success + w[2] * latency + w[3] * cost + bonus
    w = _PERFORMANCE
    performance = w[0] * quality + w[1] * success + w[2] * latency + w[3] * cost + bonus
    w = _QUALITY_FIRST
    quality_first = w[0] * quality + w[1] * success + w[2] * latency + w[3] * cost + bonus
    return {"cost-optimized": COST_MIX * quality_first + (1 - COST_MIX) * cost, "balanced": balanced,
            "performance": performance, "quality-first": quality_first}


class Rankings:
    """The ranking table in memory: the best row per (task category, model).

    When the table holds several windows, the shortest one with at least :data:`MIN_SAMPLES`
    samples wins (recent behaviour), else the one with the most samples.
    """

    __slots__ = ("_rows", "computed_at")

    def __init__(self, rows: Mapping[tuple[str, str], Metrics] | None = None, computed_at: str | None = None) -> None:
        self._rows: dict[tuple[str, str], Metrics] = dict(rows or {})
        self.computed_at = computed_at

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> Rankings:
        """Build from rows shaped like the table (dicts with the :data:`RANKING_COLUMNS` names)."""
        best: dict[tuple[str, str], tuple[tuple[bool, int, int], Metrics]] = {}
        computed_at: str | None = None
        for row in rows:
            metrics = _metrics(row)
            key = (str(row["task_category"]), str(row["model"]))
            window = int(row.get("window_days") or 0)  # type: ignore[call-overload]
            # Prefer enough samples, then the shortest window, then the most samples.
            rank = (metrics.samples >= MIN_SAMPLES, -window, metrics.samples)
            if key not in best or rank > best[key][0]:
                best[key] = (rank, metrics)
            stamp = row.get("computed_at")
            if stamp is not None and (computed_at is None or str(stamp) > computed_at):
                computed_at = str(stamp)
        return cls({key: metrics for key, (_rank, metrics) in best.items()}, computed_at)

    def __len__(self) -> int:
        return len(self._rows)

    def __bool__(self) -> bool:
        return bool(self._rows)

    def row(self, task: str, model: str) -> Metrics | None:
        """The raw row for (task, model), however few samples it has."""
        return self._rows.get((task, model))

    def metrics(self, task: str | None, model: str, min_samples: int = MIN_SAMPLES) -> Metrics | None:
        """Numbers to trust for (task, model): the task's row with enough samples, else the
        all-tasks row with enough samples, else None (use catalog priors)."""
        for key in ((task or ALL_TASKS, model), (ALL_TASKS, model)):
            found = self._rows.get(key)
            if found is not None and found.samples >= min_samples:
                return found
        return None

    def rows_for(self, model: str) -> dict[str, Metrics]:
        """Every task category's row for ``model`` (``"*"`` included), however few samples."""
        return {task: metrics for (task, name), metrics in self._rows.items() if name == model}

    def models(self) -> set[str]:
        """Every model with at least one row."""
        return {model for _task, model in self._rows}


def _float(row: Mapping[str, object], name: str) -> float | None:
    value = row.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)  # type: ignore[arg-type]


def _metrics(row: Mapping[str, object]) -> Metrics:
    samples = int(row.get("samples") or 0)  # type: ignore[call-overload]
    successes = row.get("successes")
    rate = _float(row, "success_rate")
    if rate is None and successes is not None and samples:
        rate = int(successes) / samples  # type: ignore[call-overload]
    lower = _float(row, "success_lower")
    if lower is None and successes is not None:
        lower = wilson_lower(int(successes), samples)  # type: ignore[call-overload]
    return Metrics(
        samples=samples, success_rate=rate, success_lower=lower,
        latency_p95_ms=_float(row, "latency_p95_ms"), ttft_p50_ms=_float(row, "ttft_p50_ms"),
        cost_per_request_usd=_float(row, "cost_per_request_usd"), quality=_float(row, "quality"),
        quality_samples=int(row.get("quality_samples") or 0),  # type: ignore[call-overload]
    )


#: bump when the cached rows (_read_rows) change: stale caches are then ignored
_CACHE_VERSION = 2


def load_rankings(data_dir: Path | str) -> Rankings:
    """The ranking table of a data directory; an empty :class:`Rankings` when there is none.

    Reading Parquet needs pyarrow (~140 ms to import), so the parsed rows are cached as JSON in the
    data directory's cache folder (:mod:`hive_core.store.filecache`): the CLI loads them in a millisecond
    or two. A table that cannot be read raises :class:`~hive_core.errors.DataError` (one line).
    """
    where = DataDir(data_dir)  # type: ignore[arg-type]  # DataDir makes a str a Path; an ObjectPath stays one
    # A bucket's table is read each time: the cache is keyed by a local file's mtime and absolute path.
    cache_dir = None if is_remote(where.root) else where.cache
    try:
        rows, computed_at = cached_parse(where.rankings_file, _CACHE_VERSION, _read_rows, cache_dir=cache_dir)
    except FileNotFoundError:
        return Rankings()
    return Rankings({key: Metrics(*values) for key, values in rows.items()}, computed_at)


def _read_rows(path: Path) -> tuple[dict[tuple[str, str], tuple[Any, ...]], str | None]:
    rankings = _read_parquet(path)
    # Plain tuples, not Metrics: the cache stores plain values only and survives Metrics gaining methods.
    rows = {key: tuple(getattr(m, f) for f in Metrics.__slots__) for key, m in rankings._rows.items()}
    return rows, rankings.computed_at


def _read_parquet(path: Path) -> Rankings:
    import pyarrow as pa

    from hive_core.store.objects import read_parquet

    rewrite = "run `hive-jobs rankings` to rewrite it (it is derived from the rollups)"
    try:
        table = read_parquet(path)  # local or in object storage
    except (OSError, pa.ArrowException) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: unreadable ranking table ({reason}); {rewrite}") from exc
    missing = {"task_category", "model", "samples"} - set(table.column_names)
    if missing:
        raise SchemaMismatch(f"{path}: ranking table lacks column(s) {', '.join(sorted(missing))}; {rewrite}")
    try:
        return Rankings.from_rows(table.to_pylist())
    except (TypeError, ValueError) as exc:  # a column of the wrong type: not the job's table
        raise SchemaMismatch(f"{path}: ranking table holds a value of the wrong type ({exc}); {rewrite}") from exc
