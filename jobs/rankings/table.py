"""The ranking table the selector reads: measured reality per (task category, model), scored.

``<data>/rankings/rankings.parquet`` (schema :func:`hive_core.selection.rankings.ranking_schema`) holds one row
per (task_category, model) and one per ("*", model) over the last ``window_days`` UTC days (default
:data:`DEFAULT_WINDOW_DAYS` = 7, today included), computed from the daily rollup rows
(:mod:`jobs.rollup.period_rows`: the files, plus days not rolled up yet computed the same way) and
``quality_rating`` events:

* samples = attempts that reached a verdict: every attempt except ``cancelled`` (the caller's
  choice) and ``budget_exceeded`` (never sent); successes = ``ok`` attempts;
* success_lower = Wilson 95 % lower bound; latency_p95_ms / ttft_p50_ms from the merged histograms
  (successful attempts);
* cost_per_request_usd = total cost / successful attempts (what one answer costs);
* quality = judge and human ratings of the model's answers given in the window, weighed by their
  sample sizes (:mod:`jobs.rankings.quality`: a judge rating counts half a person's);
  quality_samples = the effective number of ratings;
* score_* = :func:`hive_core.selection.rankings.strategy_scores` with the catalog prior of the model for the
  task (:func:`hive_core.selection.priors.prior_metrics`), so few samples stay near the prior. Without a
  synced catalog every model gets the neutral :data:`hive_core.selection.rankings.DEFAULT_PRIOR` (reported).

It is rewritten by every rollup (a post-rollup step) and by ``hive-jobs rankings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.selection.rankings import ALL_TASKS, DEFAULT_PRIOR, Metrics, strategy_scores, wilson_lower

if TYPE_CHECKING:
    import pyarrow as pa

    from hive_core.settings import Settings
    from jobs.rollup.daily import RollupReport
    from queries import Store

from jobs.rankings.quality import MeasuredQuality, combine_quality
from jobs.rollup.groups import samples as verdicts

__all__ = ["DEFAULT_WINDOW_DAYS", "RankingsReport", "quality_rows", "rankings", "refresh_after_rollup"]

DEFAULT_WINDOW_DAYS = 7
#: attempt statuses that say nothing about the model
_SCORE_COLUMNS = {"cost-optimized": "score_cost_optimized", "balanced": "score_balanced",
                  "performance": "score_performance", "quality-first": "score_quality_first"}


@dataclass
class RankingsReport:
    """What a rankings run wrote."""

    path: Path
    rows: int
    models: int
    window_days: int
    priors: str  # "catalog" or "neutral (no catalog: ...)"


def _priors(settings: Settings) -> tuple[Any, str]:
    """A function (model, task) -> prior Metrics, and where the priors come from."""
    from hive_core.catalog.catalog import load_catalog
    from hive_core.errors import CatalogError, CatalogMissing, ConfigError, UnknownModel
    from hive_core.store.datadir import is_remote

    datadir = settings.datadir
    try:
        # no parse cache in object storage: the catalog is parsed from its object each run
        catalog = load_catalog(datadir.catalog_file, cache_dir=None if is_remote(datadir.root) else datadir.cache)
    except (CatalogMissing, CatalogError, ConfigError) as exc:  # ConfigError: a store the loader cannot read
        return (lambda model, task: DEFAULT_PRIOR), f"neutral (no catalog: {exc})"
    # only with a catalog: the task types' module compiles its classifier's patterns (5 ms)
    from hive_core.selection.complexity import TASK_TYPES
    from hive_core.selection.priors import prior_metrics

    def prior(model: str, task: str) -> Metrics:
        try:
            info = catalog.get(model)
        except UnknownModel:
            return DEFAULT_PRIOR
        return prior_metrics(info, TASK_TYPES.get(task) or TASK_TYPES["chat"])

    return prior, "catalog"


def quality_rows(settings: Settings, since: date, until: date, store: Store | None = None) -> list[dict[str, Any]]:
    """Rows of ``reports/quality`` for ratings given since..until (DuckDB only if any rating exists;
    ``store``: an open store to reuse, the view it reads added to it if missing)."""
    from hive_core.store.event_files import list_event_files
    from queries import connect, named_table

    if not list_event_files(settings.data_dir, "quality_rating", check=False).files:
        return []
    if store is None:
        with connect(settings.data_dir, warn=False, views=_QUALITY_VIEWS) as own:
            return quality_rows(settings, since, until, own)
    store.add_views(_QUALITY_VIEWS)
    rows: list[dict[str, Any]] = named_table(store, "reports/quality", {"since": since, "until": until}).to_pylist()
    return rows


#: the named views ``queries/reports/quality.sql`` reads
_QUALITY_VIEWS = ("rated_answers",)


def _quality(settings: Settings, since: date, until: date, store: Store | None) -> dict[tuple[str, str], MeasuredQuality]:
    return combine_quality(quality_rows(settings, since, until, store))


def ranking_rows(rows: pa.Table, quality: Mapping[tuple[str, str], MeasuredQuality],
                 prior: Any, window_days: int, computed_at: datetime) -> list[dict[str, Any]]:
    """The ranking rows of a window's daily rollup rows (pure: no files)."""
    from jobs.rollup.monthly import merge_by

    # only the columns scored: the merged histograms as Python lists would cost more than the rest
    used = ["model", "attempts", "successes", "error_statuses", "error_counts", "latency_p95_ms", "ttft_p50_ms", "cost_usd"]
    merged = merge_by(rows, ("task_category", "model")).select(["task_category", *used]).to_pylist()
    for row in merge_by(rows, ("model",)).select(used).to_pylist():
        merged.append({**row, "task_category": ALL_TASKS})
    out: list[dict[str, Any]] = []
    for row in merged:
        task, model = row["task_category"], row["model"]
        if task is None:
            continue  # untagged requests count in the "*" row only
        samples = verdicts(row["attempts"], dict(zip(row["error_statuses"], row["error_counts"], strict=True)))
        successes = row["successes"]
        measured = quality.get((task, model))
        q, q_n = (measured.mean, measured.samples) if measured else (None, 0)
        metrics = Metrics(
            samples=samples,
            success_rate=successes / samples if samples else None,
            success_lower=wilson_lower(successes, samples) if samples else None,
            latency_p95_ms=row["latency_p95_ms"],
            ttft_p50_ms=row["ttft_p50_ms"],
            cost_per_request_usd=row["cost_usd"] / successes if successes else None,
            quality=q,
            quality_samples=q_n,
        )
        scores = strategy_scores(metrics, prior(model, task))
        out.append({
            "task_category": task, "model": model, "window_days": window_days, "samples": samples,
            "successes": successes, "success_rate": metrics.success_rate or 0.0,
            "success_lower": metrics.success_lower or 0.0, "latency_p95_ms": metrics.latency_p95_ms,
            "ttft_p50_ms": metrics.ttft_p50_ms, "cost_per_request_usd": metrics.cost_per_request_usd,
            "quality": q, "quality_samples": q_n,
            **{column: scores[name] for name, column in _SCORE_COLUMNS.items()},
            "computed_at": computed_at,
        })
    out.sort(key=lambda r: (r["task_category"], r["model"]))
    return out


