"""``hive analytics suggest``: where the user's own traffic says money can be saved, with the evidence.

At most ``limit`` (10) suggestions, ranked by monthly saving, each stated once: ``action`` says what
to change (no figures), ``monthly_saving_usd`` what it saves, ``evidence`` the numbers behind it
(requests, cost, success, quality with its sample sizes). Savings never overlap: each (task, model)
slice of the traffic gets at most one saving suggestion (the largest), so the shown savings add up
(``total_monthly_saving_usd``). Suggestions without a saving (retries, degrading) follow.

Kinds of suggestion:

* ``switch-model`` (a *replacement*) - for a (task_category, model) with at least ``min_samples``
  attempts in the period, a cheaper model (cost per answer) used for the same task that is *shown*
  not to be worse: its success rate passes a one-sided non-inferiority z-test (H0: ``rate_new <=
  rate_ref - margin``, margin 2 points, 95 % confidence), its P95 latency is at most
  ``latency_factor`` (1.5x) the incumbent's, and its quality is *measured* - both models have
  ratings worth ``min_ratings`` (20) people's ratings (judge ratings count half:
  :mod:`jobs.rankings.quality`) - and passes the same test on means (margin 0.05).
* ``experiment`` - the same, except that quality is not measured for one of the two: a cheaper
  model is never proposed as a replacement then, but as an experiment to run, with a unique name
  (never one of an existing experiment) and the ``hive ab create`` command that starts it (goal
  cost, guardrails success and quality). A candidate whose measured quality is worse is neither.
  Saving per month (both kinds) = the incumbent's answers per 30 days x the difference in cost per
  answer; the largest-saving candidate per incumbent is the one proposed.
* ``retries`` - models whose retried attempts exceed 5 % of requests (latency and rate limit spent).
* ``late-cancels`` - streams cancelled after >= 80 % of a typical answer had been paid for.
* ``degrading`` - models whose success rate in the last 7 days is significantly lower (one-sided
  two-proportion z-test, 99 %) and at least 2 points below the rest of the period, or whose P95
  latency rose by half.
* ``uncapped`` - (task, model) pairs where >= ``uncapped_share`` (5 %) of at least 20 requests set
  no ``max_tokens``: without it OpenRouter's pre-flight credit check assumes the model's maximum
  output (spurious 402s) and a runaway answer is billed in full. The action names a cap (the P99
  of what those requests really used); the saving is what the tokens beyond it cost, per month.
  ``api_call.max_tokens`` exists from schema version 2 on; older events are left out.

Counts come from the daily rollups (:func:`jobs.rollup.period_rows.fine_rows`: files, plus live rows for
days not rolled up yet); ratings and stream cancellations from the event views via ``queries``.
Rates are per attempt, as in the ranking table: an answer that needed a retry counts its failure.
The caller's faults (a wrong key or base URL, a network outage, an unknown model id, a cancel:
:data:`jobs.rollup.groups.NOT_SAMPLES`) are not attempts of the model: they count in no rate and
no error mix here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from hive_core import stats

if TYPE_CHECKING:
    import pyarrow as pa

    from hive_core.period import Period
    from hive_core.settings import Settings
    from jobs.rankings.quality import MeasuredQuality

__all__ = ["DEFAULT_LIMIT", "SuggestOptions", "suggest", "suggest_from_rows"]

#: suggestions shown unless the caller asks for more
DEFAULT_LIMIT = 10

#: request types that are not the user's production traffic
_EXCLUDED_TYPES = ("benchmark", "test")


@dataclass(frozen=True)
class SuggestOptions:
    """Thresholds; the defaults are what the module docstring states."""

    # (fields with defaults: `duplicates` pairs them with any such record by shape; nothing is repeated)
    min_samples: int = 200
    margin: float = 0.02
    quality_margin: float = 0.05
    min_ratings: int = 20
    latency_factor: float = 1.5
    alpha: float = stats.DEFAULT_ALPHA
    retry_share: float = 0.05
    uncapped_share: float = 0.05
    late_share: float = 0.8
    recent_days: int = 7
    limit: int = DEFAULT_LIMIT


@dataclass
class _Group:
    task: str
    model: str
    samples: int
    successes: int
    requests: int
    answers: int
    cost: float
    p95: float | None
    quality: MeasuredQuality | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cost_per_answer(self) -> float | None:
        return self.cost / self.answers if self.answers else None


def suggest(settings: Settings, period: Period, options: SuggestOptions = SuggestOptions(),
            *, rows: pa.Table | None = None) -> dict[str, Any]:
    """Suggestions for the UTC days of ``period`` in the store of ``settings``.

    ``rows``: the period's rollup rows when the caller already read them (a report does).
    """
    import queries
    from hive_core.experiments import list_experiments
    from jobs.rankings.quality import combine_quality
    from jobs.rankings.table import quality_rows
    from jobs.rollup.period_rows import fine_rows

    since, until = period.first_day, period.last_day
    if rows is None:
        rows = fine_rows(settings, since, until)
    params = {"since": since, "until": until}
    with queries.connect(settings.data_dir, warn=False) as store:
        quality = combine_quality(quality_rows(settings, since, until, store))
        late = queries.run_sql(store, queries.load("reports/late_cancels"),
                               {**params, "share": options.late_share}).fetchall()
        uncapped = queries.run_sql(store, queries.load("reports/uncapped_requests"), params).fetchall()
    taken = {e.name for e in list_experiments(settings.data_dir)}
    return suggest_from_rows(rows, quality, late, since, until, options, uncapped=uncapped, taken=taken)


def _model_stats(rows: pa.Table, keys: tuple[str, ...], columns: tuple[str, ...], p95: bool = True
                 ) -> list[dict[str, Any]]:
    """Per key: summed ``columns``, ``samples`` (attempts that reached a verdict), the model's error
    mix (the caller's faults left out), P95."""
    from jobs.rollup.groups import error_mix, group_sums, model_errors, percentiles
    from jobs.rollup.groups import samples as verdicts

    mix = error_mix(rows, keys)
    lat = percentiles(rows, keys, [0.95]) if p95 else {}
    out = []
    for row in group_sums(rows, keys, ("attempts", *columns)):
        key = tuple(row[k] for k in keys)
        errors = mix.get(key, {})
        row["errors"] = model_errors(errors)
        row["samples"] = verdicts(row["attempts"], errors)
        row["latency_p95_ms"] = lat.get(key, [None])[0]
        out.append(row)
    return out


def suggest_from_rows(
    rows: pa.Table | None,
    quality: Mapping[tuple[str, str], MeasuredQuality],
    late: list[tuple[Any, ...]],
    since: date,
    until: date,
    options: SuggestOptions = SuggestOptions(),
    *,
    uncapped: list[tuple[Any, ...]] = (),  # type: ignore[assignment]
    taken: Set[str] = frozenset(),
) -> dict[str, Any]:
    """The suggestions from rollup rows (pure: no files). See the module docstring."""
    import pyarrow.compute as pc

    days = (until - since).days + 1
    out: list[dict[str, Any]] = []
    if rows is not None and rows.num_rows:
        rows = rows.filter(pc.invert(pc.is_in(rows["request_type"], value_set=_pa_strings(_EXCLUDED_TYPES))))
    if rows is not None and rows.num_rows:
        out += _switches(rows, quality, days, options, set(taken))
        out += _retries(rows, options)
        out += _degrading(rows, until, options)
    out += _late_cancels(rows, late, days)
    out += _uncapped(uncapped, days, options)
    shown, left = _ranked(out, options.limit)
    notes = [f"{left} more suggestion(s) not shown (--limit {options.limit})"] if left else []
    return {"since": since.isoformat(), "until": until.isoformat(), "days": days,
            "suggestions": shown, "notes": notes,
            "total_monthly_saving_usd": sum(s["monthly_saving_usd"] or 0.0 for s in shown),
            "method": {"test": "one-sided non-inferiority z-test", "confidence": 1 - options.alpha,
                       "success_margin": options.margin, "quality_margin": options.quality_margin,
                       "latency_factor": options.latency_factor, "min_samples": options.min_samples}}


def _pa_strings(values: tuple[str, ...]) -> Any:
    import pyarrow as pa

    return pa.array(values, pa.string())


def _switches(rows: pa.Table, quality: Mapping[tuple[str, str], MeasuredQuality], days: int,
              options: SuggestOptions, taken: set[str]) -> list[dict[str, Any]]:
    """One suggestion per incumbent (task, model) at most: the largest-saving replacement, else the
    largest-saving experiment (``taken``: experiment names in use, extended with the ones proposed)."""
    groups: dict[str, list[_Group]] = {}
    for r in _model_stats(rows, ("task_category", "model"), ("successes", "requests", "cost_usd")):
        if r["task_category"] is None:
            continue
        g = _Group(r["task_category"], r["model"], r["samples"], int(r["successes"]), int(r["requests"]),
                   int(r["successes"]), float(r["cost_usd"]), r["latency_p95_ms"],
                   quality.get((r["task_category"], r["model"])))
        if g.samples >= options.min_samples and g.cost_per_answer is not None:
            groups.setdefault(g.task, []).append(g)
    out = []
    for _task, members in sorted(groups.items()):
        for ref in sorted(members, key=lambda g: g.model):
            found = [c for new in members if new is not ref and (c := _compare(ref, new, days, options))]
            replacements = [c for c in found if c["kind"] == "switch-model"]
            best = max(replacements or found, key=lambda c: c["monthly_saving_usd"], default=None)
            if best is not None and best["kind"] == "experiment":
                _name_experiment(best, ref, taken)
            if best is not None:
                out.append(best)
    return out


def _measured(q: MeasuredQuality | None, options: SuggestOptions) -> bool:
    return q is not None and q.n_eff >= options.min_ratings


def _compare(ref: _Group, new: _Group, days: int, options: SuggestOptions) -> dict[str, Any] | None:
    """``new`` in place of ``ref``: a replacement, an experiment to run, or ``None`` (not cheaper,
    less reliable, slower, or of measured worse quality)."""
    if ref.cost_per_answer is None or new.cost_per_answer is None or new.cost_per_answer >= ref.cost_per_answer:
        return None
    success = stats.non_inferiority_z(ref.successes, ref.samples, new.successes, new.samples,
                                      options.margin, options.alpha)
    if not success.significant:
        return None
    if ref.p95 is not None and new.p95 is not None and new.p95 > options.latency_factor * ref.p95:
        return None
    q_test = None
    if _measured(ref.quality, options) and _measured(new.quality, options):
        r, n = ref.quality, new.quality
        assert r is not None and n is not None
        q_test = stats.mean_non_inferiority_summary(r.mean, r.variance, round(r.n_eff), n.mean, n.variance,
                                                    round(n.n_eff), options.quality_margin, options.alpha)
        if not q_test.significant:
            return None
    monthly_answers = ref.answers * 30 / days
    saving = monthly_answers * (ref.cost_per_answer - new.cost_per_answer)
    replace = q_test is not None
    action = (f"route {ref.task} requests from {ref.model} to {new.model}" if replace else
              f"run an experiment before moving {ref.task} requests from {ref.model} to {new.model}: "
              f"{new.model} is as reliable and cheaper, but the quality of "
              f"{'both' if not _measured(ref.quality, options) and not _measured(new.quality, options) else 'one'}"
              f" is unmeasured (grade answers with `hive-jobs eval` or rate them with `hive rate`)")
    return {
        "kind": "switch-model" if replace else "experiment",
        "task_category": ref.task, "model": ref.model, "suggested_model": new.model,
        "monthly_saving_usd": saving,
        "action": action,
        "evidence": {
            "requests": [ref.requests, new.requests],
            "samples": [ref.samples, new.samples],
            "cost_usd": [ref.cost, new.cost],
            "success_rate": [ref.successes / ref.samples, new.successes / new.samples],
            "success_ci": [list(stats.wilson_interval(ref.successes, ref.samples, options.alpha)),
                           list(stats.wilson_interval(new.successes, new.samples, options.alpha))],
            "success_test": success.as_dict(),
            "quality_test": None if q_test is None else q_test.as_dict(),
            "quality": [None if q is None else q.as_dict() for q in (ref.quality, new.quality)],
            "latency_p95_ms": [ref.p95, new.p95],
            "cost_per_answer_usd": [ref.cost_per_answer, new.cost_per_answer],
            "monthly_answers": monthly_answers,
        },
    }


def _name_experiment(found: dict[str, Any], ref: _Group, taken: set[str]) -> None:
    """A unique experiment name (none in ``taken``, which it joins) and the command that starts it."""
    base = f"{_slug(ref.task)}-{_slug(found['suggested_model'])}-vs-{_slug(ref.model)}"[:60].strip("-.")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    found["experiment"] = name
    found["command"] = (f"hive ab create {name} --model-a {ref.model} --model-b {found['suggested_model']} "
                        f"--task {ref.task} --goal cost --guardrail success --guardrail quality")


def _slug(text: str) -> str:
    """A model id or task as a name part: its last path segment, letters and digits, '-' elsewhere."""
    return "-".join(filter(None, "".join(c if c.isalnum() else "-" for c in text.split("/")[-1]).split("-")))[:24]


def _ranked(found: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], int]:
    """At most ``limit`` suggestions: savings first, largest first, one per (task, model) slice (so
    no saving is counted twice), then the ones without a saving; and how many were left out."""
    savings = sorted((s for s in found if s.get("monthly_saving_usd")), key=lambda s: -s["monthly_saving_usd"])
    slices: set[tuple[Any, Any]] = set()
    kept = []
    for s in savings:
        key = (s.get("task_category"), s["model"])
        if key not in slices:
            slices.add(key)
            kept.append(s)
    kept += [s for s in found if not s.get("monthly_saving_usd")]
    return kept[:limit], len(kept) - min(len(kept), limit)


