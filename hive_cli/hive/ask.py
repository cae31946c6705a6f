"""``hive ask``: one prompt to a model (and its fallbacks), answer on stdout, summary on stderr.

Thin: reads the prompt (the argument, ``-`` for stdin or ``--file``: no argv limit on its size),
opens the event log and a :class:`hive_core.session.Session` over it, resolves the models named on
the command line against the catalog, asks through the Session (selection, budget, breaker,
client), prints. Everything a person can get wrong - an empty prompt, an unreadable schema file,
an unknown model - is refused before anything is sent: one line, exit 2.

stdout carries only the answer (a fallback's answer after a partial one that failed mid-way);
stderr carries the rest, each on its own line: fallback notices, the summary, and the request id
that ``hive rate`` takes (``--quiet`` keeps the last two; ``--json`` carries them in the document).

Heavy imports (httpx, pyarrow) happen inside the command so ``hive --help`` stays fast.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hive_cli.common import echo_json, open_event_log, sending_settings
from hive_cli.params import JSON_OBJECT_FILE, json_option
from hive_cli.selection import (
    build_request,
    resolve_models,
    selection_json,
    selection_lines,
    selection_options,
)

if TYPE_CHECKING:
    from hive_core.ask import AskOptions, AskResult
    from hive_core.errors import HiveError
    from hive_core.openrouter.protocol import Messages
    from hive_core.selection.selector import SelectionResult
    from hive_core.session import Session

__all__ = ["ask"]

T = TypeVar("T")


@click.command()
@click.argument("prompt", required=False)
@click.option("--file", "-f", "prompt_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Read the prompt from this file (UTF-8; - for stdin) instead of PROMPT.")
@click.option("--system", default=None, metavar="TEXT", help="A system message sent before the prompt.")
@click.option("--temperature", type=click.FloatRange(0.0, 2.0), default=None, help="Sampling temperature, 0 to 2.")
@click.option("--json-schema", "json_schema", type=JSON_OBJECT_FILE, default=None,
              help="Ask for JSON valid against the JSON Schema in FILE (response_format json_schema; "
                   "FILE may also hold OpenAI's {name, schema, strict} object).")
@click.option("--model", "-m", help="Model id, e.g. openai/gpt-4o-mini or gpt-4o-mini (default: the selector chooses).")
@click.option("--primary-model", default=None, metavar="MODEL",
              help="Put MODEL first and keep the selector's fallbacks (full id or short name; an unknown MODEL is refused before sending).")
@click.option("--show-models", is_flag=True, help="Print the chosen model, fallbacks, tier, estimated cost and reason.")
@selection_options
@click.option("--stream/--no-stream", default=True, show_default=True, help="Print the answer as it arrives.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Cap on output tokens.")
@click.option("--fallback", "fallbacks", multiple=True, metavar="MODEL",
              help="A model to try if the previous one fails (repeatable, in order); without it, --model "
                   "walks the fallbacks `hive fallbacks set` named for it.")
@click.option("--no-fallback", is_flag=True, help="Only the one model; no fallbacks.")
@json_option("Print one JSON document instead of text (it carries the request id).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the answer: no summary or request id on stderr.")
@click.option("--experiment", default=None, metavar="NAME",
              help="Send this request through A/B experiment NAME (its variant's model; no fallbacks).")
@click.option("--over-budget", is_flag=True,
              help="Send even if a budget limit would refuse it (recorded as a budget_override event).")
@click.pass_context
def ask(
    ctx: click.Context, /, prompt: str | None, prompt_file: Path | None, system: str | None,
    temperature: float | None, json_schema: dict[str, Any] | None, model: str | None, primary_model: str | None,
    show_models: bool, stream: bool, max_tokens: int | None, fallbacks: tuple[str, ...], no_fallback: bool,
    as_json: bool, quiet: bool = False, experiment: str | None = None, over_budget: bool = False, **selection: Any,
) -> None:
    """Ask a model PROMPT (- reads it from stdin); prints the answer, then a summary and the request id
    (for `hive rate`) on stderr.

    Without --model the selector picks a model and a fallback chain from the prompt's complexity,
    --task, --strategy and the constraints, using the ranking table the jobs write; the choice is
    recorded as a selection event. --model and --fallback take full ids or short names (gpt-4o-mini);
    an unknown one is refused before sending, with the close matches of the synced catalog.
    """
    from hive_core.ask import AskOptions, model_chain
    from hive_core.ids import new_request_id
    from hive_core.session import Session

    text = read_prompt(prompt, prompt_file)
    messages: Messages = [{"role": "system", "content": system}, {"role": "user", "content": text}] if system else text
    params = body_params(temperature, json_schema)
    out = _Answer(as_json, quiet)
    if experiment is not None:
        _ask_experiment(ctx, messages, experiment, AskOptions(stream=stream, max_tokens=max_tokens,
                                                              over_budget=over_budget, params=params), out)
        return
    settings = sending_settings(ctx)
    request_id = new_request_id()

    with ExitStack() as stack:
        log = stack.enter_context(open_event_log(settings))
        session = stack.enter_context(Session(settings, log))
        chosen: SelectionResult | None = None
        if model:
            (primary,) = resolve_models(session, [model], "--model")
            named = resolve_models(session, list(fallbacks), "--fallback")
            if not named and not no_fallback:
                named = list(session.fallbacks_for(primary))  # the operator's (hive fallbacks set)
            chain = model_chain(primary, named, no_fallback=no_fallback)
        else:
            if primary_model is not None:  # a typo never becomes a model of the performance tables
                primary_model = resolve_models(session, [primary_model], "--primary-model")[0]
            chosen = _select(session, request_id, text, primary_model, max_tokens, selection, show_models)
            chain = model_chain(chosen.primary, chosen.fallbacks, no_fallback=no_fallback)
        _warn_unsupported(session, chain, params)
        options = AskOptions(stream=stream, max_tokens=max_tokens, over_budget=over_budget, request_id=request_id,
                             task_category=chosen.task_category if chosen else selection.get("task"), params=params)
        answer = out.asking(lambda: session.ask(messages, chain, options, on_text=out.text, on_fallback=out.fallback))
        extra = {"selection": selection_json(chosen, selection["strategy"])} if chosen is not None else {}
        prefix = f"answered by fallback {answer.fallback_index}: {answer.model}\n" if answer.fallback_index else ""
        # Printed before the log closes: the answer is billed, so it is shown even when its events
        # must then be spilled (the log's close reports that as the command's error, after it).
        out.finish(answer, session.prices_note, extra=extra, prefix=prefix)
        if settings.store_content:
            from hive_core.store.content import ContentStore

            ContentStore(settings.data_dir, clock=settings.clock).append(request_id, answer.model, text, answer.result.text)


def read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    """The prompt from PROMPT, stdin (``-``) or ``--file``; a missing, unreadable or empty
    (whitespace only) prompt is a usage error, so nothing is sent."""
    if prompt is not None and prompt_file is not None:
        raise click.UsageError("give the prompt as PROMPT or --file, not both")
    if prompt is None and prompt_file is None:
        raise click.UsageError("no prompt: give PROMPT, - to read it from stdin, or --file FILE")
    text = prompt
    if prompt_file is not None or prompt == "-":
        stdin = prompt_file is None or str(prompt_file) == "-"
        where = "stdin" if stdin else str(prompt_file)
        try:
            data = sys.stdin.buffer.read() if stdin else Path(where).read_bytes()
            text = data.decode("utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {where}: {exc.strerror or exc}", param_hint="'--file'") from None
        except UnicodeDecodeError as exc:
            raise click.UsageError(f"the prompt in {where} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if text is None or not text.strip():
        raise click.UsageError("the prompt is empty: nothing was sent")
    return text


def body_params(temperature: float | None, json_schema: dict[str, Any] | None) -> dict[str, Any]:
    """The request body's extras: ``temperature``, and ``response_format`` from ``--json-schema``'s
    document - a JSON Schema (named after its ``title``, strict), or OpenAI's whole ``json_schema``
    object (``name`` and ``schema``) sent as it is."""
    params: dict[str, Any] = {}
    if temperature is not None:
        params["temperature"] = temperature
    if json_schema is not None:
        if isinstance(json_schema.get("schema"), dict) and isinstance(json_schema.get("name"), str):
            spec = json_schema
        else:  # OpenAI's rule for the name: ^[a-zA-Z0-9_-]{1,64}$
            title = json_schema.get("title")
            name = re.sub(r"[^A-Za-z0-9_-]+", "_", title)[:64] if isinstance(title, str) and title else "answer"
            spec = {"name": name, "strict": True, "schema": json_schema}
        params["response_format"] = {"type": "json_schema", "json_schema": spec}
    return params


class _Answer:
    """What ``hive ask`` prints. The answer's text goes to stdout as it arrives; whatever follows on
    stderr (a fallback notice after a stream failed mid-way, the error that ends the command, the
    summary) starts on its own line: the open line of a partial answer is ended first."""

    def __init__(self, as_json: bool, quiet: bool) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.line_open = False
        self.text: Callable[[str], None] | None = None if as_json else self._text

    def _text(self, text: str) -> None:
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
            self.line_open = not text.endswith("\n")

    def end_line(self) -> None:
        if self.line_open:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.line_open = False

    def fallback(self, failed: str, error: HiveError, next_model: str) -> None:
        self.end_line()
        click.echo(f"{failed} failed ({error.status_name}): trying {next_model}", err=True)

    def asking(self, call: Callable[[], T]) -> T:
        """``call()`` (the ask); if it raises - the last model's error, Ctrl-C, SIGTERM - the partial
        answer's line is ended before the error's line (a cancelled stream is recorded as such; the
        log flushes on the way out; exit 1, 130 or 143)."""
        try:
            return call()
        except BaseException:
            self.end_line()
            raise

    def finish(self, answer: AskResult, note: str, *, extra: dict[str, Any], prefix: str = "") -> None:
        """The JSON document, or the end of the answer's line, the summary and the request id on stderr."""
        if self.as_json:
            echo_json({**answer.as_dict(note), **extra})
            return
        self.end_line()
        if not self.quiet:
            click.echo(prefix + answer.summary(note), err=True)
            click.echo(f"request id: {answer.result.request_id}", err=True)


