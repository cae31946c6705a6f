"""``hive rate REQUEST_ID|last SCORE``: quality feedback on one answer (feeds the rankings' quality)."""

from __future__ import annotations

import click

from hive_cli.common import echo_json, get_settings, open_event_log
from hive_cli.params import json_option

__all__ = ["rate"]


@click.command()
@click.argument("request_id")
@click.argument("score", type=click.FloatRange(0.0, 1.0), required=False)
@click.option("--good", "verdict", flag_value="good", help="Same as SCORE 1.")
@click.option("--bad", "verdict", flag_value="bad", help="Same as SCORE 0.")
@click.option("--rater", default=None, help="Who rates (default: HIVE_USER).")
@json_option("Print the recorded event as JSON.")
@click.pass_context
def rate(ctx: click.Context, request_id: str, score: float | None, verdict: str | None, rater: str | None,
         as_json: bool) -> None:
    """Rate the answer of request REQUEST_ID (or `last`: your most recent request): SCORE from 0 (bad)
    to 1 (good), or --good / --bad. People's ratings count twice a judge's (hive-jobs eval) in the rankings."""
    from jobs.insights.rating import rate as record

    if (score is None) == (verdict is None):
        raise click.UsageError("give SCORE (0..1) or one of --good / --bad")
    value = score if score is not None else (1.0 if verdict == "good" else 0.0)
    settings = get_settings(ctx)
    with open_event_log(settings) as log:
        event = record(settings, log, request_id, value, rater=rater)
    if as_json:
        echo_json(event)
        return
    click.echo(f"rated {event.request_id} {value:g}" + (f" ({event.model})" if event.model else ""))
