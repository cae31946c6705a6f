"""``hive analytics``: cost analytics (``cost``) and savings suggestions (``suggest``, library jobs.insights.suggest)."""

from __future__ import annotations

import click

from hive_cli.common import echo_json, get_settings
from hive_cli.lazy import LazyGroup

__all__ = ["analytics", "cost", "suggest"]

#: subcommands kept in other modules (imported when they run); add ``suggest`` here
SUBCOMMANDS: dict[str, tuple[str, str]] = {}

BY_CHOICES = ("model", "provider", "request-type", "task", "day")


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def analytics() -> None:
    """Cost analytics and savings suggestions."""


def _usd(value: float) -> str:
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"


@analytics.command()
@click.option("--period", default="7d", show_default=True,
              help="today, yesterday, 7d, 30d, month, or YYYY-MM-DD..YYYY-MM-DD (UTC days, inclusive).")
@click.option("--by", type=click.Choice(BY_CHOICES), default="model", show_default=True, help="Breakdown.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (total_usd, previous_total_usd, rows, ...).")
@click.pass_context
def cost(ctx: click.Context, period: str, by: str, as_json: bool) -> None:
    """Spend over a period, broken down, against the previous period of the same length."""
    from jobs.insights.analytics import cost as build
    from jobs.periods import parse_period

    settings = get_settings(ctx)
    report = build(settings, parse_period(period, settings.now().date()), by)
    if as_json:
        echo_json(report.as_dict())
        return
    p = report.period
    change = report.change_pct
    trend = "n/a (nothing spent before)" if change is None else f"{change:+.1f}%"
    click.echo(f"{p.label} ({p.since}..{p.until}): {_usd(report.total_usd)} over {report.requests:,} requests; "
               f"previous {p.days} day(s) {_usd(report.previous_total_usd)} ({trend})")
    share = report.billed_share
    if share is not None:
        click.echo(f"billed {share:.0%} / estimated {1 - share:.0%}"
                   + (f"; {report.unknown_cost_requests:,} request(s) of unknown cost" if report.unknown_cost_requests else ""))
    if not report.rows:
        click.echo("no usage in this period")
        return
    width = max(len(r.key) for r in report.rows)
    click.echo(f"{by:<{width}}  {'cost':>12} {'share':>6} {'requests':>9} {'previous':>12}")
    for r in report.rows:
        click.echo(f"{r.key:<{width}}  {_usd(r.cost_usd):>12} {r.share:>6.1%} {r.requests:>9,} {_usd(r.previous_cost_usd):>12}")


@analytics.command()
@click.option("--period", default="30d", show_default=True,
              help="today, yesterday, 7d, 30d, month, or YYYY-MM-DD..YYYY-MM-DD (UTC days, inclusive).")
@click.option("--min-samples", type=click.IntRange(min=10), default=200, show_default=True,
              help="Attempts a (task, model) needs before it is compared.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (suggestions with their evidence, notes, method).")
@click.pass_context
def suggest(ctx: click.Context, period: str, min_samples: int, as_json: bool) -> None:
    """Savings from your own traffic: cheaper models shown to be as good, retries, late cancels."""
    from jobs.insights.suggest import SuggestOptions
    from jobs.insights.suggest import suggest as build
    from jobs.periods import parse_period

    settings = get_settings(ctx)
    p = parse_period(period, settings.now().date())
    report = build(settings, p.since, p.until, SuggestOptions(min_samples=min_samples))
    if as_json:
        echo_json(report)
        return
    method = report["method"]
    click.echo(f"{p.since}..{p.until}: {len(report['suggestions'])} suggestion(s) "
               f"({method['test']}, {method['confidence']:.0%} confidence, margin {method['success_margin']:.0%})")
    for s in report["suggestions"]:
        saving = s.get("monthly_saving_usd")
        click.echo(f"- [{s['kind']}] {s['action']}" + (f"  (saves ~{_usd(saving)}/month)" if saving else ""))
    for note in report["notes"]:
        click.echo(f"note: {note}")
