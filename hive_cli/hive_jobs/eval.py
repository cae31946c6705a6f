"""``hive-jobs eval``: grade answers with a judge model (library: jobs.eval), then refresh the rankings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from hive_cli.common import JobCommand, echo_json, open_event_log, sending_settings
from hive_cli.params import json_option, period_option
from jobs.eval.judge import DEFAULT_JUDGE

if TYPE_CHECKING:
    from hive_core.period import Period

__all__ = ["eval_"]

DEFAULT_SAMPLE = 50


@click.command("eval", cls=JobCommand)
@click.option("--judge", default=DEFAULT_JUDGE, show_default=True, metavar="MODEL",
              help="The judge model (full id or short name); its requests are budgeted and recorded as 'judge'.")
@period_option("7d")
@click.option("--sample", type=click.IntRange(min=1), default=DEFAULT_SAMPLE, show_default=True,
              help="At most this many stored answers not yet graded by this judge.")
@click.option("--benchmark", "models", multiple=True, metavar="MODEL",
              help="Grade MODEL's answers to the built-in benchmark prompts instead (repeatable).")
@json_option("Print JSON: graded, skipped, judge cost, mean grade per model.")
@click.pass_context
def eval_(ctx: click.Context, judge: str, period: Period, sample: int, models: tuple[str, ...],
          as_json: bool) -> None:
    """Score answers with a judge model; the rankings weigh the scores.

    Graded: a sample of the period's stored answers (HIVE_STORE_CONTENT=true), or with --benchmark
    the named models' answers to the built-in prompts. Each score is a quality_rating (rater
    judge:MODEL) that the rankings weigh with people's ratings (hive rate)."""
    from hive_core.format import usd
    from hive_core.session import Session
    from jobs.eval.judge import evaluate, judge_rater
    from jobs.eval.samples import benchmark_samples, stored_samples
    from jobs.rankings.table import rankings

    settings = sending_settings(ctx)
    with open_event_log(settings) as log, Session(settings, log) as session:
        judge_id = session.resolve([judge])[0]
        failures = 0
        if models:
            samples, failures = benchmark_samples(session, models)
        else:
            samples = stored_samples(settings, period.first_day, period.last_day,
                                     rater=judge_rater(judge_id), limit=sample)
        report = evaluate(session, log, samples, judge=judge_id)
        report.answer_failures = failures
    ranked = rankings(settings) if report.graded else None
    if as_json:
        echo_json(report.as_dict())
        return
    if not samples:
        where = "" if models else (" (store answers with HIVE_STORE_CONTENT=true, or grade the built-in "
                                   "prompts with --benchmark MODEL)")
        click.echo(f"nothing to grade in {period.first_day}..{period.last_day}{where}")
        return
    click.echo(f"judge {report.judge}: graded {report.graded} answer(s) for {usd(report.judge_cost_usd)}"
               + (f"; skipped {report.skipped_self} of the judge's own" if report.skipped_self else "")
               + (f"; {report.unscored} without a score" if report.unscored else "")
               + (f"; {report.failed} judge request(s) failed" if report.failed else "")
               + (f"; {failures} benchmark request(s) failed" if failures else ""))
    for model, found in report.as_dict()["models"].items():
        click.echo(f"  {model:<40} {found['ratings']:>4} grade(s), mean {found['mean']:.2f}")
    if report.stopped_by_budget:
        click.echo(f"stopped early: {report.stopped_by_budget}", err=True)
    if ranked is not None:
        click.echo(f"rankings refreshed: {ranked.rows} row(s), {ranked.models} model(s)")
