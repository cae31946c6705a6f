# Generated from pool_async.py by .ci/unasync.py; do not edit: edit pool_async.py, then run `python .ci/unasync.py`.
"""The clients' connection pool: an httpx transport with O(1) acquire and release.

httpx's default transport is httpcore's pool, which on every request start and every response
close rescans all queued requests against all connections (and counts idle connections per
connection): with 32 requests in flight that scan, an anyio cancel scope per socket call and a
failed ``import sniffio`` per pool event (when sniffio is not installed, httpcore retries the
import each time) cost a bare ``httpx.Client`` 7-8 ms of CPU per request against the local
emulator. Here each origin keeps a stack of idle HTTP/1.1 connections (the most recently used
first), a request that finds none opens one while under ``max_connections`` (closing an idle
connection of another origin when the pool is full of them) or queues, first come first served,
until a connection or a free slot is handed to it (``pool`` timeout: ``httpx.PoolTimeout``).

A connection goes back to its stack only when its response was read to the end and neither side
asked to close; a response closed half-read, a failed or cancelled request, a server's close
(seen before reuse) each close the connection and free its slot, so the pool is full again after
any of them. The HTTP/1.1 conversation is :mod:`.http11`'s (h11's generic state machine cost a
quarter of a completion's CPU), written over a stream whose errors are httpcore's; both come out
as httpx's (:func:`httpx_errors`), so the clients' error handling
(:func:`hive_core.openrouter.errors.translate_transport_error`) is the same as before.

``pool.py``, the sync twin, is generated from this file by ``.ci/unasync.py``.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager

import httpcore
import httpx

from hive_core.openrouter.http11 import (
    END,
    NEED_DATA,
    Head,
    LocalProtocolError,
    RemoteProtocolError,
    ResponseParser,
    has_token,
    request_bytes,
)

__all__ = ["Connection", "PoolTransport", "ResponseBody", "httpx_errors"]

Key = tuple[bytes, bytes, int]  # scheme, host, port
READ_SIZE = 64 * 1024
#: the most a response closed early may still send before its connection is reused (else closed)
DRAIN_LIMIT = 64 * 1024
_DEFAULT_PORTS = {b"http": 80, b"https": 443}

_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    RemoteProtocolError: httpx.RemoteProtocolError,
    LocalProtocolError: httpx.LocalProtocolError,
}


@contextmanager
def httpx_errors(request: httpx.Request) -> Generator[None, None, None]:
    """Raise the stream's and the parser's exceptions as the httpx ones they stand for (as httpx's own
    transport does), carrying ``request``."""
    try:
        yield
    except tuple(_ERRORS) as exc:
        mapped = next(_ERRORS[cls] for cls in type(exc).__mro__ if cls in _ERRORS)
        raise mapped(str(exc) or type(exc).__name__, request=request) from exc
    except (httpcore.TimeoutException, httpcore.NetworkError) as exc:
        raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc


class Connection:
    """One HTTP/1.1 connection: :mod:`.http11`'s request bytes and response parser over one socket stream."""

    def __init__(self, key: Key, stream: httpcore.NetworkStream) -> None:
        self.key = key
        self.idle_since = 0.0
        self._stream = stream
        self._parser = ResponseParser()

    def send(self, request: httpx.Request, write_timeout: float | None,
                   read_timeout: float | None) -> Head:
        """Send ``request`` (head and body in one write) and read the response head."""
        assert isinstance(request.stream, Iterable)
        body = b"".join([chunk for chunk in request.stream])  # a completion's body is small
        headers = request.headers.raw
        method = request.method.encode("ascii")
        data = request_bytes(method, request.url.raw_path, headers, body)
        return self.send_bytes(data, write_timeout, read_timeout, head_request=method == b"HEAD",
                                     close=has_token(headers, b"connection", b"close"))

    def send_bytes(self, data: bytes, write_timeout: float | None, read_timeout: float | None, *,
                         head_request: bool = False, close: bool = False) -> Head:
        """Send a whole request as its bytes (:func:`~.http11.request_bytes`'s, or a head it checked
        once and a caller sends again and again: the gateway's) and read the response head.
        ``head_request``: a HEAD; ``close``: the request says ``Connection: close``."""
        self._parser.start(head_request=head_request, close=close)
        self._stream.write(data, write_timeout)
        parser = self._parser
        while (head := parser.head()) is None:
            parser.feed(self._stream.read(READ_SIZE, read_timeout))
        return head

    def body(self, read_timeout: float | None) -> Iterator[bytes]:
        """The response body's pieces, to its end."""
        while (piece := self.next_piece(read_timeout)) is not None:
            yield piece

    def next_piece(self, read_timeout: float | None) -> bytes | None:
        """The response body's next piece as it arrived, or ``None`` at its end."""
        parser = self._parser
        while True:
            piece = parser.body()
            if piece is END:
                return None
            if piece is NEED_DATA:
                parser.feed(self._stream.read(READ_SIZE, read_timeout))
            else:
                assert isinstance(piece, bytes)
                return piece

    def ended(self) -> bool:
        """For a response closed before its end was read: whether that end already arrived (read
        from the socket, or buffered by the protocol), so the rest is dropped and the connection is
        clean for the next request, without waiting for anything. A stream closed at its ``[DONE]``
        usually has only the body's last chunk marker left."""
        parser = self._parser
        try:
            while (piece := parser.body()) is not END:
                if piece is NEED_DATA:
                    return False
        except RemoteProtocolError:
            return False
        return self.reusable()

    def reusable(self) -> bool:
        """Whether the exchange ended cleanly (both sides done, nothing more arrived): then the
        connection is ready for the next request."""
        return self._parser.reusable and not self._stream.get_extra_info("is_readable")

    def fresh(self, now: float, expiry: float | None) -> bool:
        """Still worth reusing: not expired, and the server has not closed it (or sent anything)."""
        return (expiry is None or now - self.idle_since < expiry) and not self._stream.get_extra_info("is_readable")

    def close(self) -> None:
        self._stream.close()


