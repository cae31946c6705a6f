"""``hive analytics``: cost analytics (``cost``) and savings suggestions (``suggest``, library jobs.insights.suggest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from hive_cli.common import echo_json, get_settings
from hive_cli.lazy import LazyGroup
from hive_cli.params import json_option, period_option
from hive_core.format import pct, usd
from jobs.insights.suggest import SuggestOptions

if TYPE_CHECKING:
    from hive_core.period import Period

__all__ = ["analytics", "cost", "suggest"]

#: subcommands kept in other modules (imported when they run); add ``suggest`` here
SUBCOMMANDS: dict[str, tuple[str, str]] = {}

BY_CHOICES = ("model", "provider", "request-type", "task", "day")


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def analytics() -> None:
    """Cost analytics and savings suggestions."""


@analytics.command()
@period_option("7d")
@click.option("--by", type=click.Choice(BY_CHOICES), default="model", show_default=True, help="Breakdown.")
@json_option("Print JSON (total_usd, previous_total_usd, rows, ...).")
@click.pass_context
def cost(ctx: click.Context, period: Period, by: str, as_json: bool) -> None:
    """Spend over a period, broken down, against the previous period of the same length."""
    from jobs.insights.analytics import cost as build

    report = build(get_settings(ctx), period, by)
    if as_json:
        echo_json(report)
        return
    change = report.change_pct
    trend = "n/a (nothing spent before)" if change is None else f"{change:+.1f}%"
    click.echo(f"{period.label} ({period.first_day}..{period.last_day}): {usd(report.total_usd)} over "
               f"{report.requests:,} requests; previous {period.days} day(s) {usd(report.previous_total_usd)} ({trend})")
    share = report.billed_share
    if share is not None:
        click.echo(f"billed {pct(share, places=0)} / estimated {pct(1 - share, places=0)}"
                   + (f"; {report.unknown_cost_requests:,} request(s) of unknown cost" if report.unknown_cost_requests else ""))
    if report.byok_requests:
        # a BYOK request's cost is OpenRouter's fee only; the provider bills the user's own key
        unknown = report.byok_upstream_unknown
        click.echo(f"BYOK: {report.byok_requests:,} request(s) on your own provider keys: OpenRouter's fees "
                   f"{usd(report.byok_fee_usd)} are in the total; the providers billed {usd(report.byok_upstream_usd)} "
                   "on your keys, not in the total" + (f" ({unknown:,} of unknown price)" if unknown else ""))
        click.echo(f"all-in, OpenRouter + BYOK providers: {usd(report.all_in_usd)}" + (" (at least)" if unknown else ""))
    if not report.rows:
        click.echo("no usage in this period")
        return
    width = max(len(r.key) for r in report.rows)
    click.echo(f"{by:<{width}}  {'cost':>12} {'share':>6} {'requests':>9} {'previous':>12}")
    for r in report.rows:
        click.echo(f"{r.key:<{width}}  {usd(r.cost_usd):>12} {pct(r.share):>6} {r.requests:>9,} {usd(r.previous_cost_usd):>12}")


@analytics.command()
@period_option("30d")
@click.option("--min-samples", type=click.IntRange(min=10), default=SuggestOptions.min_samples, show_default=True,
              help="Attempts a (task, model) needs before it is compared.")
@click.option("--limit", type=click.IntRange(min=1), default=SuggestOptions.limit, show_default=True,
              help="Show at most this many suggestions (largest monthly saving first).")
@json_option("Print JSON (suggestions with their evidence, total saving, notes, method).")
@click.pass_context
def suggest(ctx: click.Context, period: Period, min_samples: int, limit: int, as_json: bool) -> None:
    """Savings from your own traffic, largest first and never counted twice: cheaper models shown to
    be as good (replacements), or to try with the `hive ab create` command given (experiments), retries,
    late cancels, uncapped requests."""
    from jobs.insights.suggest import suggest as build

    report = build(get_settings(ctx), period, SuggestOptions(min_samples=min_samples, limit=limit))
    if as_json:
        echo_json(report)
        return
    found = report["suggestions"]
    click.echo(f"{period.first_day}..{period.last_day}: {len(found)} suggestion(s)"
               + (f", {usd(report['total_monthly_saving_usd'])}/month in all" if report["total_monthly_saving_usd"] else ""))
    for i, s in enumerate(found, 1):
        click.echo(f"{i}. [{s['kind']}] {s['action']}")
        saving = s.get("monthly_saving_usd")
        evidence = _evidence(s) if s["kind"] in ("switch-model", "experiment") else ""
        if saving or evidence:
            click.echo("   " + "; ".join(p for p in (f"saves ~{usd(saving)}/month" if saving else "", evidence) if p))
        if s.get("command"):
            click.echo(f"   start it: {s['command']}")
    for note in report["notes"]:
        click.echo(f"note: {note}")


def _evidence(s: dict[str, Any]) -> str:
    """A switch's evidence in one line: requests and cost, success, quality with its sample sizes."""
    e = s["evidence"]

    def quality(q: dict[str, Any] | None) -> str:
        if q is None:
            return "unmeasured"
        return f"{q['mean']:.2f} (n {q['n_eff']:g}: {q['human']} by people, {q['judge']} by judges)"

    return (f"evidence: {e['requests'][0]:,} requests for {usd(e['cost_usd'][0])} vs {e['requests'][1]:,} for "
            f"{usd(e['cost_usd'][1])}; success {pct(e['success_rate'][0])} vs {pct(e['success_rate'][1])}; "
            f"quality {quality(e['quality'][0])} vs {quality(e['quality'][1])}")
