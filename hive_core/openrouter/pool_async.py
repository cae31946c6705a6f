"""The clients' httpx transport: Hive's connection pool (:mod:`.conns_async`) behind httpx's API.

``httpx.AsyncClient`` / ``httpx.Client`` stay the clients' public face; under them, this transport
takes a connection from the pool, sends the request's bytes (:func:`~.http11.request_bytes`) and
hands httpx a response whose body gives the connection back when read to the end
(:class:`AsyncResponseBody`). The pool's errors and the parser's come out as the httpx exceptions
they stand for (:func:`httpx_errors`), as httpx's own transport raises them, so the clients' error
handling (:func:`hive_core.openrouter.errors.translate_transport_error`) is the same as with
httpcore's pool (why not that pool: :mod:`.conns_async`).

``pool.py``, the sync twin, is generated from this file by ``.ci/unasync.py``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator, Generator
from contextlib import contextmanager

if True:  # ASYNC: the async pool's sockets raise the pool's own errors only
    pass
else:  # httpcore's sockets raise httpcore's
    import httpcore
import httpx

from hive_core.openrouter import neterrors
from hive_core.openrouter.conns_async import DEFAULT_PORTS, END_WAIT_S, AsyncConnection, AsyncConnectionPool
from hive_core.openrouter.http11 import (
    Head,
    LocalProtocolError,
    RemoteProtocolError,
    has_token,
    request_bytes,
)

__all__ = ["END_WAIT_S", "AsyncPoolTransport", "AsyncResponseBody", "httpx_errors"]

#: the most a response closed early may still send before its connection is reused (else closed)
DRAIN_LIMIT = 64 * 1024

_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    neterrors.ConnectTimeout: httpx.ConnectTimeout,
    neterrors.ReadTimeout: httpx.ReadTimeout,
    neterrors.WriteTimeout: httpx.WriteTimeout,
    neterrors.PoolTimeout: httpx.PoolTimeout,
    neterrors.ConnectError: httpx.ConnectError,
    neterrors.ReadError: httpx.ReadError,
    neterrors.WriteError: httpx.WriteError,
    RemoteProtocolError: httpx.RemoteProtocolError,
    LocalProtocolError: httpx.LocalProtocolError,
}
#: every error the sockets raise (those without a class of their own above are httpx's NetworkError)
_SOCKET_ERRORS: tuple[type[Exception], ...] = (neterrors.TransportError,)
if True:  # ASYNC: nothing more
    pass
else:  # the sync sockets' errors
    _ERRORS.update({
        httpcore.ConnectTimeout: httpx.ConnectTimeout,
        httpcore.ReadTimeout: httpx.ReadTimeout,
        httpcore.WriteTimeout: httpx.WriteTimeout,
        httpcore.ConnectError: httpx.ConnectError,
        httpcore.ReadError: httpx.ReadError,
        httpcore.WriteError: httpx.WriteError,
    })
    _SOCKET_ERRORS += (httpcore.TimeoutException, httpcore.NetworkError)
#: what a drain gives up on (the connection is closed: not worth waiting for)
_NOT_WORTH_WAITING: tuple[type[Exception], ...] = (*_SOCKET_ERRORS, RemoteProtocolError)


@contextmanager
def httpx_errors(request: httpx.Request) -> Generator[None, None, None]:
    """Raise the pool's and the parser's exceptions as the httpx ones they stand for (as httpx's own
    transport does), carrying ``request``."""
    try:
        yield
    except tuple(_ERRORS) as exc:
        mapped = next(_ERRORS[cls] for cls in type(exc).__mro__ if cls in _ERRORS)
        raise mapped(str(exc) or type(exc).__name__, request=request) from exc
    except _SOCKET_ERRORS as exc:
        raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc


class AsyncPoolTransport(httpx.AsyncBaseTransport):
    """An httpx transport over Hive's pool (:class:`~.conns_async.AsyncConnectionPool`; HTTP/1.1 only).

    ``limits``: ``max_connections`` in use and idle together (``None``: unbounded),
    ``max_keepalive_connections`` kept idle, ``keepalive_expiry`` seconds an idle one is trusted.
    ``ssl_context``: for https origins (default: httpx's default one, as
    :func:`~.conns_async.default_ssl_context` builds it at the first https connection).
    """

    def __init__(self, limits: httpx.Limits | None = None, *, ssl_context: ssl.SSLContext | None = None) -> None:
        limits = limits or httpx.Limits()
        self._pool = AsyncConnectionPool(limits.max_connections, limits.max_keepalive_connections,
                                         limits.keepalive_expiry, ssl_context=ssl_context)

    @property
    def connections(self) -> tuple[int, int]:
        """(open, idle) connections now: for tests and diagnostics."""
        return self._pool.connections

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port or DEFAULT_PORTS.get(url.raw_scheme, 80))
        with httpx_errors(request):
            conn = await self._pool.acquire(key, timeouts)
            try:
                head = await _send(conn, request, timeouts.get("write"), timeouts.get("read"))
            except BaseException:
                self._pool.release(conn, reusable=False)
                raise
        return httpx.Response(
            head.status, headers=head.headers,
            stream=AsyncResponseBody(self._pool, conn, request, timeouts.get("read")),
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their response is closed."""
        await self._pool.aclose()


async def _send(conn: AsyncConnection, request: httpx.Request, write_timeout: float | None,
                read_timeout: float | None) -> Head:
    """Send ``request`` (head and body in one write) on ``conn`` and read the response head."""
    assert isinstance(request.stream, AsyncIterable)
    body = b"".join([chunk async for chunk in request.stream])  # a completion's body is small
    headers = request.headers.raw
    method = request.method.encode("ascii")
    data = request_bytes(method, request.url.raw_path, headers, body)
    return await conn.send_bytes(data, write_timeout, read_timeout, head_request=method == b"HEAD",
                                 close=has_token(headers, b"connection", b"close"))


class AsyncResponseBody(httpx.AsyncByteStream):
    """A response's body; gives its connection back when read to the end, closes it otherwise."""

    def __init__(self, pool: AsyncConnectionPool, conn: AsyncConnection, request: httpx.Request,
                 read_timeout: float | None) -> None:
        self._pool = pool
        self._conn: AsyncConnection | None = conn
        self._request = request
        self._timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            raise httpx.StreamClosed()
        with httpx_errors(self._request):
            try:
                async for chunk in conn.body(self._timeout):
                    yield chunk
            except BaseException:  # a failed read, a cancel, or a caller that stopped reading
                self._done(reusable=False)
                raise
        self._done(conn.reusable())

    async def drain(self, timeout: float) -> None:
        """Read what is left of the body (dropped) while each read comes within ``timeout`` seconds
        and it stays under :data:`DRAIN_LIMIT` bytes; the connection is reused if the end came,
        closed otherwise. For a stream ended by its last event, with only the body's end to come."""
        conn = self._conn
        if conn is None:
            return
        left = DRAIN_LIMIT
        try:
            async for piece in conn.body(timeout):
                left -= len(piece)
                if left < 0:
                    break
        except _NOT_WORTH_WAITING:
            pass  # closed below: not worth waiting for
        except BaseException:
            self._done(reusable=False)
            raise
        self._done(left >= 0 and conn.reusable())

    async def aclose(self) -> None:
        # read to the end already released it; otherwise it is clean only if its end is here already
        conn = self._conn
        self._done(reusable=conn is not None and conn.ended())

    def _done(self, reusable: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn, reusable)