def _retries(rows: pa.Table, options: SuggestOptions) -> list[dict[str, Any]]:
    out = []
    for r in _model_stats(rows, ("model",), ("requests", "retries", "streams_truncated"), p95=False):
        requests, retries = int(r["requests"]), int(r["retries"])
        if requests < options.min_samples or retries < options.retry_share * requests:
            continue
        mix = sorted(r["errors"].items(), key=lambda x: -x[1])
        top = mix[0][0] if mix else "error"
        fix = {"rate_limited": "lower concurrency or add a fallback model",
               "server_error": "add a fallback model (the provider fails often)",
               "timeout": "add a fallback model or raise the read timeout"}.get(top, "add a fallback model")
        out.append({
            "kind": "retries", "model": r["model"], "monthly_saving_usd": None,
            "action": f"{r['model']}: {retries:,} retried attempts ({100 * retries / requests:.1f}% of requests, "
                      f"mostly {top}); {fix}",
            "evidence": {"requests": requests, "retries": retries, "errors": dict(mix),
                         "streams_truncated": int(r["streams_truncated"])},
        })
    return out


def _late_cancels(rows: pa.Table | None, late: list[tuple[Any, ...]], days: int) -> list[dict[str, Any]]:
    # Price of a completion token per model (blended: cost / completion tokens), from the rollups.
    price: dict[str, float] = {}
    if rows is not None and rows.num_rows:
        from jobs.rollup.groups import group_sums

        for r in group_sums(rows, ("model",), ("cost_usd", "completion_tokens")):
            if r["completion_tokens"]:
                price[r["model"]] = float(r["cost_usd"]) / int(r["completion_tokens"])
    out = []
    for task, model, cancelled, n_late, late_tokens, streams in late:
        if n_late < 10:
            continue
        wasted = late_tokens * price.get(model, 0.0) * 30 / days
        out.append({
            "kind": "late-cancels", "task_category": task, "model": model, "monthly_saving_usd": wasted or None,
            "action": f"{model} ({task}): {n_late:,} streams cancelled after most of the answer had arrived "
                      "(tokens paid for and thrown away); lower max_tokens or stop generating earlier in the client",
            "evidence": {"streams": streams, "cancelled": cancelled, "late": n_late, "late_tokens": late_tokens},
        })
    return out


