"""``hive``: ask models, inspect models, see analytics, manage budgets and experiments.

Each subcommand lives in its own module under ``hive_cli.hive`` and is imported when it runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from hive_cli.common import as_of_option, data_dir_option
from hive_cli.lazy import LazyGroup, run_cli

__all__ = ["cli", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("hive_cli.hive.ask:ask", "Ask a model; picks one (and fallbacks) unless --model is given."),
    "models": ("hive_cli.hive.models:models", "List, sync, test, benchmark and recommend models."),
    "key": ("hive_cli.hive.key:key", "Show the API key's status, limit and usage."),
    "analytics": ("hive_cli.hive.analytics:analytics", "Cost analytics and savings suggestions."),
    "rate": ("hive_cli.hive.rate:rate", "Rate the answer of a request (quality feedback)."),
    "budget": ("hive_cli.hive.budget:budget", "Set and show daily/monthly spending limits."),
    "ab": ("hive_cli.hive.ab:ab", "Create, list and stop A/B experiments."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@data_dir_option
@as_of_option
@click.version_option(package_name="hive", prog_name="hive")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, as_of: str | None) -> None:
    """Hive: call LLMs through OpenRouter, record every call, and pick models from measured reality."""
    ctx.obj = {"data_dir": data_dir, "as_of": as_of}


def main(args: Sequence[str] | None = None) -> None:
    """Console entry point of ``hive``."""
    run_cli(cli, args, prog_name="hive")
