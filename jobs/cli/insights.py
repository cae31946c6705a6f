"""``hive-jobs ab-report | report | schedule | run-due``: thin commands over jobs.ab_report, jobs.report
and jobs.schedule. Heavy imports happen inside the commands."""

from __future__ import annotations

import click

from hive_core.cli.common import echo_json, get_settings

__all__ = ["ab_report"]


@click.command("ab-report")
@click.argument("name")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True), default=0.05, show_default=True,
              help="Significance level of every test (family-wise, Holm-corrected).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: variants, tests, significant, winner.")
@click.pass_context
def ab_report(ctx: click.Context, name: str, alpha: float, as_json: bool) -> None:
    """Report A/B experiment NAME: per-variant results, significance tests, a recommendation."""
    from jobs.ab_report import ab_report as build
    from jobs.ab_report import format_ab_report

    result = build(get_settings(ctx).data_dir, name, alpha=alpha)
    if as_json:
        echo_json(result)
    else:
        click.echo(format_ab_report(result))
