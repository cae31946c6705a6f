"""What the sync and async clients share: configuration, answer handling and recording, minus I/O.

A client method does only the I/O of an attempt (send, read) and hands the status, headers and
body to :class:`ClientCore`, which turns them into a result or a typed error and records the
attempt through the :class:`~hive_core.openrouter.tracking.Tracker`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hive_core.errors import ApiError, AuthError, OpenRouterError
from hive_core.openrouter.cost import PriceBook
from hive_core.openrouter.errors import api_error, translate_transport_error
from hive_core.openrouter.protocol import build_headers, choice_error, parse_chat, parse_json
from hive_core.openrouter.results import ChatResult
from hive_core.openrouter.retry import RetryPolicy
from hive_core.openrouter.tracking import RequestRecord, Tracker, UnrecordedSink
from hive_core.store.events import EventSink

if TYPE_CHECKING:
    import httpx

    from hive_core.settings import Settings

__all__ = ["DEFAULT_POOL", "ClientCore", "elapsed_ms"]

#: connections kept per client; one ``hive`` process rarely needs more, the async bench uses 16+
DEFAULT_POOL = 64

_clock = time.perf_counter


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` value)."""
    return (_clock() - started) * 1000.0


class ClientCore:
    """Settings-derived configuration plus the I/O-free halves of every call."""

    # no defaults: the clients' constructors own them and pass every argument through
    def __init__(self, settings: Settings, *, sink: EventSink | None, prices: PriceBook | None,
                 policy: RetryPolicy | None) -> None:
        self.settings = settings
        self._secret = settings.require_api_key()  # raises MissingApiKey, before any I/O
        self.base_url = settings.base_url
        self.headers = build_headers(self._secret, app_url=settings.app_url, app_title=settings.app_title)
        self.tracker = Tracker(UnrecordedSink() if sink is None else sink, prices, app=settings.app,
                               user=settings.user)
        self.policy = policy or RetryPolicy.from_settings(settings)

    def __repr__(self) -> str:  # never show the headers (they hold the key)
        return f"ClientCore(base_url={self.base_url!r})"

    # -- httpx configuration (imported lazily: CLI start-up must not pay for httpx) --------------

    def http_options(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``: pooling, split timeouts."""
        import httpx

        s = self.settings
        return {
            "headers": self.headers,
            "timeout": httpx.Timeout(
                connect=s.connect_timeout_s, read=s.read_timeout_s, write=s.read_timeout_s, pool=s.connect_timeout_s
            ),
            "limits": httpx.Limits(max_connections=DEFAULT_POOL, max_keepalive_connections=DEFAULT_POOL),
            "http2": False,  # HTTP/1.1 keep-alive: one stream per connection, what OpenRouter serves best
            "follow_redirects": False,
        }

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # -- errors ----------------------------------------------------------------------------------

    def transport_error(self, exc: Exception) -> OpenRouterError:
        """An httpx exception as a typed, key-free error."""
        return translate_transport_error(exc, secret=self._secret)

    def http_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
        """The typed error for an HTTP error answer."""
        return api_error(status, headers, body, secret=self._secret)

    def fail(self, record: RequestRecord, attempt: int, started: float, error: OpenRouterError,
             http_status: int | None = None) -> OpenRouterError:
        """Record a failed attempt; returns ``error`` for the caller to raise."""
        if http_status is None and isinstance(error, ApiError):
            http_status = error.http_status
        record.attempt(attempt, latency_ms=elapsed_ms(started), error=error, http_status=http_status)
        return error

    # -- chat (not streamed) ---------------------------------------------------------------------

    def chat_result(self, record: RequestRecord, attempt: int, started: float, response: httpx.Response) -> ChatResult:
        """Turn one attempt's answer into a result (recording the attempt and the usage), or raise."""
        return self.answer(record, attempt, started, response.status_code, response.headers, response.content)

    def answer(self, record: RequestRecord, attempt: int, started: float, status: int, headers: Mapping[str, str],
               body: bytes, *, relayed: bool = False) -> ChatResult:
        """:meth:`chat_result` for any HTTP stack: status, headers (case-insensitive lookups of
        ``x-generation-id``) and the whole body. The gateway's upstream leg is not httpx.

        ``relayed``: the body goes to a client as it came (the gateway): the attempt and the usage
        are recorded exactly the same, the result carries no answer fields (text, tool calls...)."""
        if status >= 400:
            raise self.fail(record, attempt, started, self.http_error(status, headers, body), status)
        try:
            doc = parse_json(body, "chat answer")
            if "error" in doc and "choices" not in doc:
                raise self.http_error(status, headers, body)
            parsed = parse_chat(doc, header_generation_id=headers.get("x-generation-id"), relayed=relayed)
        except OpenRouterError as bad:
            raise self.fail(record, attempt, started, bad, status) from None
        latency = elapsed_ms(started)
        partial = choice_error(doc)
        record.attempt(
            attempt, latency_ms=latency, error=partial, http_status=status,
            generation_id=parsed.generation_id, served_model=parsed.served_model, provider=parsed.provider,
        )
        cost = record.usage(parsed.usage, served_model=parsed.served_model, provider=parsed.provider,
                            generation_id=parsed.generation_id)
        if partial is not None:
            raise partial  # billed partial output: recorded above, surfaced now
        tokens = parsed.usage.completion_tokens
        return ChatResult(  # grouped: the answer, who served it, timing, the request's accounting
            **parsed.answer(), usage=parsed.usage,
            model=record.model, served_model=parsed.served_model, provider=parsed.provider,
            generation_id=parsed.generation_id,
            latency_ms=latency, tokens_per_s=tokens / (latency / 1000.0) if tokens and latency > 0 else None,
            attempts=attempt, fallback_index=record.fallback_index, cost_usd=cost.cost_usd, cost_source=cost.source,
            request_id=record.request_id,
        )

    # -- metadata endpoints ----------------------------------------------------------------------

    def json_answer(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """The JSON object of a metadata answer, or its typed error."""
        if response.status_code >= 400:
            error = self.http_error(response.status_code, response.headers, response.content)
            if isinstance(error, AuthError):
                raise AuthError(
                    "OpenRouter rejected the API key", http_status=error.http_status, metadata=error.metadata
                )
            raise error
        return parse_json(response.content, what)
