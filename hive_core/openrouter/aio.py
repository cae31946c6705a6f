"""The asynchronous OpenRouter client (``httpx.AsyncClient``): the same surface as :mod:`.client`.

Request building, answer handling, retries decisions and recording are shared (:mod:`.core`,
:mod:`.stream`, :mod:`.retry`); only the awaits differ.

    async with AsyncOpenRouterClient(settings, sink=event_log) as client:
        result = await client.chat("Say hi", model="openai/gpt-4o-mini", max_tokens=20)
        async for piece in client.stream("Count to 5", model="openai/gpt-4o-mini"):
            print(piece, end="")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import httpx

from hive_core.errors import Cancelled, MalformedResponse, OpenRouterError
from hive_core.openrouter.core import ClientCore
from hive_core.openrouter.cost import PriceBook
from hive_core.openrouter.protocol import Messages, chat_body
from hive_core.openrouter.results import ChatResult, Progress
from hive_core.openrouter.retry import RetryPolicy, acall_with_retries
from hive_core.openrouter.stream import Callbacks, StreamRun
from hive_core.settings import Settings
from hive_core.store.events import EventSink

__all__ = ["AsyncOpenRouterClient", "AsyncStreamHandle"]


class AsyncStreamHandle:
    """A streamed answer: ``async for piece in handle``, or ``await handle.collect()``.

    :meth:`cancel` stops the stream at the next received bytes and closes the connection; cancelling
    the consuming task stops it at once. Both record ``stream_outcome=cancelled``.
    """

    def __init__(self, http: httpx.AsyncClient, request: httpx.Request, run: StreamRun) -> None:
        self._http = http
        self._request = request
        self._run = run
        self._response: httpx.Response | None = None
        self._body: AsyncIterator[bytes] | None = None
        self._pending: list[str] = []
        self._cancelled = False
        self._gen = self._iterate()

    def __aiter__(self) -> AsyncStreamHandle:
        return self

    async def __anext__(self) -> str:
        return await self._gen.__anext__()

    @property
    def result(self) -> ChatResult | None:
        """The result once the stream ended, else ``None``."""
        return self._run.result

    @property
    def delivered(self) -> int:
        """Text pieces handed to the caller so far."""
        return self._run.delivered

    @property
    def request_id(self) -> str:
        """The ``request_id`` shared by this request's events."""
        return self._run.record.request_id

    async def collect(self) -> ChatResult:
        """Read the stream to its end and return the result (raises what the stream raised)."""
        async for _ in self._gen:
            pass
        result = self._run.result
        if result is None:
            result = self._run.finish(Cancelled("the stream was cancelled before it started"))
        return result

    def cancel(self) -> None:
        """Ask the stream to stop; it closes the connection at the next bytes it receives."""
        self._cancelled = True

    async def aclose(self) -> None:
        """Cancel and close now (records ``cancelled`` unless the stream already ended)."""
        self._cancelled = True
        await self._gen.aclose()
        await self._close()

    async def __aenter__(self) -> AsyncStreamHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- I/O -------------------------------------------------------------------------------------

    async def _open(self, attempt: int) -> None:
        """One attempt up to the first token (the retryable part)."""
        run = self._run
        run.start_attempt(attempt)
        try:
            response = await self._http.send(self._request, stream=True)
        except httpx.HTTPError as exc:
            raise run.transport_error(exc) from exc
        self._response = response
        run.http_status = response.status_code
        try:
            if response.status_code >= 400:
                raise run.http_error(response.status_code, response.headers, await response.aread())
            self._body = body = response.aiter_bytes()
            pending: list[str] = []
            async for raw in body:
                pending.extend(run.feed(raw))
                if run.opened or run.reader.done:
                    break
            else:
                run.end_of_body()
            self._pending = pending
        except OpenRouterError as error:
            await response.aclose()
            raise run.attempt_failed(error) from None
        except httpx.HTTPError as exc:
            await response.aclose()
            raise run.transport_error(exc) from exc
        except BaseException:
            await response.aclose()
            raise

    async def _iterate(self) -> AsyncGenerator[str, None]:
        run = self._run
        try:
            await acall_with_retries(self._open, run.core.policy)
            for piece in self._pending:
                run.deliver(piece)
                yield piece
                if self._cancelled:
                    raise Cancelled("the stream was cancelled by the caller")
            run.raise_deferred()
            if not run.reader.done and self._body is not None:
                async for raw in self._body:
                    if self._cancelled:
                        raise Cancelled("the stream was cancelled by the caller")
                    for piece in run.feed(raw):
                        run.deliver(piece)
                        yield piece
                        if self._cancelled:  # cancelled by a callback or between pieces of one read
                            raise Cancelled("the stream was cancelled by the caller")
                    run.raise_deferred()
                    if run.reader.done:
                        break
                else:
                    run.end_of_body()
        except GeneratorExit:
            await self._close()
            run.finish(Cancelled("the stream was cancelled by the caller"))
            return
        except Cancelled as cancelled:
            await self._close()
            run.finish(cancelled)
            return
        except httpx.HTTPError as exc:
            await self._close()
            error = run.transport_error(exc)
            run.finish(error)
            raise error from exc
        except BaseException as exc:  # incl. asyncio.CancelledError: recorded as cancelled
            try:
                await asyncio.shield(self._close())
            finally:  # a second cancel while closing must not skip the recording
                run.finish(exc)
            raise
        await self._close()
        run.finish(None)

    async def _close(self) -> None:
        if self._response is not None:
            await self._response.aclose()


