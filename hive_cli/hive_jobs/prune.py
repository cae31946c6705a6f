"""``hive-jobs prune``: retention of old events whose rollups hold them."""

from __future__ import annotations

import click

from hive_cli.common import JobCommand, echo_json, get_settings
from hive_cli.params import json_option
from jobs.rollup.prune import MIN_KEEP_DAYS

__all__ = ["prune"]


@click.command(cls=JobCommand)
@click.option("--keep-days", type=click.IntRange(MIN_KEEP_DAYS), required=True,
              help=f"Keep the events of this many recent days (at least {MIN_KEEP_DAYS}); older ones go once rolled up.")
@click.option("--dry-run", is_flag=True, help="Say which days would go; remove nothing.")
@json_option()
@click.pass_context
def prune(ctx: click.Context, keep_days: int, dry_run: bool, as_json: bool) -> None:
    """Remove event partitions older than N days once their rollups exist (never before).

    Only the types the rollup summarises go (api_call, usage, stream_outcome); rollups, ratings,
    selections, A/B assignments and budget events are kept. A day whose rollup is missing or stale
    is left alone and reported. Range figures over pruned days come from the rollups. Works the
    same on an s3://, az:// or gs:// data directory.
    """
    from jobs.rollup.prune import prune as run

    settings = get_settings(ctx)
    report = run(settings.datadir, keep_days=keep_days, now=settings.now(), dry_run=dry_run)
    if as_json:
        echo_json({"cutoff": report.cutoff.isoformat(), "dry_run": dry_run,
                   "pruned": [d.isoformat() for d in report.pruned],
                   "refused": [{"date": d.isoformat(), "reason": why} for d, why in report.refused],
                   "files_removed": report.files_removed, "bytes_removed": report.bytes_removed})
        return
    for day, why in report.refused:
        click.echo(f"kept {day}: {why}", err=True)
    verb = "would prune" if dry_run else "pruned"
    span = f" ({report.pruned[0]}..{report.pruned[-1]})" if report.pruned else ""
    freed = "" if dry_run else f": {report.files_removed:,} files, {report.bytes_removed / 1e6:,.1f} MB"
    click.echo(f"{verb} {len(report.pruned)} day(s) of events before {report.cutoff}{span}{freed}")
