"""``hive ask`` as a library: send one prompt along a model chain and say which model answered.

A pipeline with the chain as its input, so model selection, budgets and A/B plug in before it::

    chain = model_chain("openai/gpt-4o-mini", fallbacks=["anthropic/claude-3.5-haiku"])
    answer = ask(client, "Why is the sky blue?", chain, AskOptions(max_tokens=200), on_text=print)
    answer.model, answer.fallback_index, answer.result.cost_usd

The whole chain is one logical request: every model's events share one ``request_id`` (the
event schema's promise) and carry ``fallback_index`` = the model's position in the chain. The next
model is tried when the previous one failed in a way another model may not (:func:`falls_back`),
and - when streaming - only if no text was delivered yet: printed text is never followed by another
model's answer. With a circuit ``breaker``, each model's own failures are recorded in it
(:func:`model_is_unwell`), so a model that keeps failing is skipped by later selections without
waiting for its timeout.

The caller's faults (:class:`~hive_core.errors.CallerFault`) are recorded as events but never
charged to the model, and they end the chain at once: a wrong key or base URL, a network outage,
no credits or a malformed request fail every model alike. An unknown model id ends it too:
OpenRouter answers it with the same 400 as any malformed request (telling them apart would mean
reading the message), and quietly answering a typo with the next, maybe costlier, model would hide
it; the 400 is not billed and the error names the id. The one caller fault that falls back is a
moderation verdict: providers moderate differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hive_core.errors import (
    CallerFault,
    Cancelled,
    CircuitOpen,
    HiveError,
    MidStreamError,
    Moderated,
    OpenRouterError,
    TransientError,
)

if TYPE_CHECKING:
    from hive_core.budget import Budget, Reservation
    from hive_core.openrouter.client import OpenRouterClient
    from hive_core.openrouter.protocol import Messages
    from hive_core.openrouter.results import ChatResult, Progress
    from hive_core.selection.health import CircuitBreaker

__all__ = ["AskOptions", "AskResult", "ask", "falls_back", "model_chain", "model_is_unwell"]


@dataclass(frozen=True)
class AskOptions:
    """How to ask: streamed or not, the output cap, labels recorded on the events, body extras."""

    stream: bool = True
    max_tokens: int | None = None
    request_type: str = "chat"
    task_category: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    #: request_id of the logical request, when the caller must know it before the call (an A/B
    #: assignment or a selection is recorded under it first); a fresh one otherwise
    request_id: str | None = None
    #: send even when a budget limit would refuse (``--over-budget``); recorded as budget_override
    over_budget: bool = False


@dataclass(frozen=True)
class AskResult:
    """The answer, which model of the chain gave it (``result.served_model`` says which model
    OpenRouter actually ran, e.g. behind a router), and what failed before it."""

    result: ChatResult
    model: str
    fallback_index: int
    failures: tuple[tuple[str, HiveError], ...] = ()


def model_chain(model: str, fallbacks: Sequence[str] = (), *, no_fallback: bool = False) -> list[str]:
    """``[model, *fallbacks]`` without duplicates (order kept); just ``[model]`` with ``no_fallback``."""
    return [model] if no_fallback else list(dict.fromkeys([model, *fallbacks]))


def model_is_unwell(error: BaseException) -> bool:
    """Whether a failed call is the model's fault (what the circuit breaker counts): any failure of
    the call that is not a :class:`~hive_core.errors.CallerFault` - not a bad key or base URL, a
    network outage, an unknown model id, a flagged prompt, no credits or a cancel."""
    return isinstance(error, OpenRouterError) and not isinstance(error, CallerFault)


def falls_back(error: BaseException) -> bool:
    """Whether another model may succeed where this one failed: the model's transient failures
    (after their retries), a provider failure before any text, and moderation. Not the caller's
    other faults (every model would fail alike: see the module docstring), nor a cancel."""
    if isinstance(error, Moderated):
        return True
    if isinstance(error, CallerFault):
        return False
    return isinstance(error, TransientError | MidStreamError)


def ask(
    client: OpenRouterClient,
    prompt: Messages,
    chain: Sequence[str],
    options: AskOptions = AskOptions(),
    *,
    on_text: Callable[[str], object] | None = None,
    on_progress: Callable[[Progress], object] | None = None,
    on_fallback: Callable[[str, HiveError, str], object] | None = None,
    budget: Budget | None = None,
    breaker: CircuitBreaker | None = None,
) -> AskResult:
    """Ask the models of ``chain`` in order until one answers; raises the last error if none does.

    ``on_text`` receives streamed text live (the whole answer once, when not streaming);
    ``on_fallback(failed_model, error, next_model)`` is told before each fallback. A Ctrl-C (or any
    exception raised by a callback) cancels the running stream, which records it as cancelled.
    With a ``budget``, each model's request first reserves its maximum cost (``BudgetExceeded``
    when it does not fit) and is settled to its billed cost, or released when it fails unbilled
    (a billed failure or cancel is settled by its usage event through ``budget.settling_sink``).
    """
    if not chain:
        raise ValueError("the model chain is empty")
    from hive_core.ids import new_request_id

    failures: list[tuple[str, HiveError]] = []
    shared_id = options.request_id or new_request_id()
    for index, model in enumerate(chain):
        last = index == len(chain) - 1
        if breaker is not None and not last and not breaker.allow(model):
            # Down recently: skip it at once rather than wait for its timeout (the last model of
            # the chain is always tried - better a likely failure than none at all).
            skipped = CircuitOpen(model)
            failures.append((model, skipped))
            if on_fallback is not None:
                on_fallback(model, skipped, chain[index + 1])
            continue
        delivered = 0
        request_id = shared_id
        reservation: Reservation | None = None
        max_tokens = options.max_tokens
        if budget is not None:
            reservation = budget.reserve(model, prompt, max_tokens=options.max_tokens, request_id=request_id,
                                         over_budget=options.over_budget)
            request_id = reservation.request_id
            if max_tokens is None and reservation.completion_tokens is not None:
                max_tokens = reservation.completion_tokens  # the cap the reservation was sized for
        try:
            if options.stream:
                handle = client.stream(
                    prompt, model=model, max_tokens=max_tokens, on_progress=on_progress,
                    request_type=options.request_type, task_category=options.task_category,
                    fallback_index=index, request_id=request_id,
                    **options.params,
                )
                try:
                    for piece in handle:
                        if on_text is not None:
                            on_text(piece)
                except BaseException:
                    delivered = handle.delivered
                    handle.cancel()  # a no-op when the stream already ended; else records "cancelled"
                    raise
                result = handle.collect()
                if result.outcome == "cancelled":
                    raise Cancelled("the stream was cancelled")
            else:
                result = client.chat(
                    prompt, model=model, max_tokens=max_tokens,
                    request_type=options.request_type, task_category=options.task_category,
                    fallback_index=index, request_id=request_id,
                    **options.params,
                )
                if on_text is not None:
                    on_text(result.text)
        except OpenRouterError as error:
            if reservation is not None:
                reservation.release()  # a no-op when its usage event already settled it
            if breaker is not None:
                if model_is_unwell(error):
                    breaker.record_failure(model)
                else:
                    breaker.release(model)  # no verdict on the model: a probe it held is given back
            if last or delivered or not falls_back(error):
                raise
            failures.append((model, error))
            if on_fallback is not None:
                on_fallback(model, error, chain[index + 1])
            continue
        except BaseException:
            if reservation is not None:
                reservation.release()  # a no-op when the stream's usage event settled it
            if breaker is not None:
                breaker.release(model)
            raise
        if reservation is not None:
            reservation.settle(result.cost_usd, model=result.served_model or model)
        if breaker is not None:
            breaker.record_success(model)
        return AskResult(result, model, index, tuple(failures))
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
