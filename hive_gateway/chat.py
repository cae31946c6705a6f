"""``POST /v1/chat/completions``: one request, walked along its model chain, relayed and recorded.

The decisions are ``hive_core``'s, as for ``hive ask``: :class:`~hive_core.ask.ChainRun` reserves each
model's maximum cost (``BudgetExceeded`` before anything is sent), skips a model whose circuit is
open, settles or releases, tells the breaker and says whether the next model is tried;
:class:`~hive_core.openrouter.core.ClientCore` and :class:`~hive_core.openrouter.stream.StreamRun`
turn answers into results and record ``api_call`` / ``usage`` / ``stream_outcome`` under the
request's labels. This module only moves bytes and chooses what the client is told:

* not streamed: OpenRouter's answer body, byte for byte (its ``model`` says which model answered;
  a 200 whose choice failed part-way is passed on as OpenRouter sent it), written before its
  events reach the ledger and the log (:class:`HeldEvents`), which they do together with the other
  answers of the same turn of the event loop (:class:`~hive_gateway.settle.Settler`: one ledger
  transaction for all their settlements);
* streamed: :class:`~hive_gateway.relay.StreamRelay`; a model whose stream never reached its first
  token may be replaced by the next one in the same response. A stream's events are held too
  (failed attempts' included) and, once the client has its last byte, settled and recorded with
  the answers of that turn; a stream that fails or is cancelled passes them on at once;
* the budget ledger failing as a request settles is the operator's line on stderr
  (:class:`~hive_gateway.trouble.Trouble`): the request's events are recorded all the same, its
  reservation holds its maximum until it goes stale (never released as if unbilled), the breaker
  and the chain still decide, and the client hears of its own request only;
* every ledger write - a model's reservation, a failure's settlement or release, the settler's
  batch - goes through the worker's :class:`~hive_gateway.lane.Lane`: at once on the loop while
  the ledger is free, in a thread while another process holds it, so a lock held elsewhere stalls
  only the requests that need it, never the loop;
* a failure before any byte is an OpenAI-shaped error with its status (:mod:`hive_gateway.errors`);
  after, an SSE error event. Every response carries ``X-Hive-Request-Id``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web

from hive_core.ask import AskOptions, ChainRun
from hive_core.budget import settling_usage
from hive_core.errors import Cancelled, MidStreamError
from hive_core.ids import new_request_id
from hive_core.openrouter.protocol import chat_body
from hive_core.openrouter.stream import Callbacks, StreamRun
from hive_core.openrouter.tracking import Tracker
from hive_gateway.errors import ModelNotAllowed, Problem, describe, error_body, sse_error
from hive_gateway.inbound import ChatRequest, parse_chat_request
from hive_gateway.observe import Billed
from hive_gateway.relay import Downstream, StreamRelay
from hive_gateway.routing import ALIASES, selection_request
from hive_gateway.sending import SEND_TIMEOUT, Sending
from hive_gateway.settle import Settler, record_all
from hive_gateway.state import Gateway

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hive_core.ask import Step
    from hive_core.keys import VirtualKey
    from hive_core.openrouter.results import ChatResult
    from hive_core.store.events import Event, EventSink, Usage
    from hive_gateway.upstream import Answer

__all__ = ["DRAINING", "DRAIN_DEADLINE", "GATEWAY", "LAST_WORDS_S", "REQUEST_ID_HEADER", "SETTLER", "SHUTTING_DOWN", "TALLY",
           "HeldEvents", "Tally", "chat_completions", "json_response", "settle_later"]

#: the header that carries Hive's request id on every answer
REQUEST_ID_HEADER = "X-Hive-Request-Id"
#: the error class of a request the drain's deadline cut (the access log's ``error=``)
DRAIN_DEADLINE = "DrainDeadline"
#: what a client whose request the drain's deadline cut is told: a 503 that SDKs retry (another
#: worker or instance answers it), or, once its stream started, OpenRouter's mid-stream error event
SHUTTING_DOWN = Problem(503, "server_error", "gateway_shutting_down",
                        "the gateway is shutting down and its drain deadline passed: retry the request",
                        {"Retry-After": "1"})
#: how long a stream the drain's deadline cut may take to tell its client so; a client that stopped
#: reading is left there (the worker's exit is not held up by it)
LAST_WORDS_S = 1.0
#: what a request that starts while the worker drains is told, at once
DRAINING = Problem(503, "server_error", "gateway_shutting_down", "the gateway is shutting down: retry the request",
                   {"Retry-After": "1"})


@dataclass
class Tally:
    """What a request's handler learned, for its :class:`~hive_gateway.observe.RequestSummary`.

    Its tokens and cost are its ``usage`` events' (:meth:`bill`), as they reach the log, whatever
    way the request ends: what operations report is what the events and the ledger hold."""

    request_id: str | None = None
    key_id: str | None = None
    app: str | None = None
    user: str | None = None
    #: the model last tried; once it billed, the model the bill names (the one that served it)
    model: str | None = None
    stream: bool = False
    ttft_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    error_class: str | None = None
    chunks: int = 0
    #: the drain's deadline passed and cancelled the request (:func:`hive_gateway.server.drain`)
    drained: bool = False
    #: a non-streamed answer is being written: too late for another one
    replying: bool = False
    #: the bill by model, once a model other than the one billed is tried (rare: a fallback after
    #: a billed failure); until then the tokens and cost are all ``model``'s
    billed: list[Billed] | None = None
    #: the model the tokens and cost so far were billed to (None: nothing billed yet)
    billed_model: str | None = None

    def trying(self, model: str) -> None:
        """The chain sends to ``model`` next (the access log names it until one bills)."""
        if self.billed_model is None:
            self.model = model
        elif self.billed is None and model != self.billed_model:
            self._split()  # what comes next is another model's

    def bill(self, usage: Usage) -> None:
        """Count one of the request's ``usage`` events."""
        # (each field read once: a pydantic model's attribute costs three times a plain object's)
        model, prompt, completion, cost = usage.model, usage.prompt_tokens, usage.completion_tokens, usage.cost_usd
        if self.billed_model is not None and (self.billed is not None or model != self.billed_model):
            billed = self.billed if self.billed is not None else self._split()
            billed.append(Billed(model, prompt, completion, cost))
        self.model = self.billed_model = model
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        if cost is not None:
            self.cost_usd = cost if self.cost_usd is None else self.cost_usd + cost

    def bill_all(self, events: Sequence[Event]) -> None:
        """Count the ``usage`` events among ``events`` (a failed attempt's: billed, or not)."""
        for event in events:
            usage = settling_usage(event)
            if usage is not None:
                self.bill(usage)

    def _split(self) -> list[Billed]:
        """From now on, a bill by model (:attr:`billed`), whose first part is what was billed so far."""
        assert self.billed_model is not None
        self.billed = [Billed(self.billed_model, self.prompt_tokens, self.completion_tokens, self.cost_usd)]
        return self.billed

    def result(self, result: ChatResult) -> None:
        """Count an answer's (or a stream's end's) time to first token (what it cost: :meth:`bill`)."""
        if result.ttft_ms is not None and self.ttft_s is None:
            self.ttft_s = result.ttft_ms / 1000.0


