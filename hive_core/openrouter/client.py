"""The synchronous OpenRouter client (``httpx.Client``): chat, stream, models, key, generation.

Every completion goes through the retry policy (:mod:`.retry`) and is recorded through the tracker
(:mod:`.tracking`); the request building and answer handling live in :mod:`.core` and
:mod:`.stream`, shared with the async twin in :mod:`.aio`. Only the I/O is written here.

    with OpenRouterClient(settings, sink=event_log) as client:
        result = client.chat("Say hi", model="openai/gpt-4o-mini", max_tokens=20)
        handle = client.stream("Count to 5", model="openai/gpt-4o-mini", on_progress=print)
        for piece in handle:
            print(piece, end="")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import httpx

from hive_core.errors import Cancelled, MalformedResponse, OpenRouterError
from hive_core.openrouter.core import ClientCore
from hive_core.openrouter.cost import PriceBook
from hive_core.openrouter.protocol import Messages, chat_body
from hive_core.openrouter.results import ChatResult, Progress
from hive_core.openrouter.retry import RetryPolicy, call_with_retries
from hive_core.openrouter.stream import Callbacks, StreamRun
from hive_core.settings import Settings
from hive_core.store.events import EventSink

__all__ = ["OpenRouterClient", "StreamHandle"]


class StreamHandle:
    """A streamed answer: iterate it for text pieces, or :meth:`collect` it.

    The request is sent on the first ``next()``. :meth:`cancel` (from a callback, another thread or
    a signal handler) closes the connection; iteration then ends quietly with ``result.outcome ==
    "cancelled"``. A failure after the first token is raised from the iteration (and passed to
    ``on_error``); it is never re-sent.
    """

    def __init__(self, http: httpx.Client, request: httpx.Request, run: StreamRun) -> None:
        self._http = http
        self._request = request
        self._run = run
        self._response: httpx.Response | None = None
        self._body: Iterator[bytes] = iter(())
        self._pending: list[str] = []
        self._cancelled = False
        self._gen = self._iterate()

    def __iter__(self) -> StreamHandle:
        return self

    def __next__(self) -> str:
        return next(self._gen)

    @property
    def result(self) -> ChatResult | None:
        """The result once the stream ended (completed, failed or cancelled), else ``None``."""
        return self._run.result

    @property
    def delivered(self) -> int:
        """Text pieces handed to the caller so far."""
        return self._run.delivered

    @property
    def request_id(self) -> str:
        """The ``request_id`` shared by this request's events."""
        return self._run.record.request_id

    def collect(self) -> ChatResult:
        """Read the stream to its end and return the result (raises what the stream raised)."""
        for _ in self._gen:
            pass
        result = self._run.result
        if result is None:  # cancelled before the request was sent
            result = self._run.finish(Cancelled("the stream was cancelled before it started"))
        return result

    def cancel(self) -> None:
        """Stop the stream and close its connection; records ``stream_outcome=cancelled``."""
        self._cancelled = True
        try:
            self._gen.close()  # a suspended stream: runs its cancel handling right here
        except ValueError:  # running in another thread: closing the socket interrupts its read
            if self._response is not None:
                self._response.close()

    def __enter__(self) -> StreamHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    # -- I/O -------------------------------------------------------------------------------------

    def _open(self, attempt: int) -> None:
        """One attempt up to the first token (the retryable part)."""
        run = self._run
        run.start_attempt(attempt)
        try:
            response = self._http.send(self._request, stream=True)
        except httpx.HTTPError as exc:
            raise run.transport_error(exc) from exc
        self._response = response
        run.http_status = response.status_code
        try:
            if response.status_code >= 400:
                raise run.http_error(response.status_code, response.headers, response.read())
            self._body = body = response.iter_bytes()
            pending: list[str] = []
            for raw in body:
                pending.extend(run.feed(raw))
                if run.opened or run.reader.done:
                    break
            else:
                run.end_of_body()
            self._pending = pending
        except OpenRouterError as error:
            response.close()
            raise run.attempt_failed(error) from None
        except httpx.HTTPError as exc:
            response.close()
            raise run.transport_error(exc) from exc
        except BaseException:
            response.close()
            raise

    def _iterate(self) -> Generator[str, None, None]:
        run = self._run
        try:
            call_with_retries(self._open, run.core.policy)
            for piece in self._pending:
                run.deliver(piece)
                yield piece
                if self._cancelled:
                    raise Cancelled("the stream was cancelled by the caller")
            run.raise_deferred()
            if not run.reader.done:
                for raw in self._body:
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
            self._close()
            run.finish(Cancelled("the stream was cancelled by the caller"))
            return
        except httpx.HTTPError as exc:
            self._close()
            if self._cancelled:
                run.finish(Cancelled("the stream was cancelled by the caller"))
                return
            error = run.transport_error(exc)
            run.finish(error)
            raise error from exc
        except BaseException as exc:
            self._close()
            if self._cancelled and not isinstance(exc, KeyboardInterrupt):
                run.finish(Cancelled("the stream was cancelled by the caller"))
                return
            run.finish(exc)
            raise
        self._close()
        run.finish(None)

    def _close(self) -> None:
        if self._response is not None:
            self._response.close()


