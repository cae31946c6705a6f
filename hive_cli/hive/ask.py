"""``hive ask``: one prompt to a model (and its fallbacks), answer on stdout, summary on stderr.

Thin: builds the settings, event log, catalog and client, calls :func:`hive_core.ask.ask`, prints.
Heavy imports (httpx, pyarrow) happen inside the command so ``hive --help`` stays fast.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import click

from hive_cli.common import echo_json, open_event_log, sending_settings
from hive_cli.hive.budget import open_budget
from hive_cli.hive.selection import build_request, selection_lines, selection_options

if TYPE_CHECKING:
    from hive_core.errors import HiveError
    from hive_core.openrouter.client import OpenRouterClient
    from hive_core.openrouter.results import ChatResult
    from hive_core.selection.selector import SelectionResult
    from hive_core.settings import Settings
    from hive_core.store.events import EventSink

__all__ = ["ask", "open_client", "result_json", "summary_line"]


def open_client(settings: Settings, sink: EventSink, stack: ExitStack) -> tuple[OpenRouterClient, str]:
    """A client recording into ``sink`` with catalog prices when a catalog is synced.

    Returns the client and a note for cost lines ("" or why estimates are unavailable): an explicit
    model works without a catalog, billed cost needs none.
    """
    from hive_core.catalog.catalog import load_catalog
    from hive_core.errors import CatalogError, CatalogMissing
    from hive_core.openrouter.client import OpenRouterClient

    note = ""
    try:
        prices = load_catalog(settings.catalog_path, cache_dir=settings.cache_dir)
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
@click.option("--model", "-m", help="Model id, e.g. openai/gpt-4o-mini (default: the selector chooses).")
@click.option("--primary-model", default=None, metavar="MODEL",
              help="Put MODEL first and keep the selector's fallbacks (an unknown MODEL falls back with a warning).")
@click.option("--show-models", is_flag=True, help="Print the chosen model, fallbacks, tier, estimated cost and reason.")
@selection_options
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
    ctx: click.Context, /, prompt: str, model: str | None, primary_model: str | None, show_models: bool,
    stream: bool, max_tokens: int | None, fallbacks: tuple[str, ...], no_fallback: bool, as_json: bool,
    experiment: str | None = None, over_budget: bool = False, **selection: Any,
) -> None:
    """Ask a model PROMPT; prints the answer, and a one-line summary on stderr.

    Without --model the selector picks a model and a fallback chain from the prompt's complexity,
    --task, --strategy and the constraints, using the ranking table the jobs write; the choice is
    recorded as a selection event.
    """
    from hive_core.ask import AskOptions, model_chain
    from hive_core.ask import ask as ask_models
    from hive_core.ids import new_request_id
    from hive_core.selection.health import CircuitBreaker

    if experiment is not None:
        _ask_experiment(ctx, prompt, experiment, stream, max_tokens, as_json, over_budget)
        return
    settings = sending_settings(ctx)
    request_id = new_request_id()
    chosen: SelectionResult | None = None
    if model:
        chain = model_chain(model, fallbacks, no_fallback=no_fallback)
    else:
        chosen = _select(settings, prompt, primary_model, max_tokens, selection, show_models)
        chain = model_chain(chosen.primary, chosen.fallbacks, no_fallback=no_fallback)

    def on_fallback(failed: str, error: HiveError, next_model: str) -> None:
        click.echo(f"{failed} failed ({error.status_name}): trying {next_model}", err=True)

    with ExitStack() as stack:
        log = stack.enter_context(open_event_log(settings))
        if chosen is not None:
            log.record(chosen.to_event(request_id, selection["strategy"], app=settings.app, user=settings.user))
        budget, sink = open_budget(settings, log, stack)
        client, note = open_client(settings, sink, stack)
        options = AskOptions(stream=stream, max_tokens=max_tokens, over_budget=over_budget, request_id=request_id,
                             task_category=chosen.task_category if chosen else selection.get("task"))
        try:
            answer = ask_models(
                client, prompt, chain, options, on_text=None if as_json else _echo_text, on_fallback=on_fallback,
                budget=budget, breaker=CircuitBreaker(settings.state_dir),
            )
        except KeyboardInterrupt:  # Ctrl-C, and SIGTERM (hive_core.shutdown.Terminated)
            if not as_json:
                sys.stdout.write("\n")
            raise  # the stream recorded "cancelled"; the log flushes on the way out; exit 130 / 143
        extra: dict[str, Any] = {}
        if chosen is not None:
            from hive_cli.hive.models_catalog import result_json as selection_json

            extra["selection"] = selection_json(chosen, selection["strategy"])
        prefix = f"answered by fallback {answer.fallback_index}: {answer.model}\n" if answer.fallback_index else ""
        # Printed before the log closes: the answer is billed, so it is shown even when its events
        # must then be spilled (the log's close reports that as the command's error, after it).
        _print_answer(answer.result, as_json, note, fallback_index=answer.fallback_index, extra=extra, prefix=prefix)
        if settings.store_content:
            from hive_core.store.content import ContentStore

            ContentStore(settings.data_dir, clock=settings.clock).append(request_id, answer.model, prompt, answer.result.text)


def _echo_text(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _print_answer(result: ChatResult, as_json: bool, note: str, *, fallback_index: int,
                  extra: dict[str, Any], prefix: str = "") -> None:
    """The JSON document, or the end of the streamed text and the one-line summary on stderr."""
    if as_json:
        echo_json({**result_json(result, fallback_index=fallback_index, note=note), **extra})
        return
    if not result.text.endswith("\n"):
        sys.stdout.write("\n")
    click.echo(prefix + summary_line(result, note), err=True)


def _select(
    settings: Settings, prompt: str, primary_model: str | None, max_tokens: int | None,
    selection: dict[str, Any], show: bool,
) -> SelectionResult:
    """The selector's choice for this prompt; warnings (e.g. an unknown --primary-model) on stderr."""
    from hive_core.selection.selector import load_selector

    request = build_request(prompt=prompt, max_tokens=max_tokens, primary_model=primary_model, **selection)
    chosen = load_selector(settings).select(request)
    for warning in chosen.warnings:
        click.echo(f"warning: {warning}", err=True)
    if show:
        for line in selection_lines(chosen, selection["strategy"]):
            click.echo(line, err=True)
    return chosen


def _ask_experiment(
    ctx: click.Context, prompt: str, name: str, stream: bool, max_tokens: int | None, as_json: bool,
    over_budget: bool = False,
) -> None:
    """``hive ask --experiment NAME``: the variant is a hash of the request id (see hive_core.experiments)."""
    from hive_core.ask import AskOptions
    from hive_core.experiments import ask_in_experiment, get_experiment

    settings = sending_settings(ctx)
    exp = get_experiment(settings.data_dir, name)
    with ExitStack() as stack:
        log = stack.enter_context(open_event_log(settings))
        budget, sink = open_budget(settings, log, stack)
        client, note = open_client(settings, sink, stack)
        variant, answer = ask_in_experiment(
            client, log, exp, prompt, AskOptions(stream=stream, max_tokens=max_tokens, over_budget=over_budget),
            on_text=None if as_json else _echo_text, budget=budget,
        )
        _print_answer(answer.result, as_json, note, fallback_index=0, extra={"experiment": name, "variant": variant},
                      prefix=f"[{name}: variant {variant}] ")
