"""``hive-jobs rollup | rankings``: the daily rollups and the ranking table the selector reads."""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING

import click

from hive_cli.common import JobCommand, echo_json, get_settings
from hive_cli.params import DATE, json_option
from hive_core.store.lock import DEFAULT_LOCK_TIMEOUT_S
from jobs.rankings.table import DEFAULT_WINDOW_DAYS

if TYPE_CHECKING:
    from pathlib import Path

    from jobs.rollup.daily import RollupReport

__all__ = ["rankings", "rollup"]


def _span(days: list[date]) -> str:
    return f"{days[0]}..{days[-1]}" if len(days) > 1 else str(days[0])


@click.command(cls=JobCommand)
@click.option("--daily", is_flag=True, default=True, help="Daily rollups (the only granularity; accepted for cron lines).")
@click.option("--date", "only", type=DATE, default=None, help="Only this UTC day.")
@click.option("--since", type=DATE, default=None, help="Only days from this UTC day on.")
@click.option("--rebuild", is_flag=True, help="Recompute every day in scope from the events, changed or not.")
@click.option("--wait", "wait_s", type=click.FloatRange(0), default=DEFAULT_LOCK_TIMEOUT_S, show_default=True,
              help="Seconds to wait for another run's lock before giving up (0: do not wait).")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="What computes the rows: DuckDB in-process, or Spark (pip install 'hive[spark]'; local[2] "
                   "unless run under spark-submit).")
@json_option("Print the report as JSON.")
@click.pass_context
def rollup(ctx: click.Context, daily: bool, only: date | None, since: date | None, rebuild: bool,
           wait_s: float, engine: str, as_json: bool) -> None:
    """Roll events up into daily tables and refresh the rankings.

    Incremental: only days whose event files changed since the last run are recomputed (today
    included while it receives events); --rebuild recomputes everything in scope. --engine spark
    computes the same rows with Spark; the files, state and later steps are the same. Budget alerts are
    evaluated after it: when they cannot be (an unreadable budget config) or cannot be delivered, the
    rollup is still written, and the command says why on stderr and exits 1. On an s3://, az:// or
    gs:// data directory every file is one PUT and the lock is an object in the bucket or container
    (--engine spark is local only).
    """
    from jobs.pipeline import rollup as run

    if only and since:
        raise click.UsageError("give --date or --since, not both")
    settings = get_settings(ctx)
    report = run(settings, day=only, since=since, rebuild=rebuild, lock_timeout_s=wait_s, engine=engine)
    for line in report.repaired:
        click.echo(f"repaired: {line}", err=True)
    for path, reason in report.skipped:
        click.echo(f"warning: skipped {path}: {reason}", err=True)
    if report.kept:
        click.echo(f"warning: kept the rollups of {len(report.kept)} day(s) whose events are gone ({_span(report.kept)}): "
                   "they are now the only record of those days; is part of the event store missing?", err=True)
    if report.forgotten:
        click.echo(f"warning: {len(report.forgotten)} day(s) lost both their rollup file and their events "
                   f"({_span(report.forgotten)}): nothing can regenerate them; their month totals are unchanged",
                   err=True)
    _print(report, settings.data_dir, as_json)
    alerts = report.steps.get("budget-alerts")  # an AlertRun, or None when `hive-jobs alerts` was busy
    problems = alerts.problems() if alerts is not None else []
    for line in problems:
        click.echo(f"error: budget-alerts {line}", err=True)
    if problems:
        sys.exit(1)


def _print(report: RollupReport, data_dir: Path, as_json: bool) -> None:
    if as_json:
        echo_json(report)
        return
    if report.empty:
        click.echo(f"no events in {data_dir} yet: nothing to roll up "
                   "(record some with `hive ask`, or try `hive-jobs simulate`)")
        return
    if report.rolled_up:
        click.echo(f"rolled up {len(report.rolled_up)} day(s) {_span(report.rolled_up)} into {report.rows:,} rows; "
                   f"{report.unchanged} day(s) unchanged")
    else:
        click.echo(f"rollups up to date: {report.days_with_events} day(s), nothing changed")
    ranking = report.steps.get("rankings")
    if ranking is not None:
        click.echo(f"rankings: {ranking.rows} rows for {ranking.models} models over {ranking.window_days} days "
                   f"(priors: {ranking.priors})")


@click.command(cls=JobCommand)
@click.option("--window", "window_days", type=click.IntRange(1, 365), default=DEFAULT_WINDOW_DAYS, show_default=True,
              help="Days of rollups (today included) the table measures.")
@json_option("Print the report as JSON.")
@click.pass_context
def rankings(ctx: click.Context, window_days: int, as_json: bool) -> None:
    """Recompute the ranking table the selector reads (from the daily rollups)."""
    from jobs.rankings.table import rankings as run

    report = run(get_settings(ctx), window_days=window_days)
    if as_json:
        echo_json(report)
        return
    click.echo(f"wrote {report.path}: {report.rows} rows for {report.models} models over "
               f"{report.window_days} days (priors: {report.priors})")