class _Waiter:
    """A request queued for a connection: it is handed one of its origin, or a free slot (``None``)."""

    __slots__ = ("conn", "given", "key", "wake")

    def __init__(self, key: Key) -> None:
        self.key = key
        self.given = False
        self.conn: Connection | None = None
        # the waiting thread blocks on an event
        self.wake = threading.Event()

    def give(self, conn: Connection | None) -> bool:
        """Hand over ``conn`` (or a slot); ``False`` when the waiter already gave up (async)."""
        # a timed-out thread looks at ``given`` under the pool's lock
        self.wake.set()
        self.given, self.conn = True, conn
        return True

    def wait(self, timeout: float | None) -> None:
        """Until handed something, or ``timeout`` (``TimeoutError``)."""
        if not self.wake.wait(timeout):
            raise TimeoutError


class PoolTransport(httpx.BaseTransport):
    """An httpx transport over per-origin stacks of idle HTTP/1.1 connections (HTTP/1.1 only).

    ``limits``: ``max_connections`` in use and idle together (``None``: unbounded),
    ``max_keepalive_connections`` kept idle, ``keepalive_expiry`` seconds an idle one is trusted.
    ``ssl_context``: for https origins (default: httpx's, built at the first https connection).
    """

    def __init__(self, limits: httpx.Limits | None = None, *, ssl_context: ssl.SSLContext | None = None) -> None:
        limits = limits or httpx.Limits()
        self._max = limits.max_connections if limits.max_connections is not None else 1 << 30
        self._max_idle = limits.max_keepalive_connections if limits.max_keepalive_connections is not None else self._max
        self._expiry = limits.keepalive_expiry
        self._ssl = ssl_context
        self._lock = threading.Lock()  # the sync pool is shared by threads; uncontended, it costs ~0.1 us
        self._idle: dict[Key, list[Connection]] = {}
        self._idle_count = 0
        self._open = 0  # connections in use or idle, plus slots being connected
        self._waiters: deque[_Waiter] = deque()
        self._closed = False
        # httpcore's plain-socket backend
        self._backend = httpcore.SyncBackend()

    @property
    def connections(self) -> tuple[int, int]:
        """(open, idle) connections now: for tests and diagnostics."""
        return self._open, self._idle_count

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port or _DEFAULT_PORTS.get(url.raw_scheme, 80))
        with httpx_errors(request):
            conn = self.acquire(key, timeouts)
            try:
                head = conn.send(request, timeouts.get("write"), timeouts.get("read"))
            except BaseException:
                self.release(conn, reusable=False)
                raise
        return httpx.Response(
            head.status, headers=head.headers,
            stream=ResponseBody(self, conn, request, timeouts.get("read")),
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    def close(self) -> None:
        """Close the idle connections; those in use close when their response is closed."""
        with self._lock:
            self._closed = True
            for stack in self._idle.values():
                for conn in stack:
                    conn.close()
                    self._open -= 1
            self._idle.clear()
            self._idle_count = 0

    # -- acquire and release (every change of the pool's state is under its lock) ----------------

    def acquire(self, key: Key, timeouts: Mapping[str, float | None]) -> Connection:
        """A connection to ``key``'s origin (an idle one, a new one, or the first one given back
        while the pool is full): ``timeouts``' ``pool`` and ``connect``, as httpx names them. The
        caller gives it back with :meth:`release` whatever happens."""
        with self._lock:
            conn = self._pop_idle(key)
            if conn is not None:
                return conn
            waiter = None
            if self._open < self._max or self._evict_idle():
                self._open += 1  # a slot: connect below, outside the lock
            else:
                waiter = _Waiter(key)
                self._waiters.append(waiter)
        if waiter is not None:
            self._wait(waiter, timeouts.get("pool"))
            if waiter.conn is not None:
                return waiter.conn
        try:
            return self._connect(key, timeouts.get("connect"))
        except BaseException:
            with self._lock:
                self._free_slot()
            raise

    def _wait(self, waiter: _Waiter, timeout: float | None) -> None:
        try:
            waiter.wait(timeout)
        except TimeoutError:
            with self._lock:
                if not waiter.given:
                    self._waiters.remove(waiter)
                    raise httpcore.PoolTimeout(
                        f"no connection free within {timeout} s (all {self._max} in use)") from None
        except BaseException:  # cancelled (or interrupted) while queued: what it was handed goes back
            with self._lock:
                if waiter.given:
                    if waiter.conn is not None:
                        self._put(waiter.conn)
                    else:
                        self._free_slot()
                else:
                    self._waiters.remove(waiter)
            raise

    def _connect(self, key: Key, timeout: float | None) -> Connection:
        scheme, raw_host, port = key
        host = raw_host.decode("ascii")
        context = None
        if scheme == b"https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            context = self._ssl
        # TLS over the connected socket
        stream = self._backend.connect_tcp(host, port, timeout=timeout)
        if context is not None:
            stream = stream.start_tls(context, server_hostname=host, timeout=timeout)
        return Connection(key, stream)

    def release(self, conn: Connection, reusable: bool) -> None:
        """``conn`` back to the pool: ``reusable`` only when its response was read to the end (or its
        end already arrived: :meth:`Connection.ended`); otherwise it is closed and its slot freed."""
        with self._lock:
            if reusable:
                self._put(conn)
            else:
                conn.close()
                self._free_slot()

    def _put(self, conn: Connection) -> None:
        """A clean connection: to the first waiter (its slot, if it waits for another origin), or idle."""
        while self._waiters:
            waiter = self._waiters.popleft()
            same = waiter.key == conn.key
            if waiter.give(conn if same else None):
                if not same:
                    conn.close()
                return
        if self._closed or self._idle_count >= self._max_idle:
            conn.close()
            self._open -= 1
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, []).append(conn)
        self._idle_count += 1

    def _free_slot(self) -> None:
        """A connection closed (or never opened): its slot to the first waiter, else back to the pool."""
        while self._waiters:
            if self._waiters.popleft().give(None):
                return
        self._open -= 1

    def _pop_idle(self, key: Key) -> Connection | None:
        stack = self._idle.get(key)
        now = time.monotonic()
        while stack:
            conn = stack.pop()
            self._idle_count -= 1
            if conn.fresh(now, self._expiry):
                return conn
            conn.close()  # the server closed it, or it idled too long
            self._free_slot()
        return None

    def _evict_idle(self) -> bool:
        """Close one idle connection (of another origin: this one's stack is empty) to free its slot."""
        for stack in self._idle.values():
            if stack:
                stack.pop(0).close()  # the least recently used
                self._idle_count -= 1
                self._open -= 1
                return True
        return False


