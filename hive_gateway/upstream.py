"""The gateway's leg to OpenRouter: Hive's own connection pool, raw, and its exceptions as Hive's errors.

Not httpx, the library's client: measured on this machine at concurrency 32, an aiohttp server
relaying through an httpx ``AsyncClient`` spent 10-15x the CPU of one relaying through an aiohttp
``ClientSession`` (half of it in httpcore's pool scan per request). Nor aiohttp's client any more,
which the gateway used until then: the library's own pool
(:class:`~hive_core.openrouter.conns_async.AsyncConnectionPool`, O(1) acquire and release, the
sans-I/O HTTP/1.1 of :mod:`hive_core.openrouter.http11`), driven without httpx's request and
response objects, does the same exchange in 240-264 K instructions where aiohttp's client took
431 K (counted by callgrind at concurrency 32), about a tenth of the gateway's work per JSON request. The
wire format, retries and recording stay ``hive_core``'s
(:class:`~hive_core.openrouter.core.ClientCore`, :class:`~hive_core.openrouter.stream.StreamRun`):
only bytes move here.

It asks for no content coding (``Accept-Encoding: identity``: on a gateway beside its apps the
bytes saved cost more CPU than they save time); an answer compressed all the same (gzip or
deflate) is decompressed, any other coding is a malformed answer.

The OpenRouter key lives in the request head built once here and nowhere else; every message made
from an exception is scrubbed of it (:func:`hive_core.openrouter.errors.scrub`). Those messages reach
the gateway's clients, so they say "OpenRouter", never where the upstream is: ``OPENROUTER_BASE_URL``
may be an internal proxy's, with a user and password in it (:meth:`Upstream.translate`).
"""

from __future__ import annotations

import asyncio
import os
import time
import zlib
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from hive_core.errors import (
    Cancelled,
    ConfigError,
    ConnectTimeout,
    MalformedResponse,
    NetworkError,
    OpenRouterError,
    ReadTimeout,
    StreamTruncated,
    Unreachable,
)
from hive_core.openrouter import neterrors
from hive_core.openrouter.conns_async import (
    DEFAULT_PORTS,
    END_WAIT_S,
    AsyncConnection,
    AsyncConnectionPool,
    Key,
)
from hive_core.openrouter.core import DEFAULT_POOL, ClientCore
from hive_core.openrouter.errors import scrub
from hive_core.openrouter.http11 import LocalProtocolError, RemoteProtocolError, request_bytes
from hive_core.openrouter.protocol import build_headers
from hive_core.openrouter.retry import acall_with_retries

if TYPE_CHECKING:
    from collections.abc import Callable

    from hive_core.openrouter.results import ChatResult
    from hive_core.openrouter.tracking import RequestRecord
    from hive_core.settings import Settings

__all__ = ["CLIENT_GONE", "UPSTREAM_ERRORS", "Answer", "Exchange", "Undecodable", "Upstream"]

#: why a request ends when the client went away (the handler is cancelled: aiohttp's handler_cancellation)
CLIENT_GONE = "the client disconnected"

#: what the chat endpoint's URL is, under the base URL
CHAT_PATH = "/chat/completions"
#: what a client can do when OpenRouter cannot be reached (only the operator can fix where it is)
OPERATOR = "retry later, or tell the gateway's operator"


class Undecodable(Exception):
    """An answer in a content coding Hive does not decode, or whose compressed bytes are broken."""


#: what the pool and an :class:`Exchange` raise for a failed exchange (:meth:`Upstream.translate` names it)
UPSTREAM_ERRORS = (neterrors.TransportError, RemoteProtocolError, Undecodable)

#: seconds an idle upstream connection is trusted (httpx's default, as the library's clients)
KEEPALIVE_S = 5.0

_DECODERS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


