"""``hive models performance``: per-model success, error mix, latency percentiles, tokens/s, health."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from hive_cli.common import echo_json, get_settings
from hive_cli.params import json_option, period_option
from hive_core.format import MISSING, ms, pct

if TYPE_CHECKING:
    from hive_core.period import Period

__all__ = ["performance"]

JSON_KEYS = ("model", "requests", "success_rate", "p50_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p95_ms",
             "tokens_per_s", "quality", "health")


@click.command()
@period_option("7d")
@click.option("--model", default=None, help="Only this model id.")
@json_option("Print a JSON list (model, requests, success_rate, p50_ms, ...).")
@click.pass_context
def performance(ctx: click.Context, period: Period, model: str | None, as_json: bool) -> None:
    """Per-model success, latency percentiles, health.

    Health: unavailable (success < 50 %), unhealthy (success < 90 % or P95 > 30 s), degraded
    (success < 97 % or P95 > 15 s), else healthy. Percentiles are over successful attempts.
    """
    from jobs.insights.performance import performance as build

    rows = build(get_settings(ctx), period, model)
    if as_json:
        echo_json([{**{k: r.as_dict()[k] for k in JSON_KEYS}, "errors": r.errors, "attempts": r.attempts,
                    "p99_ttft_ms": r.ttft_p99_ms} for r in rows])
        return
    if not rows:
        click.echo(f"no calls{' to ' + model if model else ''} in this period (run `hive-jobs rollup` after recording some)")
        return
    width = max(len(r.model) for r in rows)
    click.echo(f"{'model':<{width}}  {'requests':>8} {'success':>7} {'p50':>7} {'p95':>7} {'p99':>7} "
               f"{'ttft50':>7} {'tok/s':>6} {'quality':>7}  health   top errors")
    for r in rows:
        tps = MISSING if r.tokens_per_s is None else f"{r.tokens_per_s:.0f}"
        quality = MISSING if r.quality is None else f"{r.quality:.2f}"
        errors = ", ".join(f"{k} {n}" for k, n in sorted(r.errors.items(), key=lambda kv: -kv[1])[:3])
        click.echo(f"{r.model:<{width}}  {r.requests:>8,} {pct(r.success_rate):>7} "
                   f"{ms(r.p50_ms, compact=True):>7} {ms(r.p95_ms, compact=True):>7} {ms(r.p99_ms, compact=True):>7} "
                   f"{ms(r.ttft_p50_ms, compact=True):>7} {tps:>6} {quality:>7}  {r.health:<8} {errors}")