class OpenRouterClient:
    """Synchronous client. Build once, reuse (connection pool); close it or use ``with``."""

    def __init__(
        self,
        settings: Settings,
        *,
        sink: EventSink | None = None,
        prices: PriceBook | None = None,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.core = ClientCore(settings, sink=sink, prices=prices, policy=policy)
        self._http = httpx.Client(transport=transport, **self.core.http_options())

    def __repr__(self) -> str:
        return f"OpenRouterClient(base_url={self.core.base_url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> OpenRouterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chat(
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

        def attempt(n: int) -> ChatResult:
            started = time.perf_counter()
            try:
                response = self._http.send(request)
            except httpx.HTTPError as exc:
                raise core.fail(record, n, started, core.transport_error(exc)) from exc
            except KeyboardInterrupt:
                core.fail(record, n, started, Cancelled("cancelled by the caller"))
                raise
            return core.chat_result(record, n, started, response)

        return call_with_retries(attempt, core.policy)

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
    ) -> StreamHandle:
        """A streamed completion: returns a :class:`StreamHandle` (sent on first iteration)."""
        run, body = self.core.prepare_stream(
            messages, model=model, max_tokens=max_tokens, callbacks=Callbacks(on_chunk, on_progress, on_complete, on_error),
            request_type=request_type, task_category=task_category, fallback_index=fallback_index,
            request_id=request_id, params=params,
        )
        request = self._http.build_request("POST", self.core.url("/chat/completions"), content=body,
                                           headers={"Accept": "text/event-stream"})
        return StreamHandle(self._http, request, run)

    def _get(self, path: str, what: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = self._http.get(self.core.url(path), params=params)
        except httpx.HTTPError as exc:
            raise self.core.transport_error(exc) from exc
        return self.core.json_answer(response, what)

    def models_document(self) -> dict[str, Any]:
        """``GET /models`` as served (``{"data": [...]}``), for caching as the catalog."""
        doc = self._get("/models", "the model list")
        if not isinstance(doc.get("data"), list):
            raise MalformedResponse("the model list has no data array")
        return doc

    def list_models(self) -> list[dict[str, Any]]:
        """The models OpenRouter serves (``data`` of ``GET /models``)."""
        return list(self.models_document()["data"])

    def key_info(self) -> dict[str, Any]:
        """``GET /key``: the key's label (masked), limit, usage; a bad key is ``AuthError``."""
        return dict(self._get("/key", "the key info").get("data") or {})

    def get_generation(self, generation_id: str) -> dict[str, Any]:
        """``GET /generation?id=``: what was billed for one generation (``NotFound`` while it lags)."""
        return dict(self._get("/generation", "the generation", {"id": generation_id}).get("data") or {})
