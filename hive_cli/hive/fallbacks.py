"""``hive fallbacks``: the fallbacks a model gets when a request names none (``config.json``).

    hive fallbacks set openai/gpt-4o anthropic/claude-3.5-sonnet google/gemini-2.0-flash-001
    hive fallbacks show [--json]
    hive fallbacks unset openai/gpt-4o
"""

from __future__ import annotations

import click

from hive_cli.common import echo_json, get_settings
from hive_cli.params import json_option

__all__ = ["fallbacks"]


@click.group()
def fallbacks() -> None:
    """Name the models tried when a model fails and its request names no fallbacks."""


@fallbacks.command("set")
@click.argument("model")
@click.argument("chain", nargs=-1, required=True, metavar="FALLBACK...")
@click.pass_context
def set_(ctx: click.Context, model: str, chain: tuple[str, ...]) -> None:
    """MODEL's fallbacks, in order (full ids or short names, checked against the synced catalog).

    `hive ask --model MODEL` and gateway requests for MODEL walk them when they name no fallbacks
    of their own; a running gateway takes the change in within seconds.
    """
    from hive_cli.selection import resolve_models
    from hive_core.fallbacks import set_fallbacks
    from hive_core.session import Session

    settings = get_settings(ctx)
    with Session(settings, None) as session:
        (primary,) = resolve_models(session, [model], "MODEL")
        named = resolve_models(session, list(chain), "FALLBACK")
    saved = set_fallbacks(settings.datadir.config_file, primary, named)
    click.echo(f"{primary}: {' -> '.join(saved[primary])}")


@fallbacks.command()
@click.argument("model")
@click.pass_context
def unset(ctx: click.Context, model: str) -> None:
    """Forget MODEL's fallbacks (its id as `hive fallbacks show` lists it)."""
    from hive_core.fallbacks import unset_fallbacks

    settings = get_settings(ctx)
    had = model in get_chains(ctx)
    unset_fallbacks(settings.datadir.config_file, model)
    click.echo(f"{model}: no fallbacks" + ("" if had else " (it had none: `hive fallbacks show` lists those that do)"))


def get_chains(ctx: click.Context) -> dict[str, tuple[str, ...]]:
    """The section as it is now."""
    from hive_core.fallbacks import load_fallbacks

    return load_fallbacks(get_settings(ctx).datadir.config_file)


@fallbacks.command()
@json_option()
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Every model's fallbacks."""
    chains = get_chains(ctx)
    if as_json:
        echo_json({model: list(chain) for model, chain in chains.items()})
        return
    if not chains:
        click.echo("no fallbacks set (hive fallbacks set MODEL FALLBACK...)")
    for model, chain in sorted(chains.items()):
        click.echo(f"{model}: {' -> '.join(chain)}")