class Exchange:
    """One request's answer on a pooled connection: its status, headers (lower-case names), then
    its body piece by piece as it arrives (:meth:`piece`) or whole (:meth:`read`). The connection
    goes back to the pool at the body's end (a stream done at its last event: :meth:`finish`); a
    failure, a cancel or :meth:`close` closes it, which is what stops OpenRouter generating."""

    __slots__ = ("_conn", "_decoder", "_pool", "_read_timeout", "headers", "status")

    def __init__(self, pool: AsyncConnectionPool, conn: AsyncConnection, status: int,
                 raw_headers: list[tuple[bytes, bytes]], read_timeout: float | None) -> None:
        self._pool = pool
        self._conn: AsyncConnection | None = conn
        self._read_timeout = read_timeout
        self.status = status
        self.headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw_headers}
        coding = self.headers.get("content-encoding", "identity").strip().lower()
        self._decoder = None
        if coding not in ("identity", ""):
            if coding not in _DECODERS:
                self.close()
                raise Undecodable(f"the answer's Content-Encoding is {coding!r} (Hive decodes gzip and deflate)")
            self._decoder = zlib.decompressobj(_DECODERS[coding])

    async def piece(self) -> bytes | None:
        """The body's next piece (never empty), or ``None`` at its end."""
        conn = self._conn
        if conn is None:
            return None
        try:
            while True:
                piece = await conn.next_piece(self._read_timeout)
                if piece is None:
                    self._conn = None
                    self._pool.release(conn, conn.reusable())
                    return self._finish()
                if self._decoder is not None:
                    piece = self._decoder.decompress(piece)
                if piece:
                    return piece
        except zlib.error as exc:
            self.close()
            raise Undecodable(f"the answer's compressed body is broken: {exc}") from None
        except BaseException:  # a failed read, a cancel
            self.close()
            raise

    def _finish(self) -> bytes | None:
        decoder = self._decoder
        if decoder is None:
            return None
        self._decoder = None
        rest = decoder.flush()
        if not decoder.eof:
            raise Undecodable("the answer's compressed body ended before its end")
        return rest or None

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while (piece := await self.piece()) is not None:
            parts.append(piece)
        return b"".join(parts)

    def release_ended(self) -> bool:
        """Whether the body's end already arrived (read or buffered), the connection then given back
        to the pool; ``False`` leaves it as it is. Nothing is waited for."""
        conn = self._conn
        if conn is None:
            return True
        if not conn.ended():
            return False
        self._conn = None
        self._pool.release(conn, reusable=True)
        return True

    async def finish(self, timeout: float) -> None:
        """What is left of the body (after ``data: [DONE]``: its end) read and dropped, for up to
        ``timeout`` seconds, so that the connection serves the next request; anything else (more
        than the end, an error, nothing in time, a cancel) closes the connection."""
        if self.release_ended():
            return
        try:
            async with asyncio.timeout(timeout):
                while await self.piece() is not None:  # the end releases it; a piece after [DONE] is dropped
                    pass
        except (TimeoutError, *UPSTREAM_ERRORS):
            pass  # not worth waiting for: closed below
        self.close()  # when the end came, already given back

    def close(self) -> None:
        """Close the connection now (a cancel or a failure: OpenRouter stops generating)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn, reusable=False)


class Answer:
    """A non-streamed answer as received: relayed to the client byte for byte."""

    __slots__ = ("body", "generation_id", "status")

    def __init__(self, status: int, body: bytes, generation_id: str | None) -> None:
        self.status = status
        self.body = body
        self.generation_id = generation_id


def _reason(exc: BaseException, secret: str) -> str:
    """Why an exchange failed, in words that name no place: Hive's own protocol messages, or the
    operating system's words for the socket error behind ``exc`` ("Connection refused"). Never the
    exception's text itself, which carries addresses (asyncio's "Connect call failed ('10.0.0.7',
    8080)", "timed out connecting to proxy.internal:8080") that the gateway's clients are not told."""
    if isinstance(exc, RemoteProtocolError | Undecodable):
        return scrub(str(exc), secret)
    import socket
    import ssl

    cause = exc.__cause__
    if isinstance(cause, ssl.SSLError):  # its reason is OpenSSL's name, its message may name the host
        return f"TLS: {cause.reason or 'the handshake failed'}"
    if isinstance(cause, socket.gaierror):  # the resolver's words, not the name it looked up
        return f"DNS: {cause.strerror}"
    if isinstance(cause, OSError) and cause.errno:
        return os.strerror(cause.errno)
    return ""