class ResponseBody(httpx.SyncByteStream):
    """A response's body; gives its connection back when read to the end, closes it otherwise."""

    def __init__(self, pool: PoolTransport, conn: Connection, request: httpx.Request,
                 read_timeout: float | None) -> None:
        self._pool = pool
        self._conn: Connection | None = conn
        self._request = request
        self._timeout = read_timeout

    def __iter__(self) -> Iterator[bytes]:
        conn = self._conn
        if conn is None:
            raise httpx.StreamClosed()
        with httpx_errors(self._request):
            try:
                for chunk in conn.body(self._timeout):  # noqa: UP028 (an `for` in pool_async.py)
                    yield chunk
            except BaseException:  # a failed read, a cancel, or a caller that stopped reading
                self._done(reusable=False)
                raise
        self._done(conn.reusable())

    def drain(self, timeout: float) -> None:
        """Read what is left of the body (dropped) while each read comes within ``timeout`` seconds
        and it stays under :data:`DRAIN_LIMIT` bytes; the connection is reused if the end came,
        closed otherwise. For a stream ended by its last event, with only the body's end to come."""
        conn = self._conn
        if conn is None:
            return
        left = DRAIN_LIMIT
        try:
            for piece in conn.body(timeout):
                left -= len(piece)
                if left < 0:
                    break
        except (httpcore.TimeoutException, httpcore.NetworkError, RemoteProtocolError):
            pass  # closed below: not worth waiting for
        except BaseException:
            self._done(reusable=False)
            raise
        self._done(left >= 0 and conn.reusable())

    def close(self) -> None:
        # read to the end already released it; otherwise it is clean only if its end is here already
        conn = self._conn
        self._done(reusable=conn is not None and conn.ended())

    def _done(self, reusable: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn, reusable)
