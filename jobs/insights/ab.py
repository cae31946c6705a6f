"""``hive-jobs ab-report NAME``: per-variant results of an A/B experiment and whether they differ.

Tests (:mod:`hive_core.stats`), each comparing B against A, two-sided at ``alpha`` (default 5 %):

* success rate - two-proportion z-test (pooled SE), Wald interval on ``rate_b - rate_a``;
* latency - Mann-Whitney U on the latency of successful requests (interval: bootstrap of the
  difference of medians);
* cost - Mann-Whitney U on the cost of successful requests (a failed request costing nothing must
  not make a failing model look cheap);
* quality - bootstrap of the difference of mean ratings, when both variants have >= 2 ratings.

Four tests at 5 % each would cry wolf ~19 % of the time on identical models, so the verdict uses
Holm's step-down correction: ``significant`` means some test is significant after it, which keeps the
family-wise false-positive rate at ``alpha``. A winner is named only then, by the first significant
test in the order success, quality, latency, cost, and only if no other significant test points
the other way (then it is a trade-off and the report says so instead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hive_core import stats
from hive_core.experiments import Experiment, get_experiment
from hive_core.format import pct
from jobs.rollup.groups import NOT_SAMPLES

__all__ = ["AbSample", "ab_report", "analyse", "format_ab_report"]

#: which direction is better for each metric (+1: higher is better)
_BETTER = {"success": 1, "quality": 1, "latency": -1, "cost": -1}


@dataclass(frozen=True)
class AbSample:
    """One request of the experiment, as the analysis needs it."""

    variant: str
    ok: bool
    latency_ms: float | None = None
    cost_usd: float | None = None
    quality: float | None = None


def ab_report(data_dir: Path, name: str, *, alpha: float = stats.DEFAULT_ALPHA) -> dict[str, Any]:
    """Read the experiment's requests through ``queries`` and analyse them (see :func:`analyse`)."""
    import queries

    exp = get_experiment(data_dir, name)
    with queries.connect(data_dir) as store:
        rows = queries.run_sql(store, queries.load("reports/ab_requests"), {"name": name}).fetchall()
    # A caller's fault (a bad key, a cancel, a budget refusal) is no verdict on the variant's model.
    samples = [AbSample(v, status == "ok", lat, cost, quality)
               for v, _model, _ts, status, lat, _attempts, cost, quality in rows
               if status is not None and status not in NOT_SAMPLES]
    report = analyse(samples, alpha=alpha, experiment=exp)
    report["unsent"] = sum(1 for row in rows if row[3] is None)
    return report


def _variant_summary(samples: Sequence[AbSample], model: str, alpha: float) -> dict[str, Any]:
    n = len(samples)
    ok = [s for s in samples if s.ok]
    lat = [s.latency_ms for s in ok if s.latency_ms is not None]
    costs = [s.cost_usd or 0.0 for s in samples]
    ratings = [s.quality for s in samples if s.quality is not None]
    low, high = stats.wilson_interval(len(ok), n, alpha)
    return {
        "model": model,
        "requests": n,
        "successes": len(ok),
        "success_rate": len(ok) / n if n else None,
        "success_ci": [low, high],
        "latency_p50_ms": stats.percentile(lat, 0.5),
        "latency_p95_ms": stats.percentile(lat, 0.95),
        "cost_per_request_usd": sum(costs) / n if n else None,
        "cost_total_usd": sum(costs),
        "quality_mean": sum(ratings) / len(ratings) if ratings else None,
        "quality_ratings": len(ratings),
    }