#: where the application keeps its :class:`~hive_gateway.state.Gateway` and its
#: :class:`~hive_gateway.settle.Settler`, and a request its tally
GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")
SETTLER: web.AppKey[Settler] = web.AppKey("settler")
TALLY: web.RequestKey[Tally] = web.RequestKey("tally")


def json_response(status: int, body: bytes, headers: dict[str, str]) -> web.Response:
    """A JSON answer with the request's headers."""
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """The route's handler: parse, authenticate, route, then ask along the chain."""
    gateway = request.app[GATEWAY]
    tally = request[TALLY]
    tally.request_id = request_id = new_request_id()
    headers = {REQUEST_ID_HEADER: request_id}
    out: Downstream | None = None
    try:
        key = await gateway.authenticate(request.headers)
        if key is not None:
            tally.key_id = key.key_id
        chat = parse_chat_request(await request.read(), request.headers, key, gateway.settings.app)
        tally.stream, tally.app, tally.user = chat.stream, chat.labels.app, chat.labels.user
        gateway.observer.started(stream=chat.stream)
        chain, task = route(gateway, chat, key, request_id)
        session = gateway.session
        run = ChainRun(chat.messages, chain, AskOptions(
            stream=chat.stream, max_tokens=chat.max_tokens, task_category=task, params=chat.params,
            request_id=request_id, labels=chat.labels, key=key.key_id if key is not None else None),
            budget=session.budget, breaker=session.breaker)
        if chat.stream:
            out = Downstream(request, headers, gateway.sends)
            return await _stream(request, gateway, chat, run, out, tally)
        return await _whole(gateway, request, chat, run, headers, tally)
    except asyncio.CancelledError:
        if out is not None and out.stalled:  # cut off (hive_gateway.sending): aiohttp saw the connection go
            if out.response is None:
                raise
            _uncancel()  # it ends as the access log says: the 200 its client got, and why it ended
            return out.response
        if not tally.drained or tally.replying:
            raise  # the client went away (nobody to tell), or it is getting its answer
        _uncancel()  # answered instead: the drain's cancellation ends here (recorded as cancelled)
        return await _failure(out, headers, tally, SHUTTING_DOWN)
    except Exception as error:
        tally.error_class = type(error).__name__
        problem = describe(error, gateway.secret)
        if problem.code == "internal_error":  # not Hive's nor OpenRouter's: a bug, whose line the client is sent to
            gateway.trouble(error, request_id)
        return await _failure(out, headers, tally, problem)
    finally:
        if out is not None:
            gateway.sends.sending.discard(out)
            if out.stalled:  # however the cut reached the handler, that is why the request ended
                tally.error_class = SEND_TIMEOUT


