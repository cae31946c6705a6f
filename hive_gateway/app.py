"""The gateway's aiohttp application: its routes, and one summary per request for operations.

    POST /v1/chat/completions   streamed or not (:mod:`hive_gateway.chat`)
    GET  /v1/models             the synced catalog and the ``hive/auto`` aliases
    GET  /v1/models/{id}        one of them (the openai SDK's ``models.retrieve``); ids hold ``/``
    GET  /healthz               ``ok`` while the worker serves

aiohttp's server: the measured floor of issue 14 (an aiohttp passthrough adds 0.5-0.9 ms at P50;
starlette + uvicorn cost 15-30% more CPU), with Hive's own pool upstream (:mod:`hive_gateway.upstream`,
cheaper than aiohttp's client). Every request, a
refused or failed one too, ends in one :class:`~hive_gateway.observe.RequestSummary` for the
observer (metrics, the access log), from the one middleware here; a client that went away is
``ClientDisconnected``. The same middleware answers whatever error escapes a route, aiohttp's own
too (no route: 404, a method the route does not take: 405), as every error of the gateway is
answered: OpenAI's JSON shape (:func:`~hive_gateway.errors.describe`) with ``X-Hive-Request-Id``.
The chat route answers its own errors (a started stream ends with an SSE event); an exception costs
nothing until it is raised, so this adds no work to a request that succeeds.
The shared parts (:class:`~hive_gateway.state.Gateway`) open when the
application starts and close - every event written - when it is cleaned up.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from hive_core.catalog.variants import split_shortcut
from hive_core.errors import UnknownModel
from hive_core.ids import new_request_id
from hive_gateway.chat import (
    DRAINING,
    GATEWAY,
    REQUEST_ID_HEADER,
    SETTLER,
    TALLY,
    Tally,
    chat_completions,
    json_response,
)
from hive_gateway.errors import MAX_BODY_BYTES, describe, error_body
from hive_gateway.observe import RequestSummary
from hive_gateway.routing import ALIASES
from hive_gateway.settle import Settler
from hive_gateway.state import Gateway

if TYPE_CHECKING:
    from hive_core.keys import VirtualKey
    from hive_gateway.config import GatewayConfig
    from hive_gateway.observe import Observer

__all__ = ["INFLIGHT", "Inflight", "ModelIndex", "build_app"]

#: the error class of a request that arrived while the worker drained
SHUTTING_DOWN_CLASS = "ShuttingDown"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: objects allocated (net of those freed) between two young collections of a worker; Python's
#: default is 700. A request's objects are freed by reference counting when it ends, but the 32
#: requests in flight at concurrency 32 hold a few thousand at any moment, so at 700 the collector
#: ran every ~13 requests (~0.25 ms each, walking those live objects and promoting them): measured
#: ~22 us of CPU per JSON request. At 10 000, one young collection in 3 000 requests, and the same
#: resident memory; garbage in cycles (rare here) waits a little longer to be freed.
GC_YOUNG_THRESHOLD = 10_000


def _visible(model_id: str, key: VirtualKey | None) -> bool:
    """Whether ``GET /v1/models`` lists ``model_id`` to ``key`` (:meth:`Gateway.models_for`'s rule)."""
    return key is None or model_id in ALIASES or key.allows_model(model_id)


class ModelIndex:
    """``GET /v1/models/{id}``: the objects ``GET /v1/models`` lists, by id, each encoded once, at
    the first lookup (start-up does not pay ~7 ms for a route few clients call), and again after
    the gateway took in a new catalog."""

    __slots__ = ("_bodies", "_gateway", "_listed")

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._listed: bytes | None = None
        self._bodies: dict[str, bytes] = {}

    def body(self, model_id: str, key: VirtualKey | None) -> bytes:
        """The model object's JSON (a routing shortcut's, ``...:nitro``, is its model's under the id
        asked for, as chat takes it); :class:`~hive_core.errors.UnknownModel` (a 404) for an id the
        list does not show ``key``, with the close ids it does show."""
        bodies = self._bodies
        if self._listed is not self._gateway.models_body:
            self._listed = listed = self._gateway.models_body
            self._bodies = bodies = {model["id"]: json.dumps(model).encode() for model in json.loads(listed)["data"]}
        body = bodies.get(model_id)
        if body is not None and _visible(model_id, key):
            return body
        shortcut = split_shortcut(model_id) if body is None else None
        base = bodies.get(shortcut[0]) if shortcut is not None and shortcut[0] not in ALIASES else None
        if base is not None and _visible(model_id, key):
            return json.dumps({**json.loads(base), "id": model_id}).encode()
        from hive_core.catalog.names import close_matches

        close = close_matches(model_id, [known for known in bodies if _visible(known, key)])
        raise UnknownModel(model_id, f"did you mean {', '.join(close)}?" if close else "see GET /v1/models")


MODELS: web.AppKey[ModelIndex] = web.AppKey("models")


def _new_id(request: web.Request) -> dict[str, str]:
    """The request's id, made now, as its header."""
    request[TALLY].request_id = request_id = new_request_id()
    return {REQUEST_ID_HEADER: request_id}


async def _models(request: web.Request) -> web.StreamResponse:
    headers = _new_id(request)
    gateway: Gateway = request.app[GATEWAY]
    return json_response(200, gateway.models_for(await gateway.authenticate(request.headers)), headers)


async def _model(request: web.Request) -> web.StreamResponse:
    """One model by its id: the path's rest, ``/`` included (the openai SDK sends it as ``%2F``)."""
    headers = _new_id(request)
    key = await request.app[GATEWAY].authenticate(request.headers)
    return json_response(200, request.app[MODELS].body(request.match_info["model"], key), headers)


async def _healthz(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok\n")


class Inflight:
    """The requests a worker is handling, by their task: SIGTERM's drain waits for them, then
    cancels what still runs (:func:`hive_gateway.server.drain`). Once it is ``draining``, a request
    that starts anyway (its bytes arrived on an open connection as the drain began) is answered at
    once with :data:`~hive_gateway.chat.DRAINING`: it would otherwise get aiohttp's short
    shutdown wait, not the drain's."""

    __slots__ = ("draining", "tasks")

    def __init__(self) -> None:
        self.tasks: dict[asyncio.Task[object], Tally] = {}
        self.draining = False


INFLIGHT: web.AppKey[Inflight] = web.AppKey("inflight")


@web.middleware
async def _observed(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time the request and tell the observer how it ended (also when the client went away)."""
    gateway: Gateway = request.app[GATEWAY]
    started = time.perf_counter()
    request[TALLY] = tally = Tally()
    inflight = request.app[INFLIGHT]
    task = asyncio.current_task()
    assert task is not None
    inflight.tasks[task] = tally
    status = 499  # the client closed the request (nginx's code): overwritten by a real answer
    try:
        response: web.StreamResponse
        if inflight.draining:
            tally.error_class = SHUTTING_DOWN_CLASS
            tally.request_id = new_request_id()
            response = json_response(DRAINING.status, error_body(DRAINING),
                                     {REQUEST_ID_HEADER: tally.request_id, **DRAINING.headers})
        else:
            response = await handler(request)
        status = response.status
        return response
    except asyncio.CancelledError:
        tally.error_class = tally.error_class or "ClientDisconnected"
        raise
    except Exception as error:  # a route's (a refused key, an unknown model) or aiohttp's (404, 405)
        if request.writer is not None and request.writer.output_size:  # too late for an answer of its own
            tally.error_class = type(error).__name__
            raise
        response = _error_response(gateway, tally, error)
        status = response.status
        return response
    finally:
        del inflight.tasks[task]
        gateway.observer.finished(RequestSummary(
            method=request.method, path=request.path, status=status, request_id=tally.request_id,
            key_id=tally.key_id, app=tally.app, user=tally.user, model=tally.model, stream=tally.stream,
            latency_s=time.perf_counter() - started, ttft_s=tally.ttft_s, prompt_tokens=tally.prompt_tokens,
            completion_tokens=tally.completion_tokens, cost_usd=tally.cost_usd, error_class=tally.error_class,
            chunks=tally.chunks, billed=tally.billed))


def _error_response(gateway: Gateway, tally: Tally, error: Exception) -> web.Response:
    """``error`` as the client's OpenAI-shaped answer, with the request's id (made now if the route
    made none); a bug is the operator's line too, as in the chat route."""
    tally.error_class = type(error).__name__
    if tally.request_id is None:
        tally.request_id = new_request_id()
    problem = describe(error, gateway.secret)
    if problem.code == "internal_error" and not isinstance(error, web.HTTPException):
        gateway.trouble(error, tally.request_id)
    return json_response(problem.status, error_body(problem), {REQUEST_ID_HEADER: tally.request_id, **problem.headers})


def build_app(config: GatewayConfig, observer: Observer) -> web.Application:
    """The application of one worker (its event log, Session and keys open now; the upstream pool
    when it starts; everything closes, events flushed, at cleanup)."""
    app = web.Application(middlewares=[_observed], client_max_size=MAX_BODY_BYTES)
    gateway = Gateway(config, observer)
    app[GATEWAY] = gateway
    app[MODELS] = ModelIndex(gateway)
    app[INFLIGHT] = inflight = Inflight()
    # (the request that adds its answer is in flight itself)
    app[SETTLER] = settler = Settler(gateway.core.tracker.sink, gateway.trouble, lane=gateway.lane,
                                     ledger=gateway.ledger, alone=lambda: len(inflight.tasks) <= 1)

    async def start(app: web.Application) -> None:
        await gateway.start()
        # What start-up built (catalog, selector tables, modules) lives as long as the worker: out of
        # the collector's generations, a full collection no longer walks it. Measured at c=32: ~7%
        # less CPU per request (median of 5 interleaved runs; the loaded machine's noise is similar).
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])

    async def stop(app: web.Application) -> None:
        try:
            settler.flush()  # answers of the last turn: settled and recorded before the ledger closes
        finally:
            await gateway.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/v1/models/{model:.+}", _model)
    app.router.add_get("/healthz", _healthz)
    return app
