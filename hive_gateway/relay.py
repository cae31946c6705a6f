"""One model's stream relayed to the client as it arrives, and recorded like the library records it.

The bytes OpenRouter sends are written to the client unchanged, read by read: never re-encoded,
never buffered past the read that brought them (the keep-alive comments, OpenRouter's final usage
chunk with ``cost``, ``is_byok`` and ``cost_details``, and ``data: [DONE]`` included, whether or not
the client asked for ``stream_options.include_usage``). The same bytes feed a
:class:`~hive_core.openrouter.stream.StreamRun`, which decides and records everything as the
library's stream handles do: an ``api_call`` per attempt, the ``usage``, one ``stream_outcome``.
A stream read to its end is ended for the client first, then finished (settled and recorded): the
ledger's write is not on the path to the client's last byte.

Until the first token an attempt may be retried (the retry policy) or the next model of the chain
tried, so what comes before it is held back, except whole events (keep-alive comments), which go
on at once so the client's connection stays alive while the model thinks; a retry's events then
follow them in the same response. After the first token nothing is re-sent: a failure ends the
stream (OpenRouter's own mid-stream ``error`` event is relayed as it came).

A client that disconnects cancels the handler (aiohttp's ``handler_cancellation``): the upstream
connection is closed at once, and the stream is recorded as ``cancelled`` with the usage counted so
far (the prompt estimated), which reconciliation corrects from ``/generation`` like a cancelled
``hive ask``. So does a client that stays connected but stops reading, once a write to it has
made no progress for ``--send-timeout`` (:mod:`hive_gateway.sending`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from hive_core.errors import Cancelled, MidStreamError, OpenRouterError
from hive_core.openrouter.retry import acall_with_retries
from hive_gateway.sending import Sending
from hive_gateway.upstream import CLIENT_GONE, UPSTREAM_ERRORS

if TYPE_CHECKING:
    from aiohttp import web

    from hive_core.openrouter.results import ChatResult
    from hive_core.openrouter.stream import Delivery, StreamRun
    from hive_gateway.sending import SendWatch
    from hive_gateway.upstream import Exchange, Upstream

__all__ = ["Downstream", "StreamRelay"]

_DONE = b"data: [DONE]"


class Downstream(Sending):
    """The client's SSE response: started by the first bytes worth sending, then written read by
    read, each write watched by ``watch`` (a client that stops reading is cut off: ``stalled``)."""

    def __init__(self, request: web.Request, headers: dict[str, str], watch: SendWatch) -> None:
        super().__init__(request)
        self.headers = headers
        self.watch = watch
        self.response: web.StreamResponse | None = None
        #: whether the last bytes written ended the stream (``data: [DONE]``)
        self.done_sent = False
        #: OpenRouter's own mid-stream error event was relayed: the stream needs only its [DONE]
        self.upstream_error = False

    @property
    def committed(self) -> bool:
        """The client has the 200 and some events: an error can only be an SSE event now."""
        return self.response is not None

    async def send(self, data: bytes) -> None:
        """Write ``data``; a client that went away is :class:`Cancelled` (the stream ends cancelled)."""
        if not data:
            return
        try:
            response = self.response
            self.since = time.monotonic()
            if response is None:
                from aiohttp import web

                response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                                       "Cache-Control": "no-cache", **self.headers})
                self.watch.sending.add(self)  # the handler's end takes it out (chat_completions)
                await response.prepare(self.request)
                self.response = response
            await response.write(data)
        except ConnectionError:
            raise Cancelled(CLIENT_GONE) from None
        finally:
            self.since = None
        self.done_sent = data.rstrip().endswith(_DONE)

    async def end(self) -> None:
        """End the response (``data: [DONE]`` first when nothing was sent: an empty stream); a
        client that went away is :class:`Cancelled`."""
        if self.response is None:
            await self.send(_DONE + b"\n\n")
        assert self.response is not None
        try:
            self.since = time.monotonic()
            await self.response.write_eof()
        except ConnectionError:
            raise Cancelled(CLIENT_GONE) from None
        finally:
            self.since = None


class StreamRelay:
    """One model's streamed request (its attempts up to the first token), relayed and recorded."""

    def __init__(self, upstream: Upstream, run: StreamRun, body: bytes, out: Downstream) -> None:
        self.upstream = upstream
        self.run = run
        self.body = body
        self.out = out
        self._response: Exchange | None = None
        self._pending: list[Delivery] = []

    @property
    def opened(self) -> bool:
        """A token reached the client: this stream can be neither retried nor replaced."""
        return self.run.opened

    def _drop(self) -> None:
        """Close the upstream connection now (a cancel or failure: OpenRouter stops generating)."""
        response, self._response = self._response, None
        if response is not None:
            response.close()

    async def _open(self, attempt: int) -> None:
        """One attempt up to the first token (the retryable part)."""
        run, upstream = self.run, self.upstream
        run.start_attempt(attempt)
        try:
            response = await upstream.open(self.body, stream=True)
        except UPSTREAM_ERRORS as exc:
            raise run.attempt_failed(upstream.translate(exc)) from exc
        self._response = response
        run.http_status = response.status
        try:
            if response.status >= 400:
                raise run.http_error(response.status, response.headers, await response.read())
            held = b""
            pending: list[Delivery] = []
            while (raw := await response.piece()) is not None:
                held += raw
                pending.extend(run.feed(raw))
                if run.opened or run.reader.done:
                    break
                if held.endswith((b"\n\n", b"\r\n\r\n")):  # whole events only: a retry may follow them
                    await self.out.send(held)
                    held = b""
            else:
                run.end_of_body()
            self._pending = pending
            await self.out.send(held)
        except OpenRouterError as error:
            self._drop()
            raise run.attempt_failed(error) from None
        except UPSTREAM_ERRORS as exc:
            self._drop()
            raise run.attempt_failed(upstream.translate(exc)) from exc
        except BaseException:
            self._drop()
            raise

    async def relay(self) -> ChatResult:
        """Relay the stream to its end; returns the result, or raises what ended it (recorded)."""
        run = self.run
        try:
            await acall_with_retries(self._open, run.core.policy)
            for item in self._pending:
                run.deliver(item)
            run.raise_deferred()
            response = self._response
            if not run.reader.done and response is not None:
                while (raw := await response.piece()) is not None:
                    await self.out.send(raw)  # first: the client gets the bytes as they came
                    for item in run.feed(raw):
                        run.deliver(item)
                    run.raise_deferred()
                    if run.reader.done:
                        break
                else:
                    run.end_of_body()
        except BaseException as exc:
            self._drop()
            error = self._ending(exc)
            self.out.upstream_error = isinstance(error, MidStreamError) and run.opened
            run.finish(error)
            if error is exc:
                raise
            raise error from exc
        response, self._response = self._response, None
        try:
            await self.out.end()  # the client has the whole stream before its events are settled and logged
        finally:
            result = run.finish(None)  # every byte was relayed: completed, even if the client left at the end
            if response is not None:
                self.upstream.keep(response)  # read to [DONE]: its connection serves the next request
        return result

    def _ending(self, exc: BaseException) -> BaseException:
        """What ended the stream, as the error it is recorded with (a cancelled handler stays a
        ``CancelledError`` for aiohttp; it is recorded as ``cancelled`` by ``finish``)."""
        if isinstance(exc, asyncio.CancelledError):
            return exc
        if isinstance(exc, UPSTREAM_ERRORS):
            return self.upstream.translate(exc, opened=self.run.opened)
        return exc
