"""One streamed request without I/O: attempts, chunks, callbacks, timing, and how it ended.

The sync and async stream handles move bytes; :class:`StreamRun` does everything else:

* per attempt, a fresh :class:`~hive_core.openrouter.sse.SSEDecoder` and
  :class:`~hive_core.openrouter.chunks.ChunkReader`;
* the *opening* phase of an attempt lasts until the first token (text, reasoning or a tool-call
  delta) or the end of
  the stream. A failure in it may be retried (nothing was delivered); a stream that closes before
  any token is a transient :class:`~hive_core.errors.NetworkError` so the retry loop sends it again;
* after the first token nothing is ever re-sent: a failure ends the stream with an outcome
  (``errored``, ``timeout``, ``truncated``, ``cancelled``) and surfaces as the error;
* :meth:`end` decides how an exception ends the stream (quietly as ``cancelled``, raised as is, or
  translated), and :meth:`finish` records the last attempt's ``api_call``, the ``usage`` (the
  server's, else the pieces counted, never billed) and the one ``stream_outcome``, then builds the
  result from the chunks assembled into a whole answer (so it equals a non-streamed one).

Live figures: tokens/s is completion tokens over generation time, measured from the read that
brought the first token to the read that brought the last (:func:`generation_rate`); it is
``None`` under :data:`MIN_RATE_TOKENS` tokens or when they all came in one read - a 1-token
cancelled stream would otherwise store thousands of tokens/s, and the first progress callback
divide by microseconds.
"""

from __future__ import annotations

import time
from asyncio import CancelledError
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hive_core.errors import (
    Cancelled,
    NetworkError,
    OpenRouterError,
    ReadTimeout,
    RequestTimeout,
    StreamTruncated,
)
from hive_core.openrouter.chunks import ChunkReader, Delivery
from hive_core.openrouter.core import ClientCore
from hive_core.openrouter.errors import is_transport_error
from hive_core.openrouter.protocol import Messages, parse_chat
from hive_core.openrouter.results import ChatResult, Outcome, Progress, ToolCallDelta
from hive_core.openrouter.sse import SSEDecoder
from hive_core.openrouter.tracking import RequestRecord

__all__ = ["CANCELLED", "MIN_RATE_TOKENS", "Callbacks", "Delivery", "StreamRun", "generation_rate", "outcome_of"]

#: the message of the :class:`~hive_core.errors.Cancelled` a caller's cancel ends a stream with
CANCELLED = "the stream was cancelled by the caller"

#: fewer completion tokens than this give no tokens/s (``None``): a handful of tokens measures the
#: network's batching, not the model (1-token streams stored 1,400-5,000 tok/s)
MIN_RATE_TOKENS = 5

_clock = time.perf_counter


def generation_rate(tokens: int, first: float | None, last: float | None) -> float | None:
    """Tokens per second of generation: the ``tokens - 1`` after the first token over the time from
    the first token's read to the last one's (the first opens the window, it is not timed in it).
    ``None`` under :data:`MIN_RATE_TOKENS` tokens or when they all arrived in one read."""
    if first is None or last is None or tokens < MIN_RATE_TOKENS or last <= first:
        return None
    return (tokens - 1) / (last - first)


@dataclass(frozen=True, slots=True)
class Callbacks:
    """Optional observers of a stream. Exceptions they raise propagate to the caller."""

    on_chunk: Callable[[str, str], object] | None = None
    on_progress: Callable[[Progress], object] | None = None
    on_complete: Callable[[ChatResult], object] | None = None
    on_error: Callable[[OpenRouterError], object] | None = None
    #: each streamed tool-call delta, in order with the text pieces
    on_tool_call: Callable[[ToolCallDelta], object] | None = None


def outcome_of(error: BaseException | None) -> Outcome:
    """The stream outcome an ending error stands for."""
    if error is None:
        return "completed"
    if isinstance(error, Cancelled | KeyboardInterrupt | GeneratorExit | CancelledError):
        return "cancelled"
    if isinstance(error, ReadTimeout | RequestTimeout) or getattr(error, "status_name", "") == "timeout":
        return "timeout"
    if isinstance(error, StreamTruncated | NetworkError):
        return "truncated"
    return "errored"


