"""``hive ask`` as a library: send one prompt along a model chain and say which model answered.

A pipeline with the chain as its input, so model selection, budgets and A/B plug in before it::

    chain = model_chain("openai/gpt-4o-mini", fallbacks=["anthropic/claude-3.5-haiku"])
    answer = ask(client, "Why is the sky blue?", chain, AskOptions(max_tokens=200), on_text=print)
    answer.model, answer.fallback_index, answer.result.cost_usd

Most callers go through :class:`hive_core.session.Session`, which hands ``ask`` its client, budget and
breaker; these functions take them explicitly.

The whole chain is one logical request: every model's events share one ``request_id`` (the
event schema's promise) and carry ``fallback_index`` = the model's position in the chain. The next
model is tried when the previous one failed in a way another model may not (:func:`falls_back`),
streamed or not alike: a stream that fails after some text (a provider error mid-way) falls back
as the same answer unstreamed would. Each attempt stays recorded (the failed one with its billed
partial usage); ``on_text`` then receives the next model's answer after the partial one, and
``on_fallback`` is told in between, so a caller that shows text knows to end or drop the partial
answer (``hive ask`` ends its line, then says which model comes next). The same model is never
re-sent a stream that already yielded text (the client's retries); another model is asked anew.
With a circuit ``breaker``, each model's own failures are recorded in it
(:func:`model_is_unwell`), so a model that keeps failing is skipped by later selections without
waiting for its timeout.

The caller's faults (:class:`~hive_core.errors.CallerFault`) are recorded as events but never
charged to the model, and they end the chain at once: a wrong key or base URL, a network outage,
no credits or a malformed request fail every model alike. An unknown model id ends it too:
OpenRouter answers it with the same 400 as any malformed request (telling them apart would mean
reading the message), and quietly answering a typo with the next, maybe costlier, model would hide
it; the 400 is not billed and the error names the id. The one caller fault that falls back is a
moderation verdict: providers moderate differently.

Sync and async are written once: :class:`ChainRun` makes every decision (which model next, its
reservation, what a failure means for the budget, the breaker and the chain) without I/O, and
:func:`ask` / :func:`aask` are thin shells that only send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hive_core.errors import (
    BudgetExceeded,
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
    from hive_core.openrouter.aio import AsyncOpenRouterClient
    from hive_core.openrouter.client import OpenRouterClient
    from hive_core.openrouter.protocol import Messages
    from hive_core.openrouter.results import ChatResult, Progress
    from hive_core.openrouter.tracking import Labels
    from hive_core.selection.health import CircuitBreaker
    from hive_core.store.events import Usage

__all__ = ["AskOptions", "AskResult", "ChainRun", "aask", "ask", "falls_back", "model_chain", "model_is_unwell"]

OnText = Callable[[str], object]
OnProgress = Callable[["Progress"], object]
OnFallback = Callable[[str, HiveError, str], object]


@dataclass(frozen=True)
class AskOptions:
    """How to ask: streamed or not, the output cap, labels recorded on the events, body extras, and
    whose request it is (``labels``, ``key``: a gateway serves many apps through one Session)."""

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
    #: the request's own app, user and tags (None: the client's); ``labels.app`` is also the budget's
    #: app scope
    labels: Labels | None = None
    #: the virtual key's id: its budget scope is reserved against too (None: no key)
    key: str | None = None


@dataclass(frozen=True)
class AskResult:
    """The answer, which model of the chain gave it (``result.served_model`` says which model
    OpenRouter actually ran, e.g. behind a router), and what failed before it."""

    result: ChatResult
    model: str
    fallback_index: int
    failures: tuple[tuple[str, HiveError], ...] = ()

    def summary(self, cost_note: str = "") -> str:
        """``model · tokens in/out · cost · latency · TTFT`` in one line (``cost_note``: why a cost
        is unknown, e.g. no catalog)."""
        result = self.result
        via = f" via {result.provider}" if result.provider else ""
        if result.cost_usd is None:
            cost = f"cost unknown ({cost_note})" if cost_note else "cost unknown"
        else:
            cost = f"${result.cost_usd:.6f} {result.cost_source}"
        parts = [
            f"{result.served_model or result.model}{via}",
            f"{result.usage.prompt_tokens} in / {result.usage.completion_tokens} out tokens",
            cost,
            f"{result.latency_ms:.0f} ms",
        ]
        if result.ttft_ms is not None:
            parts.append(f"TTFT {result.ttft_ms:.0f} ms")
        if result.outcome != "completed":
            parts.append(result.outcome)
        return " · ".join(parts)

    def as_dict(self, cost_note: str = "") -> dict[str, Any]:
        """The answer as one JSON-ready document (``--json``): no secrets, the text included."""
        result = self.result
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
            "cost_note": cost_note if result.cost_usd is None else "",
            "latency_ms": round(result.latency_ms, 3),
            "ttft_ms": None if result.ttft_ms is None else round(result.ttft_ms, 3),
            "tokens_per_s": result.tokens_per_s,
            "generation_id": result.generation_id,
            "request_id": result.request_id,
            "fallback_index": self.fallback_index,
            "attempts": result.attempts,
            "outcome": result.outcome,
        }


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
    (after their retries), a provider failure (before or after some text), and moderation. Not the caller's
    other faults (every model would fail alike: see the module docstring), nor a cancel."""
    if isinstance(error, Moderated):
        return True
    if isinstance(error, CallerFault):
        return False
    return isinstance(error, TransientError | MidStreamError)