def _uncapped(groups: list[tuple[Any, ...]], days: int, options: SuggestOptions) -> list[dict[str, Any]]:
    out = []
    for task, model, requests, uncapped, p50, p99, cost, tail_cost in groups:
        if requests < 20 or uncapped / requests < options.uncapped_share:
            continue
        cap = max(math.ceil(p99 or 0), 16)
        saving = float(tail_cost) * 30 / days
        out.append({
            "kind": "uncapped", "task_category": task, "model": model, "monthly_saving_usd": saving or None,
            "action": f"{model} ({task}): {uncapped:,} of {requests:,} requests set no max_tokens; set "
                      f"max_tokens={cap} (the P99 these requests used) to avoid spurious 402s from "
                      f"OpenRouter's pre-flight check and cap runaway answers (what they cost beyond it is the saving)",
            "evidence": {"requests": requests, "uncapped": uncapped, "share": uncapped / requests,
                         "p50_completion_tokens": p50, "p99_completion_tokens": p99,
                         "uncapped_cost_usd": cost, "cost_beyond_p99_usd": tail_cost},
        })
    return out


def _degrading(rows: pa.Table, until: date, options: SuggestOptions) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    cut = pa.scalar(until - timedelta(days=options.recent_days - 1), pa.date32())
    columns = ("successes",)
    recent = {r["model"]: r for r in _model_stats(rows.filter(pc.greater_equal(rows["day"], cut)), ("model",), columns)}
    earlier = {r["model"]: r for r in _model_stats(rows.filter(pc.less(rows["day"], cut)), ("model",), columns)}
    out = []
    for model, new in recent.items():
        old = earlier.get(model)
        if old is None or min(old["samples"], new["samples"]) < options.min_samples:
            continue
        n_old, n_new = old["samples"], new["samples"]
        test = stats.two_proportion_z(int(old["successes"]), n_old, int(new["successes"]), n_new)
        one_sided = test.p_value / 2 if test.estimate < 0 else 1.0
        p95_old, p95_new = old["latency_p95_ms"], new["latency_p95_ms"]
        slower = p95_old and p95_new and p95_new > 1.5 * p95_old
        if (one_sided < 0.01 and test.estimate <= -0.02) or slower:
            out.append({
                "kind": "degrading", "model": model, "monthly_saving_usd": None,
                "action": f"{model} is degrading (success {100 * int(old['successes']) / n_old:.1f}% -> "
                          f"{100 * int(new['successes']) / n_new:.1f}%, P95 {p95_old or math.nan:.0f} -> "
                          f"{p95_new or math.nan:.0f} ms over the last {options.recent_days} days): "
                          "move it down the fallback chain or pause it",
                "evidence": {"success_test": test.as_dict(), "one_sided_p": one_sided,
                             "samples": [n_old, n_new], "latency_p95_ms": [p95_old, p95_new]},
            })
    return out
