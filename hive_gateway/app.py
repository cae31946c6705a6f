"""The gateway's aiohttp application: its routes, and one summary per request for operations.

    POST /v1/chat/completions   streamed or not (:mod:`hive_gateway.chat`)
    GET  /v1/models             the synced catalog and the ``hive/auto`` aliases
    GET  /healthz               ``ok`` while the worker serves

aiohttp's server: the measured floor of issue 14 (an aiohttp passthrough adds 0.5-0.9 ms at P50;
starlette + uvicorn cost 15-30% more CPU), with Hive's own pool upstream (:mod:`hive_gateway.upstream`,
cheaper than aiohttp's client). Every request, a
refused or failed one too, ends in one :class:`~hive_gateway.observe.RequestSummary` for the
observer (metrics, the access log), from the one middleware here; a client that went away is
``ClientDisconnected``. The shared parts (:class:`~hive_gateway.state.Gateway`) open when the
application starts and close - every event written - when it is cleaned up.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

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
from hive_gateway.settle import Settler
from hive_gateway.state import Gateway

if TYPE_CHECKING:
    from hive_gateway.config import GatewayConfig
    from hive_gateway.observe import Observer

__all__ = ["INFLIGHT", "Inflight", "build_app"]

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


async def _models(request: web.Request) -> web.StreamResponse:
    gateway: Gateway = request.app[GATEWAY]
    try:
        key = gateway.authenticate(request.headers)
    except Exception as error:
        request[TALLY].error_class = type(error).__name__
        problem = describe(error, gateway.secret)
        return json_response(problem.status, error_body(problem), problem.headers)
    return json_response(200, gateway.models_for(key), {})


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
    except web.HTTPException as exc:  # aiohttp's own: 404 no route, 405 method
        status = exc.status
        raise
    except asyncio.CancelledError:
        tally.error_class = tally.error_class or "ClientDisconnected"
        raise
    finally:
        del inflight.tasks[task]
        gateway.observer.finished(RequestSummary(
            method=request.method, path=request.path, status=status, request_id=tally.request_id,
            key_id=tally.key_id, app=tally.app, user=tally.user, model=tally.model, stream=tally.stream,
            latency_s=time.perf_counter() - started, ttft_s=tally.ttft_s, prompt_tokens=tally.prompt_tokens,
            completion_tokens=tally.completion_tokens, cost_usd=tally.cost_usd, error_class=tally.error_class,
            chunks=tally.chunks))


def build_app(config: GatewayConfig, observer: Observer) -> web.Application:
    """The application of one worker (its event log, Session and keys open now; the upstream pool
    when it starts; everything closes, events flushed, at cleanup)."""
    app = web.Application(middlewares=[_observed], client_max_size=MAX_BODY_BYTES)
    gateway = Gateway(config, observer)
    app[GATEWAY] = gateway
    app[INFLIGHT] = inflight = Inflight()
    # (the request that adds its answer is in flight itself)
    app[SETTLER] = settler = Settler(gateway.core.tracker.sink, gateway.trouble,
                                     alone=lambda: len(inflight.tasks) <= 1)

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
    app.router.add_get("/healthz", _healthz)
    return app
