"""``hive analytics``: cost analytics (``cost``); savings suggestions join the group later."""

from __future__ import annotations

import click

from hive_core.cli.common import echo_json, get_settings
from hive_core.cli.lazy import LazyGroup

__all__ = ["analytics", "cost"]

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
    from jobs.analytics import cost as build
    from jobs.periods import parse_period

    report = build(get_settings(ctx), parse_period(period), by)
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
