"""``hive models performance``: per-model success, error mix, latency percentiles, tokens/s, health."""

from __future__ import annotations

import click

from hive_cli.common import echo_json, get_settings

__all__ = ["performance"]

JSON_KEYS = ("model", "requests", "success_rate", "p50_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p95_ms",
             "tokens_per_s", "quality", "health")


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms")


@click.command()
@click.option("--period", default="7d", show_default=True,
              help="today, yesterday, 7d, 30d, month, or YYYY-MM-DD..YYYY-MM-DD (UTC days, inclusive).")
@click.option("--model", default=None, help="Only this model id.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (model, requests, success_rate, p50_ms, ...).")
@click.pass_context
def performance(ctx: click.Context, period: str, model: str | None, as_json: bool) -> None:
    """Per-model success, latency percentiles, health.

    Health: unavailable (success < 50 %), unhealthy (success < 90 % or P95 > 30 s), degraded
    (success < 97 % or P95 > 15 s), else healthy. Percentiles are over successful attempts.
    """
    from jobs.insights.performance import performance as build
    from jobs.periods import parse_period

    settings = get_settings(ctx)
    rows = build(settings, parse_period(period, settings.now().date()), model)
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
        rate = "-" if r.success_rate is None else f"{r.success_rate:.1%}"
        tps = "-" if r.tokens_per_s is None else f"{r.tokens_per_s:.0f}"
        quality = "-" if r.quality is None else f"{r.quality:.2f}"
        errors = ", ".join(f"{k} {n}" for k, n in sorted(r.errors.items(), key=lambda kv: -kv[1])[:3])
        click.echo(f"{r.model:<{width}}  {r.requests:>8,} {rate:>7} {_ms(r.p50_ms):>7} {_ms(r.p95_ms):>7} "
                   f"{_ms(r.p99_ms):>7} {_ms(r.ttft_p50_ms):>7} {tps:>6} {quality:>7}  {r.health:<8} {errors}")
