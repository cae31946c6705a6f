"""``hive key``: the API key's status, limit and usage (``GET /key``). Never prints the key."""

from __future__ import annotations

from typing import Any

import click

from hive_cli.common import echo_json, get_settings
from hive_cli.params import json_option

__all__ = ["key", "key_status"]

_FIELDS = (
    ("limit", "limit (USD)"), ("limit_remaining", "remaining (USD)"), ("limit_reset", "limit resets"),
    ("usage", "usage (USD)"), ("usage_daily", "usage today"), ("usage_weekly", "usage this week"),
    ("usage_monthly", "usage this month"), ("is_free_tier", "free tier"), ("expires_at", "expires"),
)


def key_status(info: dict[str, Any], secret: str) -> dict[str, Any]:
    """The fields worth showing, with anything that could hold the key removed (the label is a
    masked key; it is dropped outright if a deployment ever returns the key in clear)."""
    shown = {name: info.get(name) for name, _ in _FIELDS if name in info}
    label = info.get("label")
    if isinstance(label, str) and secret not in label and len(label) < len(secret):
        shown["label"] = label
    shown["valid"] = True
    return shown


@click.command()
@json_option()
@click.pass_context
def key(ctx: click.Context, as_json: bool) -> None:
    """Show the API key's status, limit and usage (the key itself is never shown)."""
    from hive_core.session import Session

    settings = get_settings(ctx)
    secret = settings.require_api_key()
    with Session(settings, None) as session:  # GET /key: nothing to record or budget
        status = key_status(session.client.key_info(), secret)
    if as_json:
        echo_json(status)
        return
    click.echo("key: valid" + (f" ({status['label']})" if "label" in status else ""))
    for name, title in _FIELDS:
        if name in status:
            value = status[name]
            click.echo(f"{title}: {'none' if value is None else value}")
