"""``hive-jobs alerts`` and ``hive-jobs rebuild-ledger``: the batch side of budgets."""

from __future__ import annotations

import sys

import click

from hive_cli.common import JobCommand, echo_json, get_settings, open_event_log
from hive_cli.params import json_option
from hive_core.format import usd

__all__ = ["alerts", "rebuild_ledger"]


@click.command(cls=JobCommand)
@json_option()
@click.pass_context
def alerts(ctx: click.Context, as_json: bool) -> None:
    """Fire due budget alerts once each: print them, record them, POST them to the webhook.

    Exits 1 when the webhook did not accept every alert; those stay in the outbox for the next run.
    """
    from jobs.budget.alerts import run_alerts

    settings = get_settings(ctx)
    with open_event_log(settings) as log:
        run = run_alerts(settings.data_dir, now=settings.now(), sink=log)
    if as_json:
        echo_json(run)
    else:
        for alert in run.fired:
            click.echo(alert.message)
        if not run.fired:
            click.echo("no new budget alerts")
    for failure in run.failures:
        click.echo(f"error: {failure}; {run.pending} alert(s) kept for the next run", err=True)
    if run.failures:
        sys.exit(1)


@click.command("rebuild-ledger", cls=JobCommand)
@click.pass_context
def rebuild_ledger(ctx: click.Context) -> None:
    """Recreate the budget ledger's spend from the usage events; expire in-flight reservations."""
    # (Of dead processes only; spend whose usage event is not on disk yet is kept; an unreadable
    # ledger is moved aside as budget-ledger.sqlite3.corrupt-N. The help text feeds the README.)
    from jobs.budget.ledger import rebuild_ledger as rebuild

    settings = get_settings(ctx)
    result = rebuild(settings.data_dir, now=settings.now(), ledger_url=settings.ledger_url)
    if result.moved_aside is not None:
        click.echo(f"the unreadable ledger was moved to {result.moved_aside}")
    click.echo(f"ledger rebuilt: {usd(result.total_usd, places=6)} over {result.days} day(s); "
               f"{result.kept_settlements} settlement(s) not on disk yet kept; "
               f"{result.expired_reservations} in-flight reservation(s) expired, {result.live_reservations} live kept")
