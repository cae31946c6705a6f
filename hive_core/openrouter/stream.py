"""One streamed request without I/O: attempts, chunks, callbacks, timing, and how it ended.

The sync and async stream handles move bytes; :class:`StreamRun` does everything else:

* per attempt, a fresh :class:`~hive_core.openrouter.sse.SSEDecoder` and
  :class:`~hive_core.openrouter.chunks.ChunkReader`;
* the *opening* phase of an attempt lasts until the first token (text or reasoning) or the end of
  the stream. A failure in it may be retried (nothing was delivered); a stream that closes before
  any token is a transient :class:`~hive_core.errors.NetworkError` so the retry loop sends it again;
* after the first token nothing is ever re-sent: a failure ends the stream with an outcome
  (``errored``, ``timeout``, ``truncated``, ``cancelled``) and surfaces as the error;
* :meth:`end` decides how an exception ends the stream (quietly as ``cancelled``, raised as is, or
  translated), and :meth:`finish` records the last attempt's ``api_call``, the ``usage`` (the
  server's, else the pieces counted, never billed) and the one ``stream_outcome``, then builds the
  result.
"""

from __future__ import annotations

import time
from asyncio import CancelledError
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hive_core.errors import (
    Cancelled,
    NetworkError,
    OpenRouterError,
    ReadTimeout,
    RequestTimeout,
    StreamTruncated,
)
from hive_core.openrouter.chunks import ChunkReader
from hive_core.openrouter.core import ClientCore
from hive_core.openrouter.errors import is_transport_error
from hive_core.openrouter.protocol import Messages
from hive_core.openrouter.results import ChatResult, Outcome, Progress
from hive_core.openrouter.sse import SSEDecoder
from hive_core.openrouter.tracking import RequestRecord

__all__ = ["CANCELLED", "Callbacks", "StreamRun", "outcome_of"]

#: the message of the :class:`~hive_core.errors.Cancelled` a caller's cancel ends a stream with
CANCELLED = "the stream was cancelled by the caller"

_clock = time.perf_counter


@dataclass(frozen=True, slots=True)
class Callbacks:
    """Optional observers of a stream. Exceptions they raise propagate to the caller."""

    on_chunk: Callable[[str, str], object] | None = None
    on_progress: Callable[[Progress], object] | None = None
    on_complete: Callable[[ChatResult], object] | None = None
    on_error: Callable[[OpenRouterError], object] | None = None


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

    def __init__(self, core: ClientCore, record: RequestRecord, callbacks: Callbacks, messages: Messages) -> None:
        # imported here: the budget package is not loaded with the client
        from hive_core.budget.estimate import estimate_prompt_tokens

        self.core = core
        #: the prompt's estimated tokens, recorded when the stream ends before the usage chunk (they
        #: are billed whatever happens next)
        self.prompt_tokens = estimate_prompt_tokens(messages)[0]
        self.record = record
        self.max_tokens = record.max_tokens
        self.callbacks = callbacks
        self.started = _clock()  # the request's start: duration and progress count from here
        self.attempt = 0
        self.attempt_started = self.started
        self.decoder = SSEDecoder()
        self.reader = ChunkReader()
        self.http_status: int | None = None
        self.first_token: float | None = None
        self.opened = False  # True once the first token arrived: no more retries
        self.text_so_far = ""
        self._parts: list[str] = []
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
        self.first_token = None
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

    def feed(self, raw: bytes) -> list[str]:
        """Parse received bytes; returns the text pieces they completed (may raise mid-stream errors)."""
        pieces: list[str] = []
        reader = self.reader
        for event in self.decoder.feed(raw):
            before = reader.pieces
            try:
                piece = reader.feed(event.data)
            except OpenRouterError as error:
                if not pieces:
                    raise
                # text that arrived in the same read as the error is delivered first
                self._deferred = error
                break
            if reader.pieces != before and self.first_token is None:
                self.first_token = _clock()
                self.opened = True
            if piece:
                pieces.append(piece)
            if reader.done:
                break
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
        """Text pieces handed to the caller so far (a fallback must not follow printed text)."""
        return len(self._parts)

    def deliver(self, piece: str) -> None:
        """Hand one text piece to the callbacks."""
        self._parts.append(piece)
        cb = self.callbacks
        if cb.on_chunk is not None:
            self.text_so_far = "".join(self._parts)
            cb.on_chunk(piece, self.text_so_far)
        if cb.on_progress is not None:
            cb.on_progress(self.progress())

    def progress(self) -> Progress:
        """Tokens delivered so far (one per piece), rate, elapsed time, estimated % of max_tokens."""
        now = _clock()
        # pieces handed out so far (not parsed: one read may hold many events, usage included)
        tokens = len(self._parts) + len(self.reader.reasoning)
        gen_s = now - self.first_token if self.first_token is not None else 0.0
        percent = None
        if self.max_tokens:
            percent = min(100.0, 100.0 * tokens / self.max_tokens)
        return Progress(tokens, tokens / gen_s if gen_s > 0 else None, now - self.started, percent)

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
        gen_s = now - self.first_token if self.first_token is not None else 0.0
        tokens = reader.completion_tokens
        tokens_per_s = tokens / gen_s if gen_s > 0 and tokens else None
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
        self.result = ChatResult(
            text="".join(self._parts),
            model=self.record.model,
            finish_reason=reader.finish_reason,
            usage=reader.counted_usage(self.prompt_tokens),
            served_model=reader.model,
            provider=reader.provider,
            generation_id=reader.generation_id,
            reasoning="".join(reader.reasoning),
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