class _Where(NamedTuple):
    origin: Key
    netloc: bytes  # the Host header's value
    target: bytes  # path and query


def _where(url: str) -> _Where:
    """Where an ``http(s)`` URL points (the settings checked its shape)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").encode("idna")
    netloc = parts.netloc.rpartition("@")[2].encode("idna")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Where((scheme.encode(), host, parts.port or DEFAULT_PORTS.get(scheme.encode(), 80)), netloc, target.encode())


def request_heads(settings: Settings) -> dict[bool, bytes]:
    """Every request's bytes up to its ``Content-Length`` value (which, the blank line and the body
    follow), for a JSON answer (``False``) and a stream (``True``), checked once: per request,
    :func:`~hive_core.openrouter.http11.request_bytes` cost 5 us, a hundredth of a request's CPU. A
    header HTTP cannot carry (a setting with a line break) is a :class:`~hive_core.errors.ConfigError`
    here, which ``hive gateway --check`` reports, not a failed request later."""
    url = _where(settings.base_url + CHAT_PATH)
    sent = build_headers(settings.require_api_key(), app_url=settings.app_url, app_title=settings.app_title)
    headers = [(b"Host", url.netloc), (b"Accept-Encoding", b"identity"),
               *((name.encode("latin-1"), value.encode()) for name, value in sent.items())]
    heads = {}
    for stream, accept in ((False, b"application/json"), (True, b"text/event-stream")):
        try:
            whole = request_bytes(b"POST", url.target, [*headers, (b"Accept", accept), (b"Content-Length", b"0")], b"")
        except LocalProtocolError:
            raise ConfigError("a header sent to OpenRouter (from OPENROUTER_API_KEY, HIVE_APP_URL or HIVE_APP_TITLE) "
                              "has characters HTTP forbids, such as a line break: fix that setting") from None
        heads[stream] = whole.removesuffix(b"0\r\n\r\n")
    return heads


class Upstream:
    """Hive's connection pool for one event loop, the request head built once, and the core that
    records every attempt."""

    def __init__(self, settings: Settings, core: ClientCore,
                 report: Callable[[BaseException], None] | None = None) -> None:
        self.core = core
        self._secret = settings.require_api_key()
        self._origin = _where(core.url(CHAT_PATH)).origin  # not the URL: it may hold a user and password
        scheme, host, port = self._origin
        #: where the upstream is, for the operator's lines only (no user or password)
        self._place = f"{scheme.decode()}://{host.decode()}:{port}"
        #: the operator's line for a failure only the operator can fix (an unreachable or silent upstream)
        self._report = report
        self._heads = request_heads(settings)
        # read: between two reads (a stalled stream), not the whole answer; pool: a full pool is waited for
        self._timeouts = {"connect": settings.connect_timeout_s, "read": settings.read_timeout_s,
                          "write": settings.read_timeout_s, "pool": None}
        limit = DEFAULT_POOL * 4
        self.pool = AsyncConnectionPool(limit, limit, KEEPALIVE_S)
        self._finishing: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Close the pool (a stream's connection still waiting for its body's end is closed)."""
        for task in self._finishing:
            task.cancel()
        await asyncio.gather(*self._finishing, return_exceptions=True)
        await self.pool.aclose()

    def keep(self, stream: Exchange) -> None:
        """A stream read to its ``data: [DONE]``: its connection goes back to the pool once the
        body's end comes, which OpenRouter (and the emulator) send in a write of their own. When it
        is not here yet, it is waited for (up to ``END_WAIT_S``) in a task of its own, so neither the
        client nor its leaving (which cancels the handler) cuts it short: measured against the
        emulator, two streams in three would otherwise close their connection, and the next
        request would pay a new TCP (and TLS) handshake."""
        if stream.release_ended():
            return
        task = asyncio.get_running_loop().create_task(stream.finish(END_WAIT_S))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def open(self, body: bytes, *, stream: bool = False) -> Exchange:
        """Send ``body`` to the chat endpoint and read the answer's head (``stream``: asking for SSE).
        Raises one of :data:`UPSTREAM_ERRORS` (or is cancelled) with the connection given back."""
        timeouts = self._timeouts
        data = b"%s%d\r\n\r\n%s" % (self._heads[stream], len(body), body)
        conn = await self.pool.acquire(self._origin, timeouts)
        try:
            head = await conn.send_bytes(data, timeouts["write"], timeouts["read"])
        except BaseException:
            self.pool.release(conn, reusable=False)
            raise
        return Exchange(self.pool, conn, head.status, head.headers, timeouts["read"])

    def translate(self, exc: BaseException, *, opened: bool = False) -> OpenRouterError:
        """One of :data:`UPSTREAM_ERRORS` as a typed, key-free error; ``opened``: tokens were already
        relayed, so a broken connection is a cut answer (never re-sent), not a retryable failure.
        Its message is the client's (:func:`hive_gateway.errors.describe`): it names neither the
        upstream's URL nor its address (:func:`_reason`), and asks the client for what it can do."""
        reason = _reason(exc, self._secret)
        why = f" ({reason})" if reason else ""
        error: OpenRouterError
        if isinstance(exc, neterrors.ConnectTimeout):
            error = ConnectTimeout(f"timed out connecting to OpenRouter: {OPERATOR}")
        elif isinstance(exc, neterrors.ConnectError):
            error = Unreachable(f"cannot reach OpenRouter{why}: {OPERATOR}")
        elif isinstance(exc, neterrors.TransportTimeout):
            error = ReadTimeout("OpenRouter stopped sending: retry the request")
        elif isinstance(exc, Undecodable):
            error = MalformedResponse(f"OpenRouter sent an undecodable answer{why}")
        else:  # a read or write that failed, a connection closed or an answer cut mid-way
            error = NetworkError(f"the connection to OpenRouter broke{why}: retry the request")
        if self._report is not None and isinstance(error, ConnectTimeout | Unreachable | ReadTimeout):
            self._report(self._for_operator(error, why))
        if opened and isinstance(error, NetworkError) and not isinstance(error, ReadTimeout):
            return StreamTruncated(f"the stream broke before [DONE]: the answer is incomplete ({error})")
        return error

    def _for_operator(self, error: OpenRouterError, why: str) -> OpenRouterError:
        """The operator's version of ``error``: where the upstream is, and the setting to look at."""
        if isinstance(error, ReadTimeout):
            return ReadTimeout(f"OpenRouter at {self._place} sent nothing for HIVE_READ_TIMEOUT "
                               f"({self._timeouts['read']} s): raise it if its answers are that slow")
        if isinstance(error, ConnectTimeout):
            return ConnectTimeout(f"timed out connecting to OpenRouter at {self._place}: check the network and "
                                  "OPENROUTER_BASE_URL, or raise HIVE_CONNECT_TIMEOUT")
        return Unreachable(f"cannot reach OpenRouter at {self._place}{why}: check the network and OPENROUTER_BASE_URL")

    async def chat(self, record: RequestRecord, body: bytes, kept: list[Answer]) -> ChatResult:
        """One non-streamed completion with the retry policy; each attempt recorded by the core.
        The last answer received is appended to ``kept`` (relayed as is, a partial failure too)."""
        core = self.core

        async def attempt(n: int) -> ChatResult:
            started = time.perf_counter()
            try:
                answer = await self.open(body)
                raw = await answer.read()
            except asyncio.CancelledError:  # the client went away (or the drain deadline passed)
                core.fail(record, n, started, Cancelled(CLIENT_GONE))
                raise
            except UPSTREAM_ERRORS as exc:
                raise core.fail(record, n, started, self.translate(exc)) from exc
            headers = answer.headers
            kept[:] = [Answer(answer.status, raw, headers.get("x-generation-id"))]
            return core.answer(record, n, started, answer.status, headers, raw, relayed=True)

        return await acall_with_retries(attempt, core.policy)
