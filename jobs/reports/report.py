"""``hive-jobs report``: what a team opens every Monday, as one JSON-ready dict rendered to md/html/json.

Sections: spend and its trend against the previous period (:func:`jobs.insights.analytics.cost`), cost per day
by model, top models with success and latency percentiles, the error mix, budget status
(:func:`jobs.budget.status.budget_status`), budget alerts fired in the period, the top savings
suggestions over the 30 days ending with the period (:func:`jobs.insights.suggest.suggest`), and the state of
every A/B experiment (:func:`jobs.insights.ab.ab_report`).

Numbers come from the daily rollups (:func:`jobs.rollup.period_rows.fine_rows`, live for days not rolled up
yet), so a month of 10M events reports in about a second once rolled up.

A report covers any :class:`~hive_core.period.Period` (the one grammar, :func:`hive_core.period.parse_period`):
``day``, ``week`` and ``month`` end today by default, so a new user's first report shows today's calls
beside today's budget spend. A period that has not ended yet is *provisional* (``report["provisional"]``,
said in the title): its last day's numbers still grow. ``run-due`` reports complete periods only
(:meth:`hive_core.period.Period.report`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.period import Period
from hive_core.store.atomic import write_bytes_atomic
from jobs.insights.analytics import days_in

if TYPE_CHECKING:
    import pyarrow as pa

    from hive_core.settings import Settings

__all__ = ["FORMATS", "build_report", "report_kind", "write_report"]

FORMATS = ("md", "html", "json")
#: models drawn separately in the cost chart; the rest are summed as "other"
CHART_MODELS = 6
TOP_SUGGESTIONS = 5
#: the days the savings suggestions look back over, ending with the period
SUGGESTION_DAYS = 30


def report_kind(period: Period) -> str:
    """What a report of ``period`` is called and its file named after: its kind, else ``range``."""
    return period.kind or ("day" if period.days == 1 else "range")


def build_report(settings: Settings, period: Period, *, now: datetime | None = None) -> dict[str, Any]:
    """The report of ``period``; provisional when ``period`` has not ended at ``now``."""
    from jobs.rollup.period_rows import fine_rows

    now = now or settings.now()
    kind = report_kind(period)
    provisional = now < period.end
    previous = period.previous()
    looked_back = Period.ending(period.last_day, SUGGESTION_DAYS)
    # One read of the rollups for everything: the period, the previous one, the suggestions' 30 days.
    rows = fine_rows(settings, min(previous.first_day, looked_back.first_day), period.last_day)
    since, until = period.first_day, period.last_day
    title = f"Hive {kind} report {since}..{until}" if since != until else f"Hive daily report {until}"
    report: dict[str, Any] = {
        "title": title + (" (provisional: the period has not ended)" if provisional else ""),
        "period": {"kind": kind, "since": since.isoformat(), "until": until.isoformat()},
        "provisional": provisional,
        "generated_at": now.isoformat(timespec="seconds"),
        "spend": _spend(rows, period, previous),
    }
    report.update(_from_rows(days_in(rows, period), period))
    report["budget"] = _budget(settings, now)
    report["alerts"] = _alerts(settings, period)
    report["suggestions"] = _suggestions(settings, looked_back, days_in(rows, looked_back))
    report["experiments"] = _experiments(settings)
    return report


def _spend(rows: pa.Table | None, period: Period, previous: Period) -> dict[str, Any]:
    """Spend of the period and the one before it (the same sums as ``hive analytics cost``)."""
    totals = []
    for span in (period, previous):
        part = days_in(rows, span)
        if part is None or part.num_rows == 0:
            totals.append((0.0, 0))
            continue
        totals.append((float(part["cost_usd"].to_numpy().sum()), int(part["usage_events"].to_numpy().sum())))
    (now_usd, requests), (before_usd, _) = totals
    return {"total_usd": now_usd, "previous_total_usd": before_usd, "requests": requests,
            "change_pct": (now_usd - before_usd) / before_usd * 100 if before_usd else None,
            "previous_since": previous.first_day.isoformat(), "previous_until": previous.last_day.isoformat()}


def _from_rows(rows: pa.Table | None, period: Period) -> dict[str, Any]:
    """Cost per day by model, top models, latency percentiles, the error mix."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from jobs.rollup.groups import error_mix, group_sums, percentiles, samples

    days = [(period.first_day + timedelta(days=i)).isoformat() for i in range(period.days)]
    empty: dict[str, Any] = {"cost_by_day": {"days": days, "series": []}, "models": [],
                             "errors": {"attempts": 0, "errors": 0, "by_status": {}}}
    if rows is None or rows.num_rows == 0:
        return empty
    models = sorted(group_sums(rows, ("model",), ("requests", "attempts", "successes", "cost_usd")),
                    key=lambda r: (-r["cost_usd"], r["model"]))
    top = [m["model"] for m in models[:CHART_MODELS]]
    per_day: dict[str, dict[str, float]] = {}
    for r in group_sums(rows, ("day", "model"), ("cost_usd",)):
        name = r["model"] if r["model"] in top else "other"
        per_day.setdefault(name, {})
        key = r["day"].isoformat()
        per_day[name][key] = per_day[name].get(key, 0.0) + r["cost_usd"]
    series = [{"model": m, "values": [per_day.get(m, {}).get(d, 0.0) for d in days]}
              for m in [*top, "other"] if m in per_day]
    mix: dict[str, int] = {}
    by_model = error_mix(rows, ("model",))
    for statuses in by_model.values():
        for status, n in statuses.items():
            mix[status] = mix.get(status, 0) + n
    attempts = sum(int(m["attempts"]) for m in models)
    shown = models[:10]
    shown_rows = rows.filter(pc.is_in(rows["model"], value_set=pa.array([m["model"] for m in shown])))
    lat = percentiles(shown_rows, ("model",), [0.5, 0.95, 0.99])
    ttft = percentiles(shown_rows, ("model",), [0.5], prefix="ttft")
    return {
        "cost_by_day": {"days": days, "series": series},
        "models": [{
            "model": m["model"], "requests": int(m["requests"]), "cost_usd": m["cost_usd"],
            # the rule hive models performance and the rankings use: cancels are not the model's failures
            "success_rate": (m["successes"] / n if (n := samples(m["attempts"], by_model.get((m["model"],), {})))
                             else None),
            "latency_p50_ms": lat.get((m["model"],), [None] * 3)[0],
            "latency_p95_ms": lat.get((m["model"],), [None] * 3)[1],
            "latency_p99_ms": lat.get((m["model"],), [None] * 3)[2],
            "ttft_p50_ms": ttft.get((m["model"],), [None])[0],
        } for m in shown],
        "errors": {"attempts": attempts, "errors": sum(mix.values()),
                   "by_status": dict(sorted(mix.items(), key=lambda kv: -kv[1]))},
    }


