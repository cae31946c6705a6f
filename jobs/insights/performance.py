"""Per-model performance over a period: success, error mix, latency percentiles, tokens/s, quality, health.

Latency and TTFT percentiles come from the merged log-bucket histograms of the rollups (within 1 %
of the exact value over any range), over successful attempts. ``success_rate`` is successes over
``attempts``, the attempts that reached a verdict on the model: the caller's faults (a wrong key or
base URL, a network outage, an unknown model id, a cancel, a budget refusal:
:data:`jobs.rollup.groups.NOT_SAMPLES`) say nothing about the model and are left out, as in the
ranking table; they are listed apart in ``caller_faults``, and a model that only ever saw them is
not listed. ``requests`` counts every request made to the model. Quality is the
``quality_rating`` scores given in the period to the model's answers, judge ratings weighed half a
person's (:mod:`jobs.rankings.quality`), with the number of ratings.

Health, first rule that matches:

=============  ===========================================================
unavailable    >= 5 attempts and success rate < 50 %  (or no success at all)
unhealthy      success rate < 90 %, or latency P95 > 30 s
degraded       success rate < 97 %, or latency P95 > 15 s
healthy        otherwise
=============  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hive_core.period import Period
from jobs.rollup.groups import model_errors
from jobs.rollup.groups import samples as verdicts

if TYPE_CHECKING:
    from hive_core.settings import Settings

__all__ = ["HEALTH_THRESHOLDS", "ModelPerformance", "health", "performance"]

#: (status, minimum success rate, maximum P95 ms): checked from worst to best
HEALTH_THRESHOLDS = (("unhealthy", 0.90, 30_000.0), ("degraded", 0.97, 15_000.0))
UNAVAILABLE_RATE, UNAVAILABLE_MIN_ATTEMPTS = 0.50, 5


@dataclass
class ModelPerformance:
    """One model's numbers over the period."""

    model: str
    requests: int
    #: attempts that reached a verdict on the model (the caller's faults left out)
    attempts: int
    successes: int
    success_rate: float | None
    #: the model's failures by status
    # (fields with defaults: `duplicates` pairs them with any such record by shape; nothing is repeated)
    errors: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    ttft_p99_ms: float | None = None
    tokens_per_s: float | None = None
    cost_usd: float = 0.0
    quality: float | None = None
    quality_samples: int = 0
    health: str = "healthy"
    #: attempts that failed through the caller's fault, by status (not counted above)
    caller_faults: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def health(success_rate: float | None, p95_ms: float | None, samples: int, successes: int) -> str:
    """The health label of the documented thresholds."""
    if samples >= UNAVAILABLE_MIN_ATTEMPTS and (successes == 0 or (success_rate or 0.0) < UNAVAILABLE_RATE):
        return "unavailable"
    rate = 1.0 if success_rate is None else success_rate
    p95 = 0.0 if p95_ms is None else p95_ms
    for status, min_rate, max_p95 in HEALTH_THRESHOLDS:
        if rate < min_rate or p95 > max_p95:
            return status
    return "healthy"


def _quality(settings: Settings, period: Period) -> dict[str, tuple[float, int]]:
    """Per model: judge and human ratings weighed as the rankings weigh them, and how many there are."""
    from jobs.rankings.quality import combine_quality
    from jobs.rankings.table import quality_rows

    combined = combine_quality(quality_rows(settings, period.first_day, period.last_day))
    return {model: (q.mean, q.human + q.judge) for (task, model), q in combined.items() if task == "*"}


def performance(settings: Settings, period: Period, model: str | None = None) -> list[ModelPerformance]:
    """Every model with attempts that reached a verdict, or billed usage, in ``period`` (or just
    ``model``), busiest first."""
    import pyarrow.compute as pc

    from jobs.rollup.monthly import merge_by
    from jobs.rollup.period_rows import model_rows

    rows = model_rows(settings, period.first_day, period.last_day)
    if rows is None:
        return []
    if model is not None:
        rows = rows.filter(pc.equal(rows["model"], model))
        if rows.num_rows == 0:
            return []
    quality = _quality(settings, period)
    out: list[ModelPerformance] = []
    for row in merge_by(rows, ("model",)).to_pylist():
        every_error = dict(zip(row["error_statuses"], row["error_counts"], strict=True))
        samples = verdicts(row["attempts"], every_error)
        if samples == 0 and row["usage_events"] == 0:
            continue  # nothing but the caller's faults (or nothing at all): no word on the model
        errors = model_errors(every_error)
        rate = row["successes"] / samples if samples else None
        q, q_n = quality.get(row["model"], (None, 0))
        out.append(ModelPerformance(
            model=row["model"], requests=row["requests"], attempts=samples, successes=row["successes"],
            success_rate=rate, errors=errors,
            caller_faults={s: n for s, n in every_error.items() if s not in errors},
            p50_ms=row["latency_p50_ms"], p95_ms=row["latency_p95_ms"], p99_ms=row["latency_p99_ms"],
            ttft_p50_ms=row["ttft_p50_ms"], ttft_p95_ms=row["ttft_p95_ms"], ttft_p99_ms=row["ttft_p99_ms"],
            tokens_per_s=row["tokens_per_s_sum"] / row["tokens_per_s_n"] if row["tokens_per_s_n"] else None,
            cost_usd=row["cost_usd"], quality=q, quality_samples=q_n,
            health=health(rate, row["latency_p95_ms"], samples, row["successes"]),
        ))
    out.sort(key=lambda p: (-p.requests, p.model))
    return out
