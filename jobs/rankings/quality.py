"""Measured quality: judge and human ratings of one (task, model), weighed by their sample sizes.

Ratings come from people (``hive rate``) and from judge models (``hive-jobs eval``, rater
``judge:<model>``). One rating from a judge counts :data:`JUDGE_WEIGHT` (one half) of a rating from a
person:

    n_eff   = n_human + JUDGE_WEIGHT * n_judge
    quality = (sum_human + JUDGE_WEIGHT * sum_judge) / n_eff

Why a judge counts less: a person's rating is the user's own verdict on their own traffic, the
thing quality means here; a judge's is a proxy with known biases (it favours long, fluent answers,
misses what the user knew was wrong, and shares blind spots with the models of its own family).
Judges are cheap, so they supply the volume; a few people's ratings still move the mean more.

The ranking table stores ``quality`` and ``quality_samples = round(n_eff)`` (at least 1 when any
rating exists), and the selector's score shrinks it toward the catalog prior as a Bayesian mean
with a prior worth ``K_QUALITY`` = 10 ratings (:func:`hive_core.selection.rankings.shrink`):

    score_quality = (n_eff * quality + 10 * prior) / (n_eff + 10)

so 10 human ratings (or 20 judged answers) move a model halfway from its prior to what was measured.
``variance`` is the weighted variance around the combined mean (for the suggestions' tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["JUDGE_WEIGHT", "MeasuredQuality", "combine_quality"]

#: what one judge rating counts against one human rating
JUDGE_WEIGHT = 0.5


@dataclass(frozen=True)
class MeasuredQuality:
    """The combined quality of one (task, model) and where it comes from."""

    mean: float
    n_eff: float
    variance: float
    human: int
    judge: int

    @property
    def samples(self) -> int:
        """``n_eff`` as the ranking table's integer ``quality_samples`` (>= 1 once rated)."""
        return max(1, round(self.n_eff))

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (suggestions' evidence)."""
        return {"mean": self.mean, "n_eff": self.n_eff, "human": self.human, "judge": self.judge}


def combine_quality(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], MeasuredQuality]:
    """Rows of ``reports/quality`` (task_category, model, judged, quality, quality_samples,
    quality_var) -> the combined quality per (task_category, model)."""
    parts: dict[tuple[str, str], list[tuple[float, int, float, float]]] = {}
    for r in rows:
        weight = JUDGE_WEIGHT if r["judged"] else 1.0
        parts.setdefault((r["task_category"], r["model"]), []).append(
            (weight, int(r["quality_samples"]), float(r["quality"]), float(r["quality_var"] or 0.0)))
    out = {}
    for key, groups in parts.items():
        n_eff = sum(w * n for w, n, _m, _v in groups)
        mean = sum(w * n * m for w, n, m, _v in groups) / n_eff
        # within-group spread plus the spread of the group means around the combined mean
        variance = sum(w * n * (v + (m - mean) ** 2) for w, n, m, v in groups) / n_eff
        human = sum(n for w, n, _m, _v in groups if w == 1.0)
        out[key] = MeasuredQuality(mean, n_eff, variance, human, sum(n for _w, n, _m, _v in groups) - human)
    return out