class StreamRun:
    """State of one streamed request across its attempts."""

    def __init__(self, core: ClientCore, record: RequestRecord, callbacks: Callbacks, messages: Messages,
                 tools: Sequence[Mapping[str, Any]] | None = None, *, relayed: bool = False) -> None:
        """``relayed``: the stream's bytes go to a client as they came (the gateway): everything is
        recorded the same, the result carries no answer fields but its text."""
        # imported here: the budget package is not loaded with the client
        from hive_core.budget.estimate import estimate_prompt_tokens

        self.core = core
        self.relayed = relayed
        #: the prompt's estimated tokens (the tools' definitions included), recorded when the stream
        #: ends before the usage chunk (they are billed whatever happens next)
        self.prompt_tokens = estimate_prompt_tokens(messages, tools)[0]
        self.record = record
        self.max_tokens = record.max_tokens
        self.callbacks = callbacks
        self.started = _clock()  # the request's start: duration and progress count from here
        self.attempt = 0
        self.attempt_started = self.started
        self.decoder = SSEDecoder()
        self.reader = ChunkReader()
        self.http_status: int | None = None
        self.first_token: float | None = None  # when the read that brought the first token arrived
        self.last_token: float | None = None  # ... and the latest one
        #: pieces the first token's read brought: the live rate counts only those after it (a loaded
        #: machine can hand several tokens to the first read, then the next one a millisecond later)
        self.first_read_pieces = 0
        self.opened = False  # True once the first token arrived: no more retries
        self.text_so_far = ""
        self._parts: list[str] = []
        self._tool_deltas = 0  # tool-call deltas handed to the caller
        self.result: ChatResult | None = None
        self._attempt_recorded = False
        self._usage_recorded = False  # finish() records usage and the outcome once, even if re-entered
        self._outcome_recorded = False
        self._deferred: OpenRouterError | None = None

    # -- the opening phase (retryable) ----------------------------------------------------------

    def start_attempt(self, attempt: int) -> None:
        """Reset per-attempt state before sending attempt ``attempt``."""
        self.attempt = attempt
        self.attempt_started = _clock()
        self.decoder = SSEDecoder()
        self.reader = ChunkReader()
        self.http_status = None
        self.first_token = self.last_token = None
        self.first_read_pieces = 0
        self._attempt_recorded = False

    def http_error(self, status: int, headers: Mapping[str, str], body: bytes) -> OpenRouterError:
        """Record a failed attempt with an HTTP error answer; returns the error to raise."""
        return self.attempt_failed(self.core.http_error(status, headers, body), status)

    def attempt_failed(self, error: OpenRouterError, http_status: int | None = None) -> OpenRouterError:
        """Record the current attempt as failed before the first token (once); returns ``error``."""
        if self._attempt_recorded:
            return error
        self._attempt_recorded = True
        return self.core.fail(self.record, self.attempt, self.attempt_started, error, http_status or self.http_status)

    def transport_error(self, exc: Exception) -> OpenRouterError:
        """An httpx exception, translated (and recorded when still in the opening phase)."""
        error = self.core.transport_error(exc)
        if not self.opened:
            return self.attempt_failed(error)
        if isinstance(error, NetworkError) and not isinstance(error, ReadTimeout):
            # after tokens a broken connection is a cut answer, not a retryable failure
            return StreamTruncated(f"the stream broke before [DONE]: the answer is incomplete ({error})")
        return error

    def feed(self, raw: bytes) -> list[Delivery]:
        """Parse received bytes; returns the text pieces and tool-call deltas they completed, in
        order, for :meth:`deliver` (may raise mid-stream errors)."""
        pieces: list[Delivery] = []
        reader = self.reader
        before = reader.pieces
        try:
            reader.read(self.decoder.feed_data(raw), pieces)
        except OpenRouterError as error:
            if not pieces:
                raise
            # text that arrived in the same read as the error is delivered first
            self._deferred = error
        if reader.pieces != before:  # timed per read: tokens of one read arrived together
            self.last_token = now = _clock()
            if self.first_token is None:
                self.first_token = now
                self.first_read_pieces = reader.pieces
                self.opened = True
        return pieces

    def raise_deferred(self) -> None:
        """Raise the error that arrived after text of the same read, once that text was delivered."""
        error, self._deferred = self._deferred, None
        if error is not None:
            raise error

    def end_of_body(self) -> None:
        """The body ended: fine after ``[DONE]``; before the first token a retryable network error;
        after it, :class:`StreamTruncated`."""
        self.decoder.close()
        if self.reader.done:
            return
        if not self.opened:
            raise NetworkError("the stream closed before the first token")
        raise StreamTruncated("the stream ended before [DONE]: the answer is incomplete")

    # -- delivering ------------------------------------------------------------------------------

    @property
    def delivered(self) -> int:
        """Text pieces and tool-call deltas handed to the caller so far (a fallback must not follow
        printed text or dispatched calls)."""
        return len(self._parts) + self._tool_deltas

    def deliver(self, item: Delivery) -> str:
        """Hand one text piece or tool-call delta to the callbacks; returns the text (``""`` for a
        tool-call delta) for the handle to yield."""
        cb = self.callbacks
        if isinstance(item, str):
            piece = item
            self._parts.append(piece)
            if cb.on_chunk is not None:
                self.text_so_far = "".join(self._parts)
                cb.on_chunk(piece, self.text_so_far)
        else:
            piece = ""
            self._tool_deltas += 1
            if cb.on_tool_call is not None:
                cb.on_tool_call(self.reader.tool_delta(*item))
        if cb.on_progress is not None:
            cb.on_progress(self.progress())
        return piece

    def progress(self) -> Progress:
        """Tokens delivered so far (one per piece or delta), rate, elapsed time, % of max_tokens."""
        # pieces handed out so far (not parsed: one read may hold many events, usage included)
        tokens = len(self._parts) + self._tool_deltas + len(self.reader.reasoning)
        percent = None
        if self.max_tokens:
            percent = min(100.0, 100.0 * tokens / self.max_tokens)
        # the pieces read after the first token's read, over the time since it (+1: that read opens
        # the window, as the first token does in generation_rate)
        rate = generation_rate(self.reader.pieces - self.first_read_pieces + 1, self.first_token, self.last_token)
        return Progress(tokens, rate, _clock() - self.started, percent)

    # -- the end ---------------------------------------------------------------------------------

    def end(self, exc: BaseException, *, cancel_requested: bool) -> BaseException | None:
        """Record the stream ended by ``exc``; returns what the handle raises (``None``: end quietly).

        The caller's cancel ends quietly as ``cancelled``: :class:`~hive_core.errors.Cancelled`, a
        closed generator, or any ordinary error once the caller asked to cancel (the sync handle
        closes the connection under a running read). An httpx exception is translated (raise it
        ``from exc``). Anything else - an API error, a callback's exception, an interrupt - is
        ``exc`` itself, to re-raise (an interrupt is recorded as ``cancelled``).
        """
        if isinstance(exc, Cancelled):
            self.finish(exc)
            return None
        if isinstance(exc, GeneratorExit) or (cancel_requested and isinstance(exc, Exception)):
            self.finish(Cancelled(CANCELLED))
            return None
        error = self.transport_error(exc) if is_transport_error(exc) else exc
        self.finish(error)
        return error

    def finish(self, error: BaseException | None) -> ChatResult:
        """Record the end of the stream (once) and build the result; calls on_complete / on_error."""
        if self.result is not None:
            return self.result
        now = _clock()
        reader = self.reader
        if isinstance(error, KeyboardInterrupt | GeneratorExit | CancelledError):
            error = Cancelled(CANCELLED)
        outcome = outcome_of(error)
        ttft_ms = (self.first_token - self.attempt_started) * 1000.0 if self.first_token is not None else None
        tokens = reader.completion_tokens
        tokens_per_s = generation_rate(tokens, self.first_token, self.last_token)
        cost = None
        if not self._attempt_recorded and self.attempt:
            # the attempt that ends the stream (failed attempts were recorded when they failed)
            self._attempt_recorded = True
            self.record.attempt(
                self.attempt, latency_ms=(now - self.attempt_started) * 1000.0, error=error,
                http_status=self.http_status, ttft_ms=ttft_ms, generation_id=reader.generation_id,
                served_model=reader.model, provider=reader.provider,
            )
        # Billed: anything that produced chunks, and a stream OpenRouter accepted (HTTP 200) that the
        # caller cancelled or that was cut before its first chunk - its prompt was processed.
        accepted = self.http_status == 200 and outcome in ("cancelled", "truncated", "timeout")
        if (reader.chunks or accepted) and not self._usage_recorded:
            # once: a finish interrupted after this line (a second signal) and called again must
            # not bill the request twice
            self._usage_recorded = True
            cost = self.record.usage(reader.counted_usage(self.prompt_tokens), served_model=reader.model,
                                     provider=reader.provider, generation_id=reader.generation_id)
        if not self._outcome_recorded:
            self._outcome_recorded = True
            self.record.outcome(
                outcome, chunks=reader.chunks, completion_tokens=tokens, ttft_ms=ttft_ms,
                duration_ms=(now - self.started) * 1000.0, tokens_per_s=tokens_per_s,
                finish_reason=reader.finish_reason,
            )
        # the text is what the caller got (a cancel may drop parsed pieces)
        answer = {} if self.relayed else parse_chat(reader.document()).answer()
        answer["text"] = "".join(self._parts)
        self.result = ChatResult(
            **answer,
            model=self.record.model,
            usage=reader.counted_usage(self.prompt_tokens),
            served_model=reader.model,
            provider=reader.provider,
            generation_id=reader.generation_id,
            latency_ms=(now - self.started) * 1000.0,
            ttft_ms=ttft_ms,
            tokens_per_s=tokens_per_s,
            attempts=max(self.attempt, 1),
            fallback_index=self.record.fallback_index,
            cost_usd=cost.cost_usd if cost else None,
            cost_source=cost.source if cost else "unknown",
            outcome=outcome,
            request_id=self.record.request_id,
            streamed=True,
        )
        cb = self.callbacks
        if error is None:
            if cb.on_complete is not None:
                cb.on_complete(self.result)
        elif cb.on_error is not None and isinstance(error, OpenRouterError):
            cb.on_error(error)
        return self.result