def rankings(settings: Settings, *, window_days: int = DEFAULT_WINDOW_DAYS, today: date | None = None,
             store: Store | None = None, known: Mapping[date, pa.Table] | None = None) -> RankingsReport:
    """Recompute ``<data>/rankings/rankings.parquet`` from the rollups of the last ``window_days``
    (``store``: an open store to reuse, else one is opened only if needed; ``known``: rollup rows
    of days just computed, see :func:`jobs.rollup.period_rows.fine_rows`)."""
    import pyarrow as pa

    from hive_core.selection.rankings import ranking_schema
    from ingest import write_atomic
    from jobs.rollup.period_rows import fine_rows

    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    now = settings.now()
    if today is not None and today != now.date():  # a past (or future) day: as of its last instant
        now = datetime(today.year, today.month, today.day, 23, 59, 59, 999999, tzinfo=UTC)
    until = now.date()
    since = until - timedelta(days=window_days - 1)
    prior, prior_source = _priors(settings)
    rows = fine_rows(settings, since, until, store, known)
    result: list[dict[str, Any]] = []
    if rows is not None:
        result = ranking_rows(rows, _quality(settings, since, until, store), prior, window_days, now)
    path = settings.datadir.rankings_file
    write_atomic(pa.Table.from_pylist(result, schema=ranking_schema()), path, overwrite=True)
    return RankingsReport(path=path, rows=len(result), models=len({r["model"] for r in result}),
                          window_days=window_days, priors=prior_source)


def refresh_after_rollup(settings: Settings, report: RollupReport) -> RankingsReport:
    """Post-rollup step: refresh the ranking table (see :data:`jobs.pipeline.POST_STEPS`)."""
    return rankings(settings, store=report.store, known=report.day_rows)
