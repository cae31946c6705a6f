"""``hive``: ask models, inspect models, see analytics, manage budgets and experiments.

Each subcommand lives in its own module under ``hive_cli.hive`` and is imported when it runs.
"""

from __future__ import annotations

from hive_cli.lazy import entry_point, root_group

__all__ = ["cli", "main"]

#: name -> ("module:command", one-line help): the registry LazyGroup loads from; every group's
#: registry has this shape by design (data, one line per command)
COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("hive_cli.hive.ask:ask", "Ask a model; picks one (and fallbacks) unless --model is given."),
    "models": ("hive_cli.hive.models:models", "List, sync, test, benchmark and recommend models."),
    "key": ("hive_cli.hive.key:key", "Show the API key's status, limit and usage."),
    "analytics": ("hive_cli.hive.analytics:analytics", "Cost analytics and savings suggestions."),
    "rate": ("hive_cli.hive.rate:rate", "Rate the answer of a request (quality feedback)."),
    "budget": ("hive_cli.hive.budget:budget", "Set and show daily/monthly spending limits."),
    "fallbacks": ("hive_cli.hive.fallbacks:fallbacks", "Name the fallbacks of a model requests name alone."),
    "ab": ("hive_cli.hive.ab:ab", "Create, list and stop A/B experiments."),
    "keys": ("hive_cli.hive.keys:keys", "Create, list and revoke the gateway's virtual keys."),
    "gateway": ("hive_cli.hive.gateway:gateway", "Serve an OpenAI-compatible gateway that records every call."),
}

cli = root_group(
    "hive", "Hive: call LLMs through OpenRouter, record every call, and pick models from measured reality.",
    COMMANDS, version=True,
)

main = entry_point(cli)