def _budget(settings: Settings, now: datetime) -> list[dict[str, Any]]:
    from jobs.budget.status import budget_status

    return [s.as_dict() for s in budget_status(settings.data_dir, now=now, ledger_url=settings.ledger_url)]


def _alerts(settings: Settings, period: Period) -> list[dict[str, Any]]:
    import queries

    with queries.connect(settings.data_dir, warn=False, views=("budget_alerts",)) as store:
        rows = queries.run_sql(store, queries.load("reports/alerts_in_period"),
                               {"since": period.first_day, "until": period.last_day}).fetchall()
    return [{"ts": ts.isoformat(), "scope": scope, "kind": kind, "message": message}
            for ts, scope, kind, message in rows]


def _suggestions(settings: Settings, looked_back: Period, rows: pa.Table | None) -> list[dict[str, Any]]:
    from jobs.insights.suggest import suggest

    found = suggest(settings, looked_back, rows=rows)["suggestions"]
    return [{"kind": s["kind"], "action": s["action"], "monthly_saving_usd": s.get("monthly_saving_usd")}
            for s in found[:TOP_SUGGESTIONS]]


def _experiments(settings: Settings) -> list[dict[str, Any]]:
    from hive_core.experiments import list_experiments
    from jobs.insights.ab import ab_report

    out = []
    for exp in list_experiments(settings.data_dir):
        result = ab_report(settings.data_dir, exp.name)
        out.append({"name": exp.name, "status": exp.status, "model_a": exp.model_a, "model_b": exp.model_b,
                    "requests": [result["variants"]["a"]["requests"], result["variants"]["b"]["requests"]],
                    "significant": result["significant"], "winner": result["winner"],
                    "recommendation": result["recommendation"]})
    return out


def write_report(report: dict[str, Any], fmt: str, out_dir: Path) -> Path:
    """Render ``report`` as ``fmt`` into ``out_dir/hive-<kind>-<until>.<fmt>`` (``hive-<since>..<until>``
    for another span), atomically; the path."""

    from jobs.reports.html import render_html, render_markdown

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if fmt == "json":
        text = json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"
    else:
        text = render_html(report) if fmt == "html" else render_markdown(report)
    period = report["period"]
    name = (f"{period['since']}..{period['until']}" if period["kind"] == "range"
            else f"{period['kind']}-{period['until']}")
    path = out_dir / f"hive-{name}.{fmt}"
    write_bytes_atomic(path, text.encode())
    return path
