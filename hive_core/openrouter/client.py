# Generated from aio.py by .ci/unasync.py; do not edit: edit aio.py, then run `python .ci/unasync.py`.
"""The OpenRouter client over ``httpx.Client``: chat, stream, models, key, generation.

The request logic is written once, in ``aio.py``; ``client.py``, its synchronous twin, is generated
from it by ``.ci/unasync.py`` (edit aio.py, then run that; CI checks the two agree). Every
completion goes through the retry policy (:mod:`.retry`) and is recorded through the tracker
(:mod:`.tracking`); request building, answer handling and how a stream ends are decided in
:mod:`.core` and :mod:`.stream`. Only the I/O is written here.

    with OpenRouterClient(settings, sink=event_log) as client:
        result = client.chat("Say hi", model="openai/gpt-4o-mini", max_tokens=20)
        handle = client.stream("Count to 5", model="openai/gpt-4o-mini", on_progress=print)
        for piece in handle:
            print(piece, end="")

A tool loop: each turn is its own logical request (its own ``request_id`` and events)::

    messages = [{"role": "user", "content": "Weather in Paris?"}]
    result = client.chat(messages, model=m, tools=[WEATHER])
    while result.tool_calls:
        messages.append(result.message)
        messages += [call.reply(run_tool(call.name, call.parse_arguments())) for call in result.tool_calls]
        result = client.chat(messages, model=m, tools=[WEATHER])
"""

from __future__ import annotations

import time
from asyncio import CancelledError
from collections.abc import Callable, Generator, Iterator
from typing import Any, Unpack

import httpx

from hive_core.errors import Cancelled, MalformedResponse, OpenRouterError
from hive_core.openrouter.core import ClientCore
from hive_core.openrouter.cost import PriceBook
from hive_core.openrouter.params import ChatParams
from hive_core.openrouter.pool import END_WAIT_S, PoolTransport, ResponseBody
from hive_core.openrouter.protocol import Messages, chat_body
from hive_core.openrouter.results import ChatResult, Progress, ToolCallDelta
from hive_core.openrouter.retry import RetryPolicy, call_with_retries
from hive_core.openrouter.stream import CANCELLED, Callbacks, Delivery, StreamRun
from hive_core.settings import Settings
from hive_core.store.events import EventSink

__all__ = ["OpenRouterClient", "StreamHandle"]