def _uncancel() -> None:
    current = asyncio.current_task()
    if current is not None:
        current.uncancel()


async def _failure(out: Downstream | None, headers: dict[str, str], tally: Tally, problem: Problem) -> web.StreamResponse:
    """``problem`` told to the client: an error answer with its status before any byte; once the
    stream started, its last event (OpenRouter's own, when it sent one), then ``[DONE]``. A client
    that was cut off for not reading hears nothing more."""
    if out is not None and out.stalled and out.response is not None:
        return out.response
    if out is None or out.response is None:
        return json_response(problem.status, error_body(problem), {**headers, **problem.headers})
    try:
        # a client that stopped reading (its socket full) is not waited for past the drain's deadline
        async with asyncio.timeout(LAST_WORDS_S if tally.drained else None):
            if not out.done_sent:
                await out.send(b"data: [DONE]\n\n" if out.upstream_error
                               else sse_error(problem, model=tally.model, generation_id=None))
            await out.response.write_eof()
    except (Cancelled, ConnectionError, TimeoutError):
        tally.error_class = tally.error_class if tally.drained else "ClientDisconnected"
    except asyncio.CancelledError:
        if out.stalled:  # cut off while told why (hive_gateway.sending): aiohttp saw the connection go
            _uncancel()
            return out.response
        current = asyncio.current_task()
        if not tally.drained or current is None or current.cancelling():
            raise  # cancelled again (aiohttp's own shutdown): it ends here
        # aiohttp's wait for that full socket, which the drain's cancellation cut, ends the write
        # at once: this client hears no more, and the request ends as the deadline left it
    return out.response


def route(gateway: Gateway, chat: ChatRequest, key: VirtualKey | None, request_id: str) -> tuple[list[str], str | None]:
    """The chain of models to ask and the task category: the selector's (recorded) or the request's."""
    session = gateway.session
    strategy = ALIASES.get(chat.model)
    if strategy is not None:
        allowed = key.models if key is not None else ()
        chosen = session.select(selection_request(strategy, chat.messages, chat.params, chat.max_tokens,
                                                  chat.task, allowed),
                                request_id=request_id, labels=chat.labels)
        if not chat.fallbacks:
            return list(chosen.chain), chat.task or chosen.task_category
        # the request's own fallbacks come after the selector's: its last resort, as it asked
        asked = session.resolve(chat.fallbacks)
        _check_allowed(key, asked)
        return list(dict.fromkeys([*chosen.chain, *asked])), chat.task or chosen.task_category
    chain = list(dict.fromkeys(session.resolve([chat.model, *chat.fallbacks])))
    _check_allowed(key, chain)
    if not chat.fallbacks:  # the operator's for this model (`hive fallbacks`), those the key may use
        named = session.fallbacks_for(chain[0])
        chain += [m for m in named if m not in chain and (key is None or key.allows_model(m))]
    return chain, chat.task


