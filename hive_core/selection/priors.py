"""What the selector assumes about a model it has not measured: catalog priors per task type.

A prior is a :class:`~hive_core.selection.rankings.Metrics` built from the catalog entry alone:

* quality - by tier (economy 0.45, standard 0.60, premium 0.72, flagship 0.82), averaged with the
  Artificial Analysis index when the catalog has one (coding index for code tasks, intelligence
  index otherwise, /80); +0.05 for a code model on a code task or a reasoning model on a
  reasoning/math task; up to +-0.03 for context length (x2 for long-context tasks); -0.04 per
  year since the model was added (at most -0.12), so an old model that is still expensive does
  not pass for a flagship;
* success rate - 0.95 for everyone (unknown, so neutral);
* TTFT - 600/800/1000/1400 ms by tier, x0.6 for small fast models (flash, mini, haiku, ...);
  P95 latency - TTFT plus the task's typical completion at 8/12/16/22 ms per token, x1.5;
* cost per request - the catalog price of the task's typical prompt and completion tokens.

Measured rows replace these through :func:`~hive_core.selection.rankings.shrink`, so a model with few
samples stays near its prior; unmeasured models also get an exploration bonus (see selector).
"""

from __future__ import annotations

import math
from datetime import date

from hive_core.catalog.catalog import ModelInfo
from hive_core.catalog.pricing import estimate_cost
from hive_core.selection.complexity import TaskType
from hive_core.selection.rankings import Metrics

__all__ = ["PRIOR_SUCCESS", "prior_metrics"]

PRIOR_SUCCESS = 0.95
_TIER_QUALITY = (0.45, 0.60, 0.72, 0.82)
_TIER_TTFT_MS = (600.0, 800.0, 1000.0, 1400.0)
_TIER_MS_PER_TOKEN = (8.0, 12.0, 16.0, 22.0)
#: price of an unknown (router) model's request: a mid-range guess, never used for --max-cost
_UNKNOWN_COST_USD = 1e-3
_CODE_TASKS = frozenset({"code-generation", "code-analysis"})
_REASONING_TASKS = frozenset({"reasoning", "math"})


def prior_metrics(model: ModelInfo, task: TaskType, today: date | None = None) -> Metrics:
    """The catalog prior of ``model`` for ``task`` (see the module docstring)."""
    rank = model.tier_rank
    index = model.coding_index if task.name in _CODE_TASKS else model.intelligence_index
    quality = _TIER_QUALITY[rank]
    if index is not None:
        quality = 0.5 * quality + 0.5 * min(index / 80.0, 1.0)
    if (task.name in _CODE_TASKS and "programming" in model.capabilities) or (
        task.name in _REASONING_TASKS and "reasoning" in model.capabilities
    ):
        quality += 0.05
    if model.context_length > 0:
        context_weight = 0.06 if task.name == "long-context" else 0.03
        quality += context_weight * max(-1.0, min(1.0, math.log2(model.context_length / 128_000) / 3))
    if model.created is not None and today is not None:
        years = (today.toordinal() - date.fromtimestamp(model.created).toordinal()) / 365.25
        quality -= min(0.12, max(0.0, 0.04 * years))
    ttft = _TIER_TTFT_MS[rank] * (0.6 if "fast" in model.capabilities else 1.0)
    p95 = (ttft + task.completion_tokens * _TIER_MS_PER_TOKEN[rank]) * 1.5
    cost = estimate_cost(model.pricing, prompt_tokens=task.prompt_tokens, completion_tokens=task.completion_tokens)
    return Metrics(
        success_rate=PRIOR_SUCCESS,
        success_lower=PRIOR_SUCCESS,
        latency_p95_ms=p95,
        ttft_p50_ms=ttft,
        cost_per_request_usd=_UNKNOWN_COST_USD if cost is None else float(cost),
        quality=min(max(quality, 0.0), 1.0),
    )