@dataclass(frozen=True)
class Step:
    """One model of the chain being asked: what to send it, and what it holds."""

    index: int
    model: str
    last: bool
    request_id: str
    max_tokens: int | None
    reservation: Reservation | None


class ChainRun:
    """The decisions of one ask over a chain, without I/O. Iterate it for the models to send to;
    tell it how each attempt ended (:meth:`falls_back` or :meth:`answered`).

    With a ``budget``, each model's request first reserves its maximum cost (``BudgetExceeded``
    when it does not fit, raised by the iteration) and is settled to its billed cost, or released
    when it fails unbilled (a billed failure or cancel is settled by its usage event through
    ``budget.settling_sink``). With a ``breaker``, a model whose circuit is open is skipped (never
    the last one) and every model's verdict is recorded.
    """

    def __init__(self, prompt: Messages, chain: Sequence[str], options: AskOptions, *,
                 budget: Budget | None = None, breaker: CircuitBreaker | None = None,
                 on_fallback: OnFallback | None = None) -> None:
        if not chain:
            raise ValueError("the model chain is empty")
        from hive_core.ids import new_request_id

        self.prompt = prompt
        self.chain = list(chain)
        self.options = options
        self.budget = budget
        self.breaker = breaker
        self.on_fallback = on_fallback
        self.request_id = options.request_id or new_request_id()
        self.failures: list[tuple[str, HiveError]] = []

    def __iter__(self) -> Iterator[Step]:
        for index, model in enumerate(self.chain):
            last = index == len(self.chain) - 1
            if self.breaker is not None and not last and not self.breaker.allow(model):
                # Down recently: skip it at once rather than wait for its timeout (the last model of
                # the chain is always tried - better a likely failure than none at all).
                self._next_model(index, CircuitOpen(model))
                continue
            try:
                step = self._reserve(index, model, last)
            except BudgetExceeded as refused:
                if last or not refused.model_only:
                    raise
                self._next_model(index, refused)  # this model's own limit: the next model may fit
                continue
            yield step

    def _reserve(self, index: int, model: str, last: bool) -> Step:
        options = self.options
        if self.budget is None:
            return Step(index, model, last, self.request_id, options.max_tokens, None)
        labels = options.labels
        # the key's scope only when there is a key: the keyword is the keys package's addition to reserve()
        scoped: dict[str, Any] = {} if options.key is None else {"key": options.key}
        reservation = self.budget.reserve(model, self.prompt, max_tokens=options.max_tokens,
                                          request_id=self.request_id, over_budget=options.over_budget,
                                          tools=options.params.get("tools"),
                                          app=labels.app if labels is not None else None, **scoped)
        max_tokens = options.max_tokens
        if max_tokens is None and reservation.completion_tokens is not None:
            max_tokens = reservation.completion_tokens  # the cap the reservation was sized for
        return Step(index, model, last, reservation.request_id, max_tokens, reservation)

    def _next_model(self, index: int, error: HiveError) -> None:
        model = self.chain[index]
        self.failures.append((model, error))
        if self.on_fallback is not None:
            self.on_fallback(model, error, self.chain[index + 1])

    def send_arguments(self, step: Step) -> dict[str, Any]:
        """The keyword arguments of the client's ``chat``/``stream`` for this step."""
        options = self.options
        return {"model": step.model, "max_tokens": step.max_tokens, "request_type": options.request_type,
                "task_category": options.task_category, "fallback_index": step.index,
                "request_id": step.request_id, **options.params}

    def falls_back(self, step: Step, error: BaseException) -> bool:
        """The attempt raised ``error``: release what it held, tell the breaker, and say whether the
        next model is tried (``False``: the caller re-raises ``error``)."""
        if step.reservation is not None:
            step.reservation.release()  # a no-op when its usage event already settled it
        if not isinstance(error, OpenRouterError):  # a Ctrl-C, a failing callback: no verdict
            if self.breaker is not None:
                self.breaker.release(step.model)
            return False
        if self.breaker is not None:
            if model_is_unwell(error):
                self.breaker.record_failure(step.model)
            else:
                self.breaker.release(step.model)  # no verdict on the model: a probe it held is given back
        if step.last or not falls_back(error):
            return False
        self._next_model(step.index, error)
        return True

    def answered(self, step: Step, result: ChatResult, *, usage: Usage | None = None) -> AskResult:
        """The attempt answered: settle its reservation, tell the breaker, hand back the answer.

        ``usage``: the answer's usage event, when its settlement from that event (the settling
        sink's) may have failed - this one is then the same settlement: its cost, billed model,
        event id and UTC day, never the day it is retried on (near midnight, the next one)."""
        reservation = step.reservation
        try:
            if reservation is not None and usage is not None:
                reservation.settle(usage.cost_usd, model=usage.model, event_id=usage.event_id, spent_at=usage.ts)
            elif reservation is not None:
                reservation.settle(result.cost_usd, model=result.served_model or step.model)
        except Exception:
            if reservation is not None:
                reservation.abandon()  # the ledger failed: it holds the maximum there until stale
            raise
        finally:
            if self.breaker is not None:
                self.breaker.record_success(step.model)  # the model answered, whatever the ledger did
        return AskResult(result, step.model, step.index, tuple(self.failures))