def _check_allowed(key: VirtualKey | None, chain: Sequence[str]) -> None:
    if key is None:
        return
    for model in chain:
        if not key.allows_model(model):
            raise ModelNotAllowed(f"key {key.key_id} may not use {model}: it may use {', '.join(key.models)}")


def _body(chat: ChatRequest, model: str, max_tokens: int | None) -> bytes:
    return chat_body(chat.messages, model=model, max_tokens=max_tokens, stream=chat.stream, params=chat.params,
                     plain=chat.plain)


class HeldEvents:
    """An event sink that holds one model's events until they are taken (:meth:`take`) and handed,
    in order, to the Session's recorder (settling the reservation from the usage event, then the log).

    An answer is decided (parsed, its attempt and usage recorded) before the client gets it, but
    the ledger's settlement and the log's buffering need not delay its bytes: the gateway writes the
    answer first, then passes its events on (:class:`~hive_gateway.settle.Settler`). The reservation
    holds meanwhile, so a budget never overshoots; a failure passes them on at once, before the
    reservation is released (:func:`_failed`).
    """

    __slots__ = ("events", "sink")

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        """Hold ``event``."""
        self.events.append(event)

    def take(self) -> list[Event]:
        """The held events, no longer held (each is passed on once)."""
        events, self.events = self.events, []
        return events


async def _failed(gateway: Gateway, run: ChainRun, step: Step, held: HeldEvents, error: BaseException,
                  tally: Tally) -> bool:
    """The attempt at ``step`` raised ``error``: its events recorded (and counted in ``tally``: a
    failure may be billed), what it held released, the breaker told, and whether the next model is
    tried. A ledger failure meanwhile is the operator's line; the client hears of ``error``, its
    request's own failure. A billed attempt whose settlement failed is not released as if
    unbilled: its reservation holds its maximum until it goes stale
    (:meth:`~hive_core.budget.Reservation.abandon`). Through the lane: done at once while the
    ledger is free, else by a thread that finishes it even if this request is cancelled meanwhile."""
    events = held.take()
    tally.bill_all(events)
    return await gateway.lane.run(gateway.ledger, _settle_failure, gateway, run, step, held.sink, events, error)


def _settle_failure(gateway: Gateway, run: ChainRun, step: Step, sink: EventSink, events: list[Event],
                    error: BaseException) -> bool:
    try:
        record_all(sink, events)
    except Exception as problem:
        gateway.trouble(problem, step.request_id)
        if step.reservation is not None and any(event.type == "usage" for event in events):
            step = _abandoned(step)
    try:
        return run.falls_back(step, error)
    except Exception as problem:  # its release failed (the ledger is down): the breaker and the chain still decide
        gateway.trouble(problem, step.request_id)
        return run.falls_back(_abandoned(step), error)


def _abandoned(step: Step) -> Step:
    """``step`` without its reservation, which the ledger keeps as it is."""
    if step.reservation is not None:
        step.reservation.abandon()
    return replace(step, reservation=None)