def _holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values (monotone, capped at 1)."""
    ordered = sorted(p_values.items(), key=lambda kv: kv[1])
    adjusted: dict[str, float] = {}
    running = 0.0
    m = len(ordered)
    for i, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[name] = running
    return adjusted


def analyse(
    samples: Sequence[AbSample], *, alpha: float = stats.DEFAULT_ALPHA, experiment: Experiment | None = None
) -> dict[str, Any]:
    """The report as a JSON-ready dict: ``variants``, ``tests``, ``mde``, ``significant``, ``winner``,
    ``recommendation`` (``None`` unless significant)."""
    a = [s for s in samples if s.variant == "a"]
    b = [s for s in samples if s.variant == "b"]
    variants = {
        "a": _variant_summary(a, experiment.model_a if experiment else "a", alpha),
        "b": _variant_summary(b, experiment.model_b if experiment else "b", alpha),
    }
    tests: dict[str, stats.TestResult] = {}
    ok_a, ok_b = sum(s.ok for s in a), sum(s.ok for s in b)
    if a and b:
        tests["success"] = stats.two_proportion_z(ok_a, len(a), ok_b, len(b), alpha)
    lat_a = [s.latency_ms for s in a if s.ok and s.latency_ms is not None]
    lat_b = [s.latency_ms for s in b if s.ok and s.latency_ms is not None]
    if len(lat_a) >= 2 and len(lat_b) >= 2:
        tests["latency"] = stats.mann_whitney_u(lat_a, lat_b, alpha)
    cost_a = [s.cost_usd for s in a if s.ok and s.cost_usd is not None]
    cost_b = [s.cost_usd for s in b if s.ok and s.cost_usd is not None]
    if len(cost_a) >= 2 and len(cost_b) >= 2:
        tests["cost"] = stats.mann_whitney_u(cost_a, cost_b, alpha)
    q_a = [s.quality for s in a if s.quality is not None]
    q_b = [s.quality for s in b if s.quality is not None]
    if len(q_a) >= 2 and len(q_b) >= 2:
        tests["quality"] = stats.bootstrap_mean_diff(q_a, q_b, alpha, rounds=1000)
    adjusted = _holm({k: t.p_value for k, t in tests.items() if not math.isnan(t.estimate)})
    significant_tests = {k for k, p in adjusted.items() if p < alpha}
    rate = (ok_a + ok_b) / (len(a) + len(b)) if a or b else 0.0
    winner, recommendation = _verdict(tests, significant_tests, variants)
    return {
        "experiment": None if experiment is None else experiment.name,
        "status": None if experiment is None else experiment.status,
        "alpha": alpha,
        "variants": variants,
        "tests": {k: {**t.as_dict(), "p_adjusted": adjusted.get(k, 1.0),
                      "significant": k in significant_tests} for k, t in tests.items()},
        "mde": {"success_rate": stats.mde_two_proportions(rate, len(a), len(b), alpha)},
        "significant": bool(significant_tests),
        "winner": winner,
        "recommendation": recommendation,
    }


def _verdict(
    tests: dict[str, stats.TestResult], significant: set[str], variants: dict[str, Any]
) -> tuple[str | None, str | None]:
    if not significant:
        return None, None
    # Which variant each significant test favours: estimate is b - a.
    favours = {k: ("b" if tests[k].estimate * _BETTER[k] > 0 else "a") for k in significant}
    order = [k for k in ("success", "quality", "latency", "cost") if k in significant]
    winner = favours[order[0]]
    against = [k for k in order if favours[k] != winner]
    model = variants[winner]["model"]
    if against:
        return None, (f"trade-off: {model} ({winner}) is better on {', '.join(k for k in order if favours[k] == winner)} "
                      f"but worse on {', '.join(against)}; decide which matters more")
    return winner, f"switch to {model} (variant {winner}): better on {', '.join(order)}"


def _num(value: float | None, fmt: str = ".0f") -> str:
    return "-" if value is None else format(value, fmt)


def format_ab_report(report: dict[str, Any]) -> str:
    """The report as plain text (what ``hive-jobs ab-report`` prints)."""
    lines = [f"experiment {report['experiment']} ({report['status']}), tests at alpha={report['alpha']:g}"]
    lines.append(f"{'variant':<8}{'model':<36}{'requests':>9}{'success':>9}{'p50 ms':>9}{'p95 ms':>9}"
                 f"{'$/request':>12}{'quality':>9}")
    for key, v in report["variants"].items():
        lines.append(f"{key:<8}{v['model']:<36}{v['requests']:>9}{pct(v['success_rate']):>9}"
                     f"{_num(v['latency_p50_ms']):>9}{_num(v['latency_p95_ms']):>9}"
                     f"{_num(v['cost_per_request_usd'], '.6f'):>12}{_num(v['quality_mean'], '.2f'):>9}")
    lines.append("")
    for key, t in report["tests"].items():
        mark = "significant" if t["significant"] else "not significant"
        lines.append(f"{key:<8} {t['test']:<22} b-a={t['estimate']:.4g} "
                     f"CI [{t['ci_low']:.4g}, {t['ci_high']:.4g}] p={t['p_value']:.3g} "
                     f"(Holm {t['p_adjusted']:.3g}) {mark}")
    lines.append(f"minimum detectable success-rate difference at this sample size: "
                 f"{pct(report['mde']['success_rate'])} (80% power)")
    if report["recommendation"]:
        lines.append(f"recommendation: {report['recommendation']}")
    else:
        lines.append("no significant difference yet: keep the experiment running (no recommendation)")
    return "\n".join(lines)
