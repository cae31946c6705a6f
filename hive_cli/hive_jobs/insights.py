"""``hive-jobs ab-report | report | schedule | run-due``: thin commands over jobs.insights.ab, jobs.reports.report
and jobs.reports.schedule. Heavy imports happen inside the commands."""

from __future__ import annotations

from datetime import date

import click

from hive_cli.common import JobCommand, echo_json, get_settings
from hive_cli.params import DATE, json_option
from hive_core.period import REPORT_KINDS
from hive_core.stats import DEFAULT_ALPHA

__all__ = ["ab_report", "report", "run_due", "schedule"]


@click.command("ab-report", cls=JobCommand)
@click.argument("name")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True), default=DEFAULT_ALPHA, show_default=True,
              help="Significance level of every test (family-wise, Holm-corrected).")
@json_option("Print JSON: variants, tests, significant, winner.")
@click.pass_context
def ab_report(ctx: click.Context, name: str, alpha: float, as_json: bool) -> None:
    """Report A/B experiment NAME: per-variant results, significance tests, a recommendation."""
    from jobs.insights.ab import ab_report as build
    from jobs.insights.ab import format_ab_report

    result = build(get_settings(ctx).data_dir, name, alpha=alpha)
    if as_json:
        echo_json(result)
    else:
        click.echo(format_ab_report(result))


@click.command(cls=JobCommand)
@click.option("--period", type=click.Choice(REPORT_KINDS), default="week", show_default=True,
              help="day: the end day; week: the 7 days ending it; month: its calendar month up to it.")
@click.option("--date", "end", type=DATE, default=None, help="Last day of the period (default: yesterday, UTC).")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True,
              help="md (Markdown), html (one self-contained file with charts) or json.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write hive-<period>-<date>.<format> into DIR (default: print to stdout).")
@click.pass_context
def report(ctx: click.Context, period: str, end: date | None, fmt: str, out_dir: str | None) -> None:
    """Write a day/week/month report: spend, models, latency, errors, budgets, alerts, suggestions, A/B."""
    import sys
    from pathlib import Path

    from jobs.reports.html import render_html, render_markdown
    from jobs.reports.report import build_report, write_report

    built = build_report(get_settings(ctx), period, end)
    if out_dir:
        path = write_report(built, fmt, Path(out_dir))
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
    """Print or install the crontab lines: daily rollup + alerts + report, weekly and monthly reports."""
    from jobs.reports.schedule import crontab_lines, install_crontab

    data_dir = get_settings(ctx).data_dir
    if install:
        install_crontab(data_dir)
        click.echo(f"installed {len(crontab_lines(data_dir)) - 2} hive-jobs line(s) into your crontab", err=True)
        return
    click.echo("\n".join(crontab_lines(data_dir)))


@click.command("run-due", cls=JobCommand)
@click.option("--only", type=click.Choice(["daily", "weekly", "monthly"]), default=None,
              help="Only this schedule (the crontab lines use one each).")
@click.option("--date", "today", type=DATE, default=None, help="Act as if today were this UTC day.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where reports go (default: <data>/reports).")
@click.pass_context
def run_due(ctx: click.Context, only: str | None, today: date | None, out_dir: str | None) -> None:
    """Run what is due since the last successful run, catching up missed periods. Silent on success;
    a failure is one line on stderr and exit status 1 (what cron mails)."""
    from pathlib import Path

    from jobs.reports.schedule import run_due as run

    run(get_settings(ctx), today=today, only=only, out_dir=Path(out_dir) if out_dir else None)