class StreamHandle:
    """A streamed answer: ``for piece in handle``, or ``handle.collect()``.

    The request is sent on the first iteration; the iteration yields text pieces (tool calls go to
    ``on_tool_call`` and :attr:`ChatResult.tool_calls`). :meth:`cancel` ends the iteration quietly
    with ``result.outcome == "cancelled"``. A failure after the first token is raised from the
    iteration (and passed to ``on_error``); it is never re-sent.
    """

    def __init__(self, client: OpenRouterClient, request: httpx.Request, run: StreamRun) -> None:
        self._client = client
        self._request = request
        self._run = run
        self._response: httpx.Response | None = None
        self._body: Iterator[bytes] | None = None
        self._pending: list[Delivery] = []
        self._cancelled = False
        self._gen = self._iterate()

    def __iter__(self) -> StreamHandle:
        return self

    def __next__(self) -> str:
        return self._gen.__next__()

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
        """Stop the stream now, before the first token too; records ``stream_outcome=cancelled``.

        Callable from a callback, and from elsewhere while the stream waits: the sync handle from
        another thread or a signal handler (it closes the connection; before the response headers
        arrived it stops when they do), the async one from another task of the same loop (it
        interrupts the reading task's pending read, and that task goes on uncancelled).
        """
        self._cancelled = True
        # nothing to wait for in sync code: close now
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

    def _check_cancel(self) -> None:
        if self._cancelled:
            raise Cancelled(CANCELLED)

    def _open(self, attempt: int) -> None:
        """One attempt up to the first token (the retryable part); a cancel stops it between reads."""
        run = self._run
        self._check_cancel()
        run.start_attempt(attempt)
        try:
            response = self._client._send(self._request, stream=True)
        except httpx.HTTPError as exc:
            self._check_cancel()  # the sync cancel() closed the connection under the send
            raise run.transport_error(exc) from exc
        self._response = response
        run.http_status = response.status_code
        try:
            self._check_cancel()
            if response.status_code >= 400:
                raise run.http_error(response.status_code, response.headers, response.read())
            self._body = body = response.iter_bytes()
            pending: list[Delivery] = []
            for raw in body:
                self._check_cancel()  # keep-alives before the first token: a cancel must not wait for it
                pending.extend(run.feed(raw))
                if run.opened or run.reader.done:
                    break
            else:
                self._check_cancel()  # the sync cancel() closed the body
                run.end_of_body()
            self._pending = pending
        except OpenRouterError as error:
            response.close()
            raise run.attempt_failed(Cancelled(CANCELLED) if self._cancelled else error) from None
        except httpx.HTTPError as exc:
            response.close()
            self._check_cancel()
            raise run.transport_error(exc) from exc
        except BaseException:
            response.close()
            raise

    def _iterate(self) -> Generator[str, None]:
        run = self._run
        try:
            call_with_retries(self._open, run.core.policy)
            for item in self._pending:
                piece = run.deliver(item)
                if piece:
                    yield piece
                self._check_cancel()  # by the caller, a callback, or between pieces of one read
            run.raise_deferred()
            if not run.reader.done and self._body is not None:
                for raw in self._body:
                    self._check_cancel()  # asked while this read waited
                    for item in run.feed(raw):
                        piece = run.deliver(item)
                        if piece:
                            yield piece
                        self._check_cancel()
                    run.raise_deferred()
                    if run.reader.done:
                        break
                else:
                    self._check_cancel()  # the sync cancel() closed the body
                    run.end_of_body()
        except BaseException as exc:  # the decision is StreamRun.end's; here only the I/O
            try:
                self._close()
            finally:  # a second interrupt while closing must not skip the recording
                error = run.end(exc, cancel_requested=self._cancelled)
            if error is exc:
                raise
            if error is not None:
                raise error from exc
            return
        try:
            run.finish(None)  # recorded (and on_complete called) before the connection is settled
        finally:
            self._close(after_done=True)

    def _close(self, *, after_done: bool = False) -> None:
        """Close the response. ``after_done``: the stream ended at its ``[DONE]``, before the body's
        last chunk marker was read; waiting (briefly) for that marker keeps the connection for the
        next request, where closing it would cost the next one a new TCP and TLS handshake."""
        response = self._response
        if response is not None:
            if after_done and isinstance(response.stream, ResponseBody):
                response.stream.drain(END_WAIT_S)
            response.close()


