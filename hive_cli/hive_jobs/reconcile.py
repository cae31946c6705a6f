"""``hive-jobs reconcile``: billed cost for requests whose cost was estimated or unknown."""

from __future__ import annotations

import click

from hive_cli.common import JobCommand, echo_json, get_settings, open_event_log
from hive_cli.params import json_option
from hive_core.format import usd

__all__ = ["reconcile"]


@click.command(cls=JobCommand)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Look up at most N generations.")
@json_option()
@click.pass_context
def reconcile(ctx: click.Context, limit: int | None, as_json: bool) -> None:
    """Fetch /generation for cancelled or cut requests and append billed usage events (idempotent)."""
    from hive_core.session import Session
    from jobs.budget.reconcile import reconcile as run

    settings = get_settings(ctx)
    # /generation is a metadata request: the Session's client without a sink (nothing to reserve)
    with open_event_log(settings) as log, Session(settings, None) as session:
        report = run(settings.data_dir, session.client, log, limit=limit)
    if as_json:
        echo_json(report)
        return
    click.echo(f"checked {report.checked}, corrected {report.corrected} ({usd(report.corrected_usd, places=6)} billed), "
               f"pending {len(report.pending)}, failed {len(report.failed)}")
    for generation_id, error in report.failed:
        click.echo(f"  {generation_id}: {error}", err=True)
