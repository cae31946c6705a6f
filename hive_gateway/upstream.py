"""The gateway's leg to OpenRouter: one pooled aiohttp client, and its exceptions as Hive's errors.

Not httpx, the library's client: measured on this machine at concurrency 32, an aiohttp server
relaying through an httpx ``AsyncClient`` spent 10-15x the CPU of one relaying through an aiohttp
``ClientSession`` (half of it in httpcore's pool scan per request). The wire format, retries and
recording stay ``hive_core``'s (:class:`~hive_core.openrouter.core.ClientCore`,
:class:`~hive_core.openrouter.stream.StreamRun`): only bytes move here.

The OpenRouter key lives in the session's default headers and nowhere else; every message made
from an exception is scrubbed of it (:func:`hive_core.openrouter.errors.scrub`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import aiohttp

from hive_core.errors import (
    Cancelled,
    ConnectTimeout,
    MalformedResponse,
    NetworkError,
    OpenRouterError,
    ReadTimeout,
    Unreachable,
)
from hive_core.openrouter.core import DEFAULT_POOL, ClientCore
from hive_core.openrouter.errors import scrub
from hive_core.openrouter.retry import acall_with_retries

if TYPE_CHECKING:
    from hive_core.openrouter.results import ChatResult
    from hive_core.openrouter.tracking import RequestRecord
    from hive_core.settings import Settings

__all__ = ["CLIENT_GONE", "Answer", "Upstream", "is_upstream_error"]

#: why a request ends when the client went away (the handler is cancelled: aiohttp's handler_cancellation)
CLIENT_GONE = "the client disconnected"

#: what the chat endpoint's URL is, under the base URL
CHAT_PATH = "/chat/completions"


def is_upstream_error(exc: BaseException) -> bool:
    """Whether ``exc`` is what aiohttp raises for a failed exchange (translated by :meth:`Upstream.translate`)."""
    return isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError)


class Answer:
    """A non-streamed answer as received: relayed to the client byte for byte."""

    __slots__ = ("body", "generation_id", "status")

    def __init__(self, status: int, body: bytes, generation_id: str | None) -> None:
        self.status = status
        self.body = body
        self.generation_id = generation_id


class Upstream:
    """One ``aiohttp.ClientSession`` for one event loop, with the core that records every attempt."""

    def __init__(self, settings: Settings, core: ClientCore) -> None:
        self.core = core
        self.url = core.url(CHAT_PATH)
        self._secret = settings.require_api_key()
        # sock_read is the read timeout between bytes (a stalled stream), not the whole answer's
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout_s,
                                        sock_read=settings.read_timeout_s)
        connector = aiohttp.TCPConnector(limit=DEFAULT_POOL * 4, limit_per_host=0, enable_cleanup_closed=True)
        # No cookie jar, as the library's clients: OpenRouter sets no cookie a completion needs, and
        # one shared jar would hand one app's cookies to every other app's requests. (Not a speed-up:
        # counted by callgrind, the jar cost 0.3% of the upstream leg's instructions per request.)
        self.http = aiohttp.ClientSession(headers=core.headers, timeout=timeout, connector=connector,
                                          cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True,
                                          raise_for_status=False)

    async def close(self) -> None:
        """Close the pool."""
        await self.http.close()

    def translate(self, exc: BaseException, *, opened: bool = False) -> OpenRouterError:
        """An aiohttp exception as a typed, key-free error; ``opened``: tokens were already relayed,
        so a broken connection is a cut answer (never re-sent), not a retryable failure."""
        detail = scrub(str(exc) or type(exc).__name__, self._secret)
        where = f" (POST {self.url})"
        error: OpenRouterError
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            error = ConnectTimeout(f"timed out connecting to OpenRouter{where}: check the network and "
                                   "OPENROUTER_BASE_URL, or raise HIVE_CONNECT_TIMEOUT")
        elif isinstance(exc, aiohttp.ClientConnectorError):
            error = Unreachable(f"cannot reach OpenRouter{where}: {detail} (check the network and OPENROUTER_BASE_URL)")
        elif isinstance(exc, asyncio.TimeoutError):
            error = ReadTimeout(f"OpenRouter stopped sending{where}: retry, or raise HIVE_READ_TIMEOUT")
        elif isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
            error = NetworkError(f"the connection to OpenRouter broke{where}: {detail}")
        elif isinstance(exc, aiohttp.ClientResponseError):
            error = MalformedResponse(f"OpenRouter sent an unreadable answer{where}: {detail}")
        else:
            error = NetworkError(f"request to OpenRouter failed{where}: {detail}")
        if opened and isinstance(error, NetworkError) and not isinstance(error, ReadTimeout):
            from hive_core.errors import StreamTruncated

            return StreamTruncated(f"the stream broke before [DONE]: the answer is incomplete ({error})")
        return error

    async def chat(self, record: RequestRecord, body: bytes, kept: list[Answer]) -> ChatResult:
        """One non-streamed completion with the retry policy; each attempt recorded by the core.
        The last answer received is appended to ``kept`` (relayed as is, a partial failure too)."""
        core = self.core

        async def attempt(n: int) -> ChatResult:
            started = time.perf_counter()
            try:
                async with self.http.post(self.url, data=body) as response:
                    raw = await response.read()
                    status, headers = response.status, response.headers
            except asyncio.CancelledError:  # the client went away (or the drain deadline passed)
                core.fail(record, n, started, Cancelled(CLIENT_GONE))
                raise
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise core.fail(record, n, started, self.translate(exc)) from exc
            kept[:] = [Answer(status, raw, headers.get("x-generation-id"))]
            return core.answer(record, n, started, status, headers, raw, relayed=True)

        return await acall_with_retries(attempt, core.policy)
