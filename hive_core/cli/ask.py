"""``hive ask``: one prompt to a model (and its fallbacks), answer on stdout, summary on stderr.

Thin: builds the settings, event log, catalog and client, calls :func:`hive_core.ask.ask`, prints.
Heavy imports (httpx, pyarrow) happen inside the command so ``hive --help`` stays fast.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import click

from hive_core.cli.budget import open_budget
from hive_core.cli.common import echo_json, get_settings, open_event_log

if TYPE_CHECKING:
    from hive_core.errors import HiveError
    from hive_core.events import EventSink
    from hive_core.openrouter.client import OpenRouterClient
    from hive_core.openrouter.results import ChatResult
    from hive_core.settings import Settings

__all__ = ["ask", "open_client", "result_json", "summary_line"]


def open_client(settings: Settings, sink: EventSink, stack: ExitStack) -> tuple[OpenRouterClient, str]:
    """A client recording into ``sink`` with catalog prices when a catalog is synced.

    Returns the client and a note for cost lines ("" or why estimates are unavailable): an explicit
    model works without a catalog, billed cost needs none.
    """
    from hive_core.catalog import load_catalog
    from hive_core.errors import CatalogError, CatalogMissing
    from hive_core.openrouter.client import OpenRouterClient

    note = ""
    try:
        prices = load_catalog(settings.catalog_path)
    except (CatalogMissing, CatalogError):
        prices, note = None, "no model catalog (run `hive models sync`) for cost estimates"
    client = stack.enter_context(OpenRouterClient(settings, sink=sink, prices=prices))
    return client, note


def _money(cost: float | None, source: str, note: str) -> str:
    if cost is None:
        return f"cost unknown ({note})" if note else "cost unknown"
    return f"${cost:.6f} {source}"


def summary_line(result: ChatResult, note: str = "") -> str:
    """``model · tokens in/out · cost · latency · TTFT`` in one line."""
    usage = result.usage
    served = result.served_model or result.model
    via = f" via {result.provider}" if result.provider else ""
    parts = [
        f"{served}{via}",
        f"{usage.prompt_tokens} in / {usage.completion_tokens} out tokens",
        _money(result.cost_usd, result.cost_source, note),
        f"{result.latency_ms:.0f} ms",
    ]
    if result.ttft_ms is not None:
        parts.append(f"TTFT {result.ttft_ms:.0f} ms")
    if result.outcome != "completed":
        parts.append(result.outcome)
    return " · ".join(parts)


def result_json(result: ChatResult, *, fallback_index: int, note: str = "") -> dict[str, Any]:
    """The JSON document ``--json`` prints (no secrets, the answer text included)."""
    return {
        "text": result.text,
        "model": result.model,
        "served_model": result.served_model,
        "provider": result.provider,
        "finish_reason": result.finish_reason,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "reasoning_tokens": result.usage.reasoning_tokens,
        "cost_usd": result.cost_usd,
        "cost_source": result.cost_source,
        "cost_note": note if result.cost_usd is None else "",
        "latency_ms": round(result.latency_ms, 3),
        "ttft_ms": None if result.ttft_ms is None else round(result.ttft_ms, 3),
        "tokens_per_s": result.tokens_per_s,
        "generation_id": result.generation_id,
        "request_id": result.request_id,
        "fallback_index": fallback_index,
        "attempts": result.attempts,
        "outcome": result.outcome,
    }


@click.command()
@click.argument("prompt")
@click.option("--model", "-m", help="Model id, e.g. openai/gpt-4o-mini.")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Print the answer as it arrives.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Cap on output tokens.")
@click.option("--fallback", "fallbacks", multiple=True, metavar="MODEL",
              help="A model to try if the previous one fails (repeatable, in order).")
@click.option("--no-fallback", is_flag=True, help="Only the one model; no fallbacks.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
@click.option("--experiment", default=None, metavar="NAME",
              help="Send this request through A/B experiment NAME (its variant's model; no fallbacks).")
@click.option("--over-budget", is_flag=True,
              help="Send even if a budget limit would refuse it (recorded as a budget_override event).")
@click.pass_context
def ask(
    ctx: click.Context, prompt: str, model: str | None, stream: bool, max_tokens: int | None,
    fallbacks: tuple[str, ...], no_fallback: bool, as_json: bool, experiment: str | None = None,
    over_budget: bool = False,
) -> None:
    """Ask a model PROMPT; prints the answer, and a one-line summary on stderr."""
    from hive_core.ask import AskOptions, model_chain
    from hive_core.ask import ask as ask_models

    if experiment is not None:
        _ask_experiment(ctx, prompt, experiment, stream, max_tokens, as_json, over_budget)
        return
    if not model:
        raise click.UsageError("pass --model MODEL (automatic model selection is not available yet)")
    settings = get_settings(ctx)
    settings.require_api_key()
    chain = model_chain(model, fallbacks, no_fallback=no_fallback)

    def on_fallback(failed: str, error: HiveError, next_model: str) -> None:
        click.echo(f"{failed} failed ({error.status_name}): trying {next_model}", err=True)

    def on_text(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    with ExitStack() as stack:
        log = stack.enter_context(open_event_log(settings))
        budget, sink = open_budget(settings, log, stack)
        client, note = open_client(settings, sink, stack)
        try:
            answer = ask_models(
                client, prompt, chain, AskOptions(stream=stream, max_tokens=max_tokens, over_budget=over_budget),
                on_text=None if as_json else on_text, on_fallback=on_fallback, budget=budget,
            )
        except KeyboardInterrupt:
            if not as_json:
                sys.stdout.write("\n")
            raise  # the stream recorded "cancelled"; the log flushes on the way out; exit 130
    result = answer.result
    if as_json:
        echo_json(result_json(result, fallback_index=answer.fallback_index, note=note))
    else:
        if not result.text.endswith("\n"):
            sys.stdout.write("\n")
        click.echo(summary_line(result, note), err=True)


def _ask_experiment(
    ctx: click.Context, prompt: str, name: str, stream: bool, max_tokens: int | None, as_json: bool,
    over_budget: bool = False,
) -> None:
    """``hive ask --experiment NAME``: the variant is a hash of the request id (see hive_core.experiments)."""
    from hive_core.ask import AskOptions
    from hive_core.experiments import ask_in_experiment, get_experiment

    settings = get_settings(ctx)
    settings.require_api_key()
    exp = get_experiment(settings.data_dir, name)

    def on_text(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    with ExitStack() as stack:
        log = stack.enter_context(open_event_log(settings))
        budget, sink = open_budget(settings, log, stack)
        client, note = open_client(settings, sink, stack)
        variant, answer = ask_in_experiment(
            client, log, exp, prompt, AskOptions(stream=stream, max_tokens=max_tokens, over_budget=over_budget),
            on_text=None if as_json else on_text, budget=budget,
        )
    result = answer.result
    if as_json:
        echo_json({**result_json(result, fallback_index=0, note=note), "experiment": name, "variant": variant})
    else:
        if not result.text.endswith("\n"):
            sys.stdout.write("\n")
        click.echo(f"[{name}: variant {variant}] " + summary_line(result, note), err=True)