class AsyncOpenRouterClient:
    """Asynchronous client. Build once per event loop, reuse; ``await client.aclose()`` or ``async with``."""

    def __init__(
        self,
        settings: Settings,
        *,
        sink: EventSink | None = None,
        prices: PriceBook | None = None,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.core = ClientCore(settings, sink=sink, prices=prices, policy=policy)
        self._http = httpx.AsyncClient(transport=transport, **self.core.http_options())

    def __repr__(self) -> str:
        return f"AsyncOpenRouterClient(base_url={self.core.base_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncOpenRouterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def chat(
        self,
        messages: Messages,
        *,
        model: str,
        max_tokens: int | None = None,
        request_type: str = "chat",
        task_category: str | None = None,
        fallback_index: int = 0,
        request_id: str | None = None,
        **params: Any,
    ) -> ChatResult:
        """One non-streamed completion, retried on transient errors; ``params`` go into the body."""
        core = self.core
        record = core.tracker.request(model, request_type=request_type, task_category=task_category,
                                      fallback_index=fallback_index, request_id=request_id, max_tokens=max_tokens)
        request = self._http.build_request(
            "POST", core.url("/chat/completions"),
            content=chat_body(messages, model=model, max_tokens=max_tokens, stream=False, params=params),
        )

        async def attempt(n: int) -> ChatResult:
            started = time.perf_counter()
            try:
                response = await self._http.send(request)
            except httpx.HTTPError as exc:
                raise core.fail(record, n, started, core.transport_error(exc)) from exc
            except asyncio.CancelledError:
                core.fail(record, n, started, Cancelled("cancelled by the caller"))
                raise
            return core.chat_result(record, n, started, response)

        return await acall_with_retries(attempt, core.policy)

    def stream(
        self,
        messages: Messages,
        *,
        model: str,
        max_tokens: int | None = None,
        on_chunk: Callable[[str, str], object] | None = None,
        on_progress: Callable[[Progress], object] | None = None,
        on_complete: Callable[[ChatResult], object] | None = None,
        on_error: Callable[[OpenRouterError], object] | None = None,
        request_type: str = "chat",
        task_category: str | None = None,
        fallback_index: int = 0,
        request_id: str | None = None,
        **params: Any,
    ) -> AsyncStreamHandle:
        """A streamed completion: returns an :class:`AsyncStreamHandle` (sent on first iteration)."""
        run, body = self.core.prepare_stream(
            messages, model=model, max_tokens=max_tokens, callbacks=Callbacks(on_chunk, on_progress, on_complete, on_error),
            request_type=request_type, task_category=task_category, fallback_index=fallback_index,
            request_id=request_id, params=params,
        )
        request = self._http.build_request("POST", self.core.url("/chat/completions"), content=body,
                                           headers={"Accept": "text/event-stream"})
        return AsyncStreamHandle(self._http, request, run)

    async def _get(self, path: str, what: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = await self._http.get(self.core.url(path), params=params)
        except httpx.HTTPError as exc:
            raise self.core.transport_error(exc) from exc
        return self.core.json_answer(response, what)

    async def models_document(self) -> dict[str, Any]:
        """``GET /models`` as served (``{"data": [...]}``)."""
        doc = await self._get("/models", "the model list")
        if not isinstance(doc.get("data"), list):
            raise MalformedResponse("the model list has no data array")
        return doc

    async def list_models(self) -> list[dict[str, Any]]:
        """The models OpenRouter serves (``data`` of ``GET /models``)."""
        return list((await self.models_document())["data"])

    async def key_info(self) -> dict[str, Any]:
        """``GET /key``: the key's label (masked), limit, usage; a bad key is ``AuthError``."""
        return dict((await self._get("/key", "the key info")).get("data") or {})

    async def get_generation(self, generation_id: str) -> dict[str, Any]:
        """``GET /generation?id=``: what was billed for one generation."""
        return dict((await self._get("/generation", "the generation", {"id": generation_id})).get("data") or {})