def _completed(result: ChatResult) -> ChatResult:
    if result.outcome == "cancelled":
        raise Cancelled("the stream was cancelled")
    return result


# (its keyword-only callbacks and parts: `duplicates` pairs such signatures by shape; nothing is repeated)
def ask(
    client: OpenRouterClient,
    prompt: Messages,
    chain: Sequence[str],
    options: AskOptions = AskOptions(),
    *,
    on_text: OnText | None = None,
    on_progress: OnProgress | None = None,
    on_fallback: OnFallback | None = None,
    budget: Budget | None = None,
    breaker: CircuitBreaker | None = None,
) -> AskResult:
    """Ask the models of ``chain`` in order until one answers; raises the last error if none does.

    ``on_text`` receives streamed text live (the whole answer once, when not streaming);
    ``on_fallback(failed_model, error, next_model)`` is told before each fallback. A Ctrl-C (or any
    exception raised by a callback) cancels the running stream, which records it as cancelled.
    ``budget`` and ``breaker``: see :class:`ChainRun`.
    """
    run = ChainRun(prompt, chain, options, budget=budget, breaker=breaker, on_fallback=on_fallback)
    for step in run:
        try:
            result = _send(client, run, step, on_text, on_progress)
        except BaseException as error:
            if run.falls_back(step, error):
                continue
            raise
        return run.answered(step, result)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _send(client: OpenRouterClient, run: ChainRun, step: Step, on_text: OnText | None,
          on_progress: OnProgress | None) -> ChatResult:
    arguments = run.send_arguments(step)
    if not run.options.stream:
        result = client.chat(run.prompt, **arguments)
        if on_text is not None:
            on_text(result.text)
        return result
    handle = client.stream(run.prompt, on_progress=on_progress, **arguments)
    try:
        for piece in handle:
            if on_text is not None:
                on_text(piece)
    except BaseException:
        handle.cancel()  # a no-op when the stream already ended; else records "cancelled"
        raise
    return _completed(handle.collect())


# duplicates: aask and _asend repeat ask and _send line for line, on purpose - the async twin, where only
# the awaits differ (sync and async clients are two libraries' types); every decision is ChainRun's.
async def aask(
    client: AsyncOpenRouterClient,
    prompt: Messages,
    chain: Sequence[str],
    options: AskOptions = AskOptions(),
    *,
    on_text: OnText | None = None,
    on_progress: OnProgress | None = None,
    on_fallback: OnFallback | None = None,
    budget: Budget | None = None,
    breaker: CircuitBreaker | None = None,
) -> AskResult:
    """:func:`ask` over the async client; cancelling the task cancels the running stream (recorded)."""
    run = ChainRun(prompt, chain, options, budget=budget, breaker=breaker, on_fallback=on_fallback)
    for step in run:
        try:
            result = await _asend(client, run, step, on_text, on_progress)
        except BaseException as error:
            if run.falls_back(step, error):
                continue
            raise
        return run.answered(step, result)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


async def _asend(client: AsyncOpenRouterClient, run: ChainRun, step: Step, on_text: OnText | None,
                 on_progress: OnProgress | None) -> ChatResult:
    arguments = run.send_arguments(step)
    if not run.options.stream:
        result = await client.chat(run.prompt, **arguments)
        if on_text is not None:
            on_text(result.text)
        return result
    handle = client.stream(run.prompt, on_progress=on_progress, **arguments)
    try:
        async for piece in handle:
            if on_text is not None:
                on_text(piece)
    except BaseException:
        if handle.result is None:  # still open (a failing callback): close it, recorded as cancelled
            await handle.aclose()
        raise
    return _completed(await handle.collect())
