"""``hive keys``: the gateway's virtual keys (``hive key`` is about the OpenRouter API key).

    hive keys create --app search --user ana --daily 2 --monthly 40 --models gpt-4o-mini --rpm 60
    hive keys list [--json]
    hive keys revoke 3f9a1c2b7d4e

``create`` prints the secret once (``hk-...``): only a salted hash is stored, so it cannot be shown
again. ``list`` never shows a secret or a hash. A key's spending limits are its budget scope
(``hive budget set --key ID`` changes them, ``hive budget show`` reports them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import click

from hive_cli.common import echo_json, get_settings
from hive_cli.params import json_option
from hive_core.format import usd

__all__ = ["keys"]


def _models(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for item in value for part in item.split(",") if part.strip()))


@contextmanager
def _usage() -> Iterator[None]:
    """A value the library refuses is the user's input: one line, exit 2. (A broken ``config.json``
    is not: it stays a ConfigError, exit 1, naming the file.)"""
    from hive_core.errors import ConfigError, CorruptConfig

    try:
        yield
    except CorruptConfig:
        raise
    except ConfigError as exc:
        raise click.UsageError(str(exc), click.get_current_context(silent=True)) from None


def _when(instant: datetime | None) -> str:
    return instant.strftime("%Y-%m-%d %H:%M") if instant else "-"


@click.group()
def keys() -> None:
    """Create, list and revoke the gateway's virtual keys (each with an app, limits, models, rate)."""


@keys.command()
@click.option("--app", required=True, help="The app its requests are recorded and budgeted under.")
@click.option("--user", default=None, help="The end user it is for (recorded on its requests).")
@click.option("--daily", type=float, default=None, help="Daily limit in USD (UTC day); 0 refuses every request.")
@click.option("--monthly", type=float, default=None, help="Monthly limit in USD (UTC month); 0 refuses every request.")
@click.option("--models", multiple=True, callback=_models,
              help="Only these models (comma-separated, repeatable; short names resolve against the catalog).")
@click.option("--rpm", type=int, default=None, help="Requests per minute, across every gateway worker.")
@json_option()
@click.pass_context
def create(ctx: click.Context, app: str, user: str | None, daily: float | None, monthly: float | None,
           models: tuple[str, ...], rpm: int | None, as_json: bool) -> None:
    """Create a key and print its secret (hk-...) once: only a salted hash is kept."""
    from hive_cli.selection import resolve_models
    from hive_core.keys import KeyStore
    from hive_core.session import Session

    settings = get_settings(ctx)
    if models:
        with Session(settings, None) as session:  # only its catalog: nothing is sent
            models = tuple(resolve_models(session, models, "--models"))
    with _usage(), KeyStore(settings.datadir) as store:
        secret, key = store.create(app=app, user=user, daily_usd=daily, monthly_usd=monthly, models=models, rpm=rpm,
                                   now=settings.now())
    if as_json:
        echo_json({"secret": secret, "key": key})
        return
    click.echo(f"key: {secret}")
    click.echo("     shown this once: only a salted hash is stored; give it to the app as its API key")
    click.echo(f"id:  {key.key_id}  (app {key.app}; `hive keys revoke {key.key_id}` stops it)")
    click.echo(f"     {_limits(key.daily_usd, key.monthly_usd)}, models {', '.join(key.models) or 'any'}, "
               f"rpm {key.rpm or '-'}")


def _limits(daily: float | None, monthly: float | None) -> str:
    return f"daily {usd(daily, typed=True)}, monthly {usd(monthly, typed=True)}"


@keys.command("list")
@json_option()
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List every key: id, app, user, limits, models, rpm, created, revoked (never a secret)."""
    from hive_cli.output import format_table
    from hive_core.keys import read_keys

    found = read_keys(get_settings(ctx).datadir)  # read-only: works on a read-only data directory
    if as_json:
        echo_json({"keys": found})
        return
    rows = [(k.key_id, k.app, k.user or "-", usd(k.daily_usd, typed=True), usd(k.monthly_usd, typed=True),
             ", ".join(k.models) or "any", str(k.rpm or "-"), _when(k.created_at), _when(k.revoked_at))
            for k in found]
    click.echo(format_table(["id", "app", "user", "daily", "monthly", "models", "rpm", "created (UTC)",
                             "revoked (UTC)"], rows))


@keys.command()
@click.argument("key_id")
@json_option()
@click.pass_context
def revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke key KEY_ID: every gateway worker refuses it (401) from its next request."""
    from hive_core.keys import KeyStore

    settings = get_settings(ctx)
    with _usage(), KeyStore(settings.datadir) as store:
        key = store.revoke(key_id, now=settings.now())
    if as_json:
        echo_json({"key": key})
        return
    click.echo(f"{key.key_id}: revoked at {_when(key.revoked_at)} UTC (app {key.app})")
