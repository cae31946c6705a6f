"""``hive models``: a group whose subcommands live in their own modules (imported when they run)."""

from __future__ import annotations

import click

from hive_cli.lazy import LazyGroup

__all__ = ["models"]

#: name -> ("module:command", one-line help), the shape of every group's registry (see hive_cli.hive)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "list": ("hive_cli.hive.models_catalog:list_models", "List models from the synced catalog."),
    "info": ("hive_cli.hive.models_catalog:info", "Show one model: prices, tier, capabilities, measured stats."),
    "recommend": ("hive_cli.hive.models_catalog:recommend", "Recommend a model and fallbacks for a task or prompt."),
    "sync": ("hive_cli.hive.models_remote:sync", "Fetch /models from OpenRouter and cache it in the data directory."),
    "test": ("hive_cli.hive.models_remote:test", "Send one small request to a model: latency, TTFT, tokens, cost."),
    "performance": ("hive_cli.hive.models_performance:performance", "Per-model success, latency percentiles, health."),
    "benchmark": ("hive_cli.hive.models_benchmark:benchmark", "Run one prompt set against several models and compare."),
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def models() -> None:
    """List, sync, test, benchmark and recommend models."""