class OpenRouterClient:
    """The client. Build once and reuse (a connection pool); close it or use it as a context manager.

    ``transport`` defaults to Hive's own pool (:class:`~hive_core.openrouter.pool_async.PoolTransport`:
    httpcore's costs a multiple of the CPU per request under concurrency); any httpx transport fits.
    """

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
        options = self.core.http_options()
        self._http = http = httpx.Client(transport=transport or PoolTransport(options["limits"]), **options)
        # what http.build_request and http.send would work out again for every completion: the URL,
        # the headers (the stream's with its Accept) but the body's length, the timeouts, the
        # transport (a proxy mount when the environment sets one)
        self._chat_url = url = httpx.URL(self.core.url("/chat/completions"))
        self._headers = http.build_request("POST", url, content=b"").headers
        self._stream_headers = http.build_request("POST", url, content=b"",
                                                  headers={"Accept": "text/event-stream"}).headers
        for headers in (self._headers, self._stream_headers):
            del headers["Content-Length"]  # the body's, set per request (last, where build_request puts it)
        self._timeouts = http.timeout.as_dict()
        self._chat_transport = http._transport_for_url(url)

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
        **params: Unpack[ChatParams],
    ) -> ChatResult:
        """One non-streamed completion, retried on transient errors.

        ``params`` (tools, response_format, reasoning, provider, models, sampling, ...: see
        :class:`~hive_core.openrouter.params.ChatParams`) go into the body untouched, any other
        field too (``extra_body``). The result carries the answer whole: text, ``tool_calls``,
        ``reasoning_details``, annotations, logprobs, ``message`` for the next turn, ``raw``.
        """
        core = self.core
        record = core.tracker.request(model, request_type=request_type, task_category=task_category,
                                      fallback_index=fallback_index, request_id=request_id, max_tokens=max_tokens)
        request = self._request(self._headers, chat_body(messages, model=model, max_tokens=max_tokens, stream=False,
                                                         params=params))

        def attempt(n: int) -> ChatResult:
            started = time.perf_counter()
            try:
                response = self._send(request)
            except httpx.HTTPError as exc:
                raise core.fail(record, n, started, core.transport_error(exc)) from exc
            except (KeyboardInterrupt, CancelledError):  # Ctrl-C or SIGTERM, or the task's cancellation
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
        on_tool_call: Callable[[ToolCallDelta], object] | None = None,
        request_type: str = "chat",
        task_category: str | None = None,
        fallback_index: int = 0,
        request_id: str | None = None,
        **params: Unpack[ChatParams],
    ) -> StreamHandle:
        """A streamed completion: returns its handle, :class:`StreamHandle` (sent on first iteration).

        The body is :meth:`chat`'s. Callbacks, called in the order the stream delivers: ``on_chunk``
        (text piece, text so far), ``on_tool_call`` (each :class:`ToolCallDelta`), ``on_progress``
        after either, then ``on_complete`` (the result) or ``on_error``. The result equals what
        :meth:`chat` returns for the same answer (timing aside).
        """
        core = self.core
        record = core.tracker.request(model, request_type=request_type, task_category=task_category,
                                      fallback_index=fallback_index, request_id=request_id, max_tokens=max_tokens,
                                      streamed=True)
        run = StreamRun(core, record, Callbacks(on_chunk, on_progress, on_complete, on_error, on_tool_call), messages,
                        params.get("tools"))
        request = self._request(self._stream_headers, chat_body(messages, model=model, max_tokens=max_tokens,
                                                                stream=True, params=params))
        return StreamHandle(self, request, run)

    # -- the completions' I/O: httpx.Client's minus its per-request work Hive has no use for -----

    def _request(self, template: httpx.Headers, body: bytes) -> httpx.Request:
        """The completion request ``self._http.build_request("POST", ...)`` would build (same headers,
        in the same order, same timeouts), from what ``__init__`` merged once: a quarter of the cost."""
        headers = httpx.Headers(template)
        headers["Content-Length"] = str(len(body))
        return httpx.Request("POST", self._chat_url, headers=headers, stream=httpx.ByteStream(body),
                             extensions={"timeout": self._timeouts})

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """``self._http.send(request)`` without the client's per-request layers, which cost a third
        of a completion's CPU under load: no auth flow or redirects (Hive sets neither), no event
        hooks, and no cookie jar (OpenRouter sets no cookie a completion needs; httpx builds urllib
        request and response objects for every answer to look for them)."""
        if self._http.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        response = self._chat_transport.handle_request(request)
        response.request = request
        if not stream:
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        return response

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
        doc = self.models_document()
        return list(doc["data"])

    def key_info(self) -> dict[str, Any]:
        """``GET /key``: the key's label (masked), limit, usage; a bad key is ``AuthError``."""
        doc = self._get("/key", "the key info")
        return dict(doc.get("data") or {})

    def get_generation(self, generation_id: str) -> dict[str, Any]:
        """``GET /generation?id=``: what was billed for one generation (``NotFound`` while it lags)."""
        doc = self._get("/generation", "the generation", {"id": generation_id})
        return dict(doc.get("data") or {})
