"""``hive-jobs report | schedule | run-due``: thin commands over jobs.reports.report and jobs.reports.schedule.

Heavy imports happen inside the commands.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING

import click

from hive_cli.common import JobCommand, echo_json, get_settings
from hive_cli.params import DATE, LOCATION, period_option

if TYPE_CHECKING:
    from pathlib import Path

    from hive_core.period import Period

__all__ = ["report", "run_due", "schedule"]


@click.command(cls=JobCommand)
@period_option("week")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True,
              help="md (Markdown), html (one self-contained file with charts) or json.")
@click.option("--out", "out_dir", type=LOCATION, default=None,
              help="Write hive-<kind>-<last day>.<format> into DIR, s3://bucket/prefix, "
                   "az://container/prefix or gs://bucket/prefix (default: print to stdout).")
@click.pass_context
def report(ctx: click.Context, period: Period, fmt: str, out_dir: Path | None) -> None:
    """Write a report of PERIOD: spend, models, latency, errors, budgets, alerts, suggestions, A/B.

    day, week and month end today: such a report is provisional (its title says so), since today's
    numbers still grow. A past period: --period yesterday, 2026-05 or 2026-05-14..2026-05-20.
    """
    from jobs.reports.html import render_html, render_markdown
    from jobs.reports.report import build_report, write_report

    built = build_report(get_settings(ctx), period)
    if out_dir:
        path = write_report(built, fmt, out_dir)
        click.echo(str(path), err=True)
    elif fmt == "json":
        echo_json(built)
    else:
        sys.stdout.write(render_html(built) if fmt == "html" else render_markdown(built))


@click.command(cls=JobCommand)
@click.option("--install", is_flag=True, help="Merge the lines into your crontab (idempotent, marked block).")
@click.option("--print", "print_", is_flag=True, help="Print the crontab lines (the default).")
@click.pass_context
def schedule(ctx: click.Context, install: bool, print_: bool) -> None:
    """Print or install the crontab lines for Hive's jobs.

    In UTC (CRON_TZ=UTC): the daily upkeep (reconcile, compact, rollup with alerts, verify) and day
    report; the weekly and monthly reports."""
    from jobs.reports.schedule import crontab_lines, install_crontab

    data_dir = get_settings(ctx).data_dir
    if install:
        install_crontab(data_dir)
        click.echo(f"installed {len(crontab_lines(data_dir)) - 3} hive-jobs line(s) into your crontab", err=True)
        return
    click.echo("\n".join(crontab_lines(data_dir)))


@click.command("run-due", cls=JobCommand)
@click.option("--only", type=click.Choice(["daily", "weekly", "monthly"]), default=None,
              help="Only this schedule (the crontab lines use one each).")
@click.option("--date", "today", type=DATE, default=None, help="Act as if today were this UTC day.")
@click.option("--out", "out_dir", type=LOCATION, default=None,
              help="Where reports go: DIR, s3://bucket/prefix, az://container/prefix or "
                   "gs://bucket/prefix (default: <data>/reports).")
@click.pass_context
def run_due(ctx: click.Context, only: str | None, today: date | None, out_dir: Path | None) -> None:
    """Run what is due since the last successful run, catching up missed periods. Silent on success;
    each failed step is one line on stderr (the step and why), the others still run, and the exit
    status is 1 (what cron mails)."""
    from jobs.reports.schedule import run_due as run

    done = run(get_settings(ctx), today=today, only=only, out_dir=out_dir)
    for failure in done.failures:
        click.echo(f"error: {failure}", err=True)
    if done.failures:
        sys.exit(1)