def _warn_unsupported(session: Session, chain: list[str], params: dict[str, Any]) -> None:
    """A warning per model of the chain whose catalog entry lacks ``response_format``: OpenRouter drops
    what a model does not support, so its answer would silently not follow ``--json-schema``."""
    catalog = session.prices
    if catalog is None or "response_format" not in params:
        return
    for model in chain:
        if model in catalog and "response_format" not in catalog.get(model).supported_parameters:
            click.echo(f"warning: {model} does not support response_format (its catalog entry says): "
                       f"its answer may not follow --json-schema", err=True)


def _select(
    session: Session, request_id: str, prompt: str, primary_model: str | None, max_tokens: int | None,
    selection: dict[str, Any], show: bool,
) -> SelectionResult:
    """The selector's choice for this prompt, recorded under ``request_id``; its warnings on stderr."""
    request = build_request(prompt=prompt, max_tokens=max_tokens, primary_model=primary_model, **selection)
    chosen = session.select(request, request_id=request_id)
    for warning in chosen.warnings:
        click.echo(f"warning: {warning}", err=True)
    if show:
        for line in selection_lines(chosen, selection["strategy"]):
            click.echo(line, err=True)
    return chosen


def _ask_experiment(ctx: click.Context, messages: Messages, name: str, options: AskOptions, out: _Answer) -> None:
    """``hive ask --experiment NAME``: the variant is a hash of the request id (see hive_core.experiments)."""
    from hive_core.experiments import get_experiment
    from hive_core.session import Session

    settings = sending_settings(ctx)
    exp = get_experiment(settings.data_dir, name)
    with open_event_log(settings) as log, Session(settings, log) as session:
        variant, answer = out.asking(lambda: session.ask_in_experiment(exp, messages, options, on_text=out.text))
        out.finish(answer, session.prices_note, extra={"experiment": name, "variant": variant},
                   prefix=f"[{name}: variant {variant}] ")
