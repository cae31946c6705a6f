"""``hive-jobs ab-report NAME``: per-variant results of an A/B experiment and its verdict.

Tests (:mod:`hive_core.stats`), each comparing B against A, two-sided at ``alpha`` (default 5 %),
run once both variants have :data:`jobs.insights.ab_verdict.MIN_PER_VARIANT` requests:

* success rate - two-proportion z-test (pooled SE), Wald interval on ``rate_b - rate_a``;
* latency - Mann-Whitney U on the latency of successful requests (interval: bootstrap of the
  difference of medians);
* cost - Mann-Whitney U on the cost of successful requests (a failed request costing nothing must
  not make a failing model look cheap);
* quality - bootstrap of the difference of mean ratings, when both variants have >= 2 ratings.

The verdict follows the experiment's goal and guardrails (:mod:`jobs.insights.ab_verdict`): the
goal's test is the one primary hypothesis (so identical models are called different ``alpha`` of
the time, not more), a guardrail significantly worse rejects the better variant, and a small
sample says "not enough data (need about N per variant)" instead of an interval of nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hive_core import stats
from hive_core.experiments import DEFAULT_GUARDRAILS, Experiment, get_experiment
from hive_core.format import pct, usd
from jobs.insights.ab_verdict import MIN_PER_VARIANT, verdict, verdict_json
from jobs.rollup.groups import NOT_SAMPLES

__all__ = ["AbSample", "ab_report", "analyse", "format_ab_report"]


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


def _tests(a: Sequence[AbSample], b: Sequence[AbSample], alpha: float) -> dict[str, stats.TestResult]:
    """B against A on every metric with enough values (none below MIN_PER_VARIANT requests a variant)."""
    tests: dict[str, stats.TestResult] = {}
    if min(len(a), len(b)) < MIN_PER_VARIANT:
        return tests
    tests["success"] = stats.two_proportion_z(sum(s.ok for s in a), len(a), sum(s.ok for s in b), len(b), alpha)
    for metric in ("latency", "cost"):
        va, vb = _values(a, metric), _values(b, metric)
        if len(va) >= 2 and len(vb) >= 2:
            tests[metric] = stats.mann_whitney_u(va, vb, alpha)
    q_a, q_b = _values(a, "quality"), _values(b, "quality")
    if len(q_a) >= 2 and len(q_b) >= 2:
        tests["quality"] = stats.bootstrap_mean_diff(q_a, q_b, alpha, rounds=1000)
    return tests


def _values(samples: Sequence[AbSample], metric: str) -> list[float]:
    """The values of ``metric`` a test compares (success: 1/0 per request; latency, cost: successful ones)."""
    if metric == "success":
        return [1.0 if s.ok else 0.0 for s in samples]
    if metric == "quality":
        return [s.quality for s in samples if s.quality is not None]
    if metric == "latency":
        return [s.latency_ms for s in samples if s.ok and s.latency_ms is not None]
    return [s.cost_usd for s in samples if s.ok and s.cost_usd is not None]


def analyse(
    samples: Sequence[AbSample], *, alpha: float = stats.DEFAULT_ALPHA, experiment: Experiment | None = None
) -> dict[str, Any]:
    """The report as a JSON-ready dict: ``goal``, ``guardrails``, ``variants``, ``tests``, ``mde``
    (``None`` without enough data), ``significant`` (the goal's test), ``verdict``, ``winner``,
    ``recommendation``."""
    a = [s for s in samples if s.variant == "a"]
    b = [s for s in samples if s.variant == "b"]
    goal = experiment.goal if experiment else "success"
    guardrails = experiment.guardrails if experiment else DEFAULT_GUARDRAILS
    variants = {
        "a": _variant_summary(a, experiment.model_a if experiment else "a", alpha),
        "b": _variant_summary(b, experiment.model_b if experiment else "b", alpha),
    }
    tests = _tests(a, b, alpha)
    decided = verdict(goal, guardrails, tests, (len(a), len(b)), _values(a, goal) + _values(b, goal),
                      {k: v["model"] for k, v in variants.items()}, alpha)
    rate = (sum(s.ok for s in samples)) / len(samples) if samples else 0.0
    enough = bool(tests)
    goal_test = tests.get(goal)
    return {
        "experiment": None if experiment is None else experiment.name,
        "status": None if experiment is None else experiment.status,
        "goal": goal, "guardrails": list(guardrails),
        "alpha": alpha,
        "variants": variants,
        "tests": {k: {**t.as_dict(), "significant": t.p_value < alpha} for k, t in tests.items()},
        "mde": {"success_rate": stats.mde_two_proportions(rate, len(a), len(b), alpha)} if enough else None,
        "significant": goal_test is not None and goal_test.p_value < alpha,
        "verdict": verdict_json(decided),
        "winner": decided.winner,
        "recommendation": decided.message if decided.state in ("winner", "rejected") else None,
    }


def _num(value: float | None, fmt: str = ".0f") -> str:
    return "-" if value is None else format(value, fmt)


def _signed_usd(value: float) -> str:
    return f"-{usd(-value)}" if value < 0 else usd(value)


def format_ab_report(report: dict[str, Any]) -> str:
    """The report as plain text (what ``hive-jobs ab-report`` prints)."""
    guard = ", ".join(report["guardrails"]) or "none"
    lines = [f"experiment {report['experiment']} ({report['status']}): goal {report['goal']}, guardrails {guard}; "
             f"tests at alpha={report['alpha']:g}"]
    lines.append(f"{'variant':<8}{'model':<36}{'requests':>9}{'success':>9}{'p50 ms':>9}{'p95 ms':>9}"
                 f"{'$/request':>12}{'quality':>9}")
    for key, v in report["variants"].items():
        lines.append(f"{key:<8}{v['model']:<36}{v['requests']:>9}{pct(v['success_rate']):>9}"
                     f"{_num(v['latency_p50_ms']):>9}{_num(v['latency_p95_ms']):>9}"
                     f"{usd(v['cost_per_request_usd']):>12}{_num(v['quality_mean'], '.2f'):>9}")
    lines.append("")
    for key, t in report["tests"].items():
        mark = "significant" if t["significant"] else "not significant"
        # money prints one way everywhere (never 2.4e-05); a difference keeps its sign
        show = _signed_usd if key == "cost" else (lambda x: format(x, ".4g"))
        lines.append(f"{key:<8} {t['test']:<22} b-a={show(t['estimate'])} "
                     f"CI [{show(t['ci_low'])}, {show(t['ci_high'])}] p={t['p_value']:.3g} {mark}")
    if report["mde"] is not None:
        lines.append(f"minimum detectable success-rate difference at this sample size: "
                     f"{pct(report['mde']['success_rate'])} (80% power)")
    found = report["verdict"]
    lines.append(f"{'verdict' if found['state'] in ('winner', 'rejected') else 'no verdict'}: {found['message']}")
    return "\n".join(lines)