async def _whole(gateway: Gateway, request: web.Request, chat: ChatRequest, run: ChainRun,
                 headers: dict[str, str], tally: Tally) -> web.StreamResponse:
    upstream = gateway.upstream
    assert upstream is not None
    shared = gateway.core.tracker
    kept: list[Answer] = []
    steps = iter(run)
    while (step := await gateway.lane.run(gateway.ledger, next, steps, None, undo=_give_back(run))) is not None:
        tally.trying(step.model)
        held = HeldEvents(shared.sink)
        tracker = Tracker(held, shared.prices, shared.app, shared.user, shared.tags)
        record = tracker.request(step.model, request_type="chat", task_category=run.options.task_category,
                                 fallback_index=step.index, request_id=step.request_id,
                                 max_tokens=step.max_tokens, labels=chat.labels)
        try:
            result = await upstream.chat(record, _body(chat, step.model, step.max_tokens), kept)
        except BaseException as error:
            if await _failed(gateway, run, step, held, error, tally):
                continue
            if isinstance(error, MidStreamError) and kept and kept[0].status == 200:
                tally.error_class = type(error).__name__
                return json_response(200, kept[0].body, headers)  # the partial answer, as OpenRouter sent it
            raise
        response = json_response(200, kept[0].body, headers)
        tally.replying = True
        sending = Sending(request)  # a client that reads nothing is cut off (hive_gateway.sending)
        gateway.sends.sending.add(sending)
        sending.since = time.monotonic()
        try:
            await response.prepare(request)  # the answer first: aiohttp sends nothing twice
            await response.write_eof()
        except ConnectionError:
            tally.error_class = "ClientDisconnected"
        except asyncio.CancelledError:
            if not sending.stalled:
                raise
            _uncancel()  # aiohttp saw the connection go: the answer was billed, the access log says 200
        finally:
            if sending.stalled:  # also where aiohttp let the wait end quietly (no handler cancellation)
                tally.error_class = SEND_TIMEOUT
            gateway.sends.sending.discard(sending)
            usage = settle_later(request.app[SETTLER], held, run, step, result)
            if usage is not None:
                tally.bill(usage)
        return response
    raise AssertionError("unreachable: the chain returns or raises")  # pragma: no cover


async def _stream(request: web.Request, gateway: Gateway, chat: ChatRequest, run: ChainRun, out: Downstream,
                  tally: Tally) -> web.StreamResponse:
    upstream = gateway.upstream
    assert upstream is not None
    core = gateway.core
    shared = core.tracker
    tools = chat.params.get("tools")
    steps = iter(run)
    while (step := await gateway.lane.run(gateway.ledger, next, steps, None, undo=_give_back(run))) is not None:
        tally.trying(step.model)
        held = HeldEvents(shared.sink)
        tracker = Tracker(held, shared.prices, shared.app, shared.user, shared.tags)
        record = tracker.request(step.model, request_type="chat", task_category=run.options.task_category,
                                 fallback_index=step.index, streamed=True, request_id=step.request_id,
                                 max_tokens=step.max_tokens, labels=chat.labels)
        stream = StreamRun(core, record, Callbacks(), chat.messages, tools if isinstance(tools, list) else None,
                           relayed=True)
        relay = StreamRelay(upstream, stream, _body(chat, step.model, step.max_tokens), out)
        try:
            result = await relay.relay()
        except BaseException as error:
            _count(tally, stream)
            if await _failed(gateway, run, step, held, error, tally) and not relay.opened:
                continue
            raise
        # ended for the client: its events settle and are recorded with the other answers of this turn
        usage = settle_later(request.app[SETTLER], held, run, step, result)
        if usage is not None:
            tally.bill(usage)
        _count(tally, stream)
        assert out.response is not None  # ended by the relay (an empty stream with its [DONE])
        return out.response
    raise AssertionError("unreachable: the chain returns or raises")  # pragma: no cover


def _give_back(run: ChainRun) -> Callable[[Step | None], object]:
    """What gives back a step reserved for a request that was cancelled before it could use it (its
    reservation, a half-open probe: :meth:`~hive_core.ask.ChainRun.falls_back` with no verdict)."""
    return lambda step: step is not None and run.falls_back(step, asyncio.CancelledError())


def settle_later(settler: Settler, held: HeldEvents, run: ChainRun, step: Step, result: ChatResult) -> Usage | None:
    """The answered step's events, recorded with the other answers of this turn, then the chain's
    bookkeeping; should the ledger refuse the settlement from its usage event, the retry settles
    that same event (its id and UTC day), not the moment it runs. Returns that usage event (what
    the request is billed for it), if any."""
    events = held.take()
    usage = next((usage for event in events if (usage := settling_usage(event)) is not None), None)
    settler.add(events, partial(run.answered, step, result, usage=usage))
    return usage


def _count(tally: Tally, stream: StreamRun) -> None:
    tally.chunks += stream.reader.chunks
    if stream.result is not None:
        tally.result(stream.result)
