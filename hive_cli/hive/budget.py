"""``hive budget``: set and show daily/monthly spending limits (UTC periods).

    hive budget set --daily 10 --monthly 200                 global limits
    hive budget set --daily 0                                the kill switch: refuse every request
    hive budget set --daily 2 --app search                   a limit for one app (HIVE_APP)
    hive budget set --monthly 50 --model openai/gpt-4o --reset-day 15
    hive budget set --daily 0 --key 3f9a1c2b7d4e             one virtual key of the gateway (hive keys)
    hive budget set --webhook https://hooks.slack.com/... --thresholds 50,80,100
    hive budget show [--json]
    hive budget unset --app search
"""

from __future__ import annotations

from pathlib import Path

import click

from hive_cli.common import echo_json, get_settings
from hive_cli.params import json_option
from hive_core.format import usd
from hive_core.period import MAX_RESET_DAY

__all__ = ["budget"]


def _usd(value: float | None) -> str:
    """A limit, with the digits it was typed with (spend prints as every figure does: ``usd``)."""
    return usd(value, typed=True)


@click.group()
def budget() -> None:
    """Set and show daily/monthly spending limits (periods are UTC days and months)."""


@budget.command("set")
@click.option("--daily", default=None, help="Daily limit in USD (UTC day); 0 refuses every request.")
@click.option("--monthly", default=None, help="Monthly limit in USD (UTC month, from --reset-day); 0 refuses every request.")
@click.option("--app", default=None, help="Limit one app (the HIVE_APP requests are made under).")
@click.option("--model", default=None, help="Limit one model id.")
@click.option("--key", "key_id", default=None, help="Limit one virtual key of the gateway (its id: `hive keys list`).")
@click.option("--reset-day", type=click.IntRange(1, MAX_RESET_DAY), default=None,
              help=f"Day of the month (1..{MAX_RESET_DAY}) the monthly period starts; default 1.")
@click.option("--webhook", default=None, help="POST alerts to this URL (Slack-compatible); '' removes it.")
@click.option("--thresholds", default=None, help="Alert thresholds in percent of each limit, e.g. 50,80,100.")
@click.pass_context
def set_(ctx: click.Context, daily: str | None, monthly: str | None, app: str | None, model: str | None,
         key_id: str | None, reset_day: int | None, webhook: str | None, thresholds: str | None) -> None:
    """Set limits (global, or for one --app, --model or --key) and alert settings.

    A limit of 0 is a kill switch: every request of the scope is refused, --over-budget included,
    until the limit is raised or unset.
    """
    from hive_core.budget.admin import scope_of, set_budget

    settings = get_settings(ctx)
    scope = scope_of(app, model, key_id)
    if key_id:  # a typo would limit nothing: the key must exist
        from hive_core.keys import KeyStore

        with KeyStore(settings.datadir) as keys:
            keys.get(key_id)
    change = set_budget(settings.datadir.config_file, scope=scope, daily=daily, monthly=monthly, reset_day=reset_day,
                        webhook_url=webhook, thresholds=thresholds)
    _say_tightened(settings.datadir.config_file, change.tightened_from)
    config = change.config
    limit = config.limits.get(scope)
    if limit is not None:
        click.echo(f"{scope}: daily {_usd(limit.daily_usd)}, monthly {_usd(limit.monthly_usd)} "
                   f"(month starts on day {limit.reset_day}, UTC)")
        for window in limit.off():
            click.echo(f"{scope}: the {window} limit is 0: every request is refused until it is raised or unset")
    click.echo(f"alerts at {', '.join(f'{p:g}%' for p in config.thresholds_pct)}; webhook "
               f"{'set' if config.webhook_url else 'not set'}")


@budget.command()
@click.option("--app", default=None, help="Remove the limits of this app.")
@click.option("--model", default=None, help="Remove the limits of this model.")
@click.option("--key", "key_id", default=None, help="Remove the limits of this virtual key (its id).")
@click.pass_context
def unset(ctx: click.Context, app: str | None, model: str | None, key_id: str | None) -> None:
    """Remove the limits of one scope (global unless --app, --model or --key)."""
    from hive_core.budget.admin import scope_of, unset_budget

    scope = scope_of(app, model, key_id)
    path = get_settings(ctx).datadir.config_file
    _say_tightened(path, unset_budget(path, scope=scope).tightened_from)
    click.echo(f"{scope}: no limits")


def _say_tightened(path: Path, mode: int | None) -> None:
    if mode is not None:
        click.echo(f"note: {path} was readable by others (mode {mode:04o}); it holds the webhook URL, "
                   "so it is now 0600", err=True)


@budget.command()
@json_option()
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Spent, reserved in flight, remaining and projected month-end, per scope."""
    from jobs.budget.status import budget_status

    settings = get_settings(ctx)
    statuses = budget_status(settings.data_dir, now=settings.now(), ledger_url=settings.ledger_url)
    if as_json:
        echo_json({"scopes": statuses})
        return
    for s in statuses:
        click.echo(f"{s.scope}  (month {s.month_start}..{s.month_end}, UTC)")
        rows: list[tuple[str, float, float | None, float | None, float]] = [
            ("today", s.spent_today_usd, s.daily_limit_usd, s.remaining_today_usd, s.ledger_spent_today_usd),
            ("month", s.spent_month_usd, s.monthly_limit_usd, s.remaining_month_usd, s.ledger_spent_month_usd),
        ]
        for label, spent, limit, remaining, ledger in rows:
            line = f"  {label}: spent {usd(spent)}"
            if limit is not None:
                line += f" of {_usd(limit)}, reserved {usd(s.reserved_usd)}, remaining {usd(remaining)}"
            click.echo(line)
            if abs(ledger - spent) >= 0.005:
                click.echo(f"  note: the ledger counts {usd(ledger)} {label}; run `hive-jobs rebuild-ledger`")
        projection = f"  projected month-end: {usd(s.projected_month_usd)} at {usd(s.rate_per_day_usd)}/day"
        if s.over_limit_on is not None:
            projection += f", over the monthly limit on {s.over_limit_on}"
        click.echo(projection)

