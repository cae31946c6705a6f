"""``hive ask``: one prompt to a model (and its fallbacks), answer on stdout, summary on stderr.

Thin: opens the event log and a :class:`hive_core.session.Session` over it, asks through the
Session (selection, budget, breaker, client), prints. Heavy imports (httpx, pyarrow) happen inside
the command so ``hive --help`` stays fast.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import click

from hive_cli.common import echo_json, open_event_log, sending_settings
from hive_cli.params import json_option
from hive_cli.selection import build_request, selection_json, selection_lines, selection_options

if TYPE_CHECKING:
    from hive_core.ask import AskResult
    from hive_core.errors import HiveError
    from hive_core.selection.selector import SelectionResult
    from hive_core.session import Session

__all__ = ["ask"]


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
@json_option("Print one JSON document instead of text.")
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
    from hive_core.ids import new_request_id
    from hive_core.session import Session

    if experiment is not None:
        _ask_experiment(ctx, prompt, experiment, stream, max_tokens, as_json, over_budget)
        return
    settings = sending_settings(ctx)
    request_id = new_request_id()

    def on_fallback(failed: str, error: HiveError, next_model: str) -> None:
        click.echo(f"{failed} failed ({error.status_name}): trying {next_model}", err=True)

    with ExitStack() as stack:
        log = stack.enter_context(open_event_log(settings))
        session = stack.enter_context(Session(settings, log))
        chosen: SelectionResult | None = None
        if model:
            chain = model_chain(model, fallbacks, no_fallback=no_fallback)
        else:
            chosen = _select(session, request_id, prompt, primary_model, max_tokens, selection, show_models)
            chain = model_chain(chosen.primary, chosen.fallbacks, no_fallback=no_fallback)
        options = AskOptions(stream=stream, max_tokens=max_tokens, over_budget=over_budget, request_id=request_id,
                             task_category=chosen.task_category if chosen else selection.get("task"))
        try:
            answer = session.ask(prompt, chain, options, on_text=None if as_json else _echo_text,
                                 on_fallback=on_fallback)
        except KeyboardInterrupt:  # Ctrl-C, and SIGTERM (hive_core.shutdown.Terminated)
            if not as_json:
                sys.stdout.write("\n")
            raise  # the stream recorded "cancelled"; the log flushes on the way out; exit 130 / 143
        extra = {"selection": selection_json(chosen, selection["strategy"])} if chosen is not None else {}
        prefix = f"answered by fallback {answer.fallback_index}: {answer.model}\n" if answer.fallback_index else ""
        # Printed before the log closes: the answer is billed, so it is shown even when its events
        # must then be spilled (the log's close reports that as the command's error, after it).
        _print_answer(answer, as_json, session.prices_note, extra=extra, prefix=prefix)
        if settings.store_content:
            from hive_core.store.content import ContentStore

            ContentStore(settings.data_dir, clock=settings.clock).append(request_id, answer.model, prompt, answer.result.text)


def _echo_text(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _print_answer(answer: AskResult, as_json: bool, note: str, *, extra: dict[str, Any], prefix: str = "") -> None:
    """The JSON document, or the end of the streamed text and the one-line summary on stderr."""
    if as_json:
        echo_json({**answer.as_dict(note), **extra})
        return
    if not answer.result.text.endswith("\n"):
        sys.stdout.write("\n")
    click.echo(prefix + answer.summary(note), err=True)


def _select(
    session: Session, request_id: str, prompt: str, primary_model: str | None, max_tokens: int | None,
    selection: dict[str, Any], show: bool,
) -> SelectionResult:
    """The selector's choice for this prompt, recorded under ``request_id``; warnings (e.g. an
    unknown --primary-model) on stderr."""
    request = build_request(prompt=prompt, max_tokens=max_tokens, primary_model=primary_model, **selection)
    chosen = session.select(request, request_id=request_id)
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
    from hive_core.experiments import get_experiment
    from hive_core.session import Session

    settings = sending_settings(ctx)
    exp = get_experiment(settings.data_dir, name)
    with open_event_log(settings) as log, Session(settings, log) as session:
        variant, answer = session.ask_in_experiment(
            exp, prompt, AskOptions(stream=stream, max_tokens=max_tokens, over_budget=over_budget),
            on_text=None if as_json else _echo_text,
        )
        _print_answer(answer, as_json, session.prices_note, extra={"experiment": name, "variant": variant},
                      prefix=f"[{name}: variant {variant}] ")
