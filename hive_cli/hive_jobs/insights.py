"""``hive-jobs ab-report``: a thin command over jobs.insights.ab (reports and cron: ``reports.py``).
Heavy imports happen inside the command."""

from __future__ import annotations

import click

from hive_cli.common import JobCommand, echo_json, get_settings
from hive_cli.params import json_option
from hive_core.stats import DEFAULT_ALPHA

__all__ = ["ab_report"]


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
