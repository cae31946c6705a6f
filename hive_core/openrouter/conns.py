# Generated from conns_async.py by .ci/unasync.py; do not edit: edit conns_async.py, then run `python .ci/unasync.py`.
"""The clients' connection pool, without httpx: per-origin stacks of idle HTTP/1.1 connections,
O(1) acquire and release.

httpx's default transport is httpcore's pool, which on every request start and every response
close rescans all queued requests against all connections (and counts idle connections per
connection): with 32 requests in flight that scan, an anyio cancel scope per socket call and a
failed ``import sniffio`` per pool event (when sniffio is not installed, httpcore retries the
import each time) cost a bare ``httpx.Client`` 7-8 ms of CPU per request against the local
emulator. Here each origin keeps a stack of idle HTTP/1.1 connections (the most recently used
first), a request that finds none opens one while under ``max_connections`` (closing an idle
connection of another origin when the pool is full of them) or queues, first come first served,
until a connection or a free slot is handed to it (``pool`` timeout: :class:`.neterrors.PoolTimeout`).

A connection goes back to its stack only when its response was read to the end and neither side
asked to close; a response closed half-read, a failed or cancelled request, a server's close
(seen before reuse) each close the connection and free its slot, so the pool is full again after
any of them. The HTTP/1.1 conversation is :mod:`.http11`'s (h11's generic state machine cost a
quarter of a completion's CPU).

Two users: the clients' httpx transport (:class:`.pool_async.PoolTransport`) and the
gateway's upstream leg (:mod:`hive_gateway.upstream`), which sends prebuilt request bytes and reads
the body piece by piece. Neither httpx nor httpcore is imported here (the async side): a gateway
worker would carry both (~5 MB) for nothing. ``conns.py``, the sync twin, is generated from this
file by ``.ci/unasync.py``; it reads httpcore's plain sockets.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping

# httpcore's plain sockets
import httpcore

from hive_core.openrouter import neterrors
from hive_core.openrouter.http11 import END, NEED_DATA, Head, RemoteProtocolError, ResponseParser

__all__ = ["DEFAULT_PORTS", "END_WAIT_S", "Connection", "ConnectionPool", "Key", "default_ssl_context"]

Key = tuple[bytes, bytes, int]  # scheme, host, port
READ_SIZE = 64 * 1024
DEFAULT_PORTS = {b"http": 80, b"https": 443}
#: seconds a finished stream waits for its body's end, to keep the connection (it comes at once,
#: unless the server misbehaves: then the connection is closed)
END_WAIT_S = 0.25
#: seconds a closing pool waits for its connections' TLS closes (a local close takes microseconds)
CLOSE_WAIT_S = 1.0


def default_ssl_context() -> ssl.SSLContext:
    """What ``httpx.create_ssl_context()`` builds: certifi's CA bundle, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` when set."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class Connection:
    """One HTTP/1.1 connection: :mod:`.http11`'s request bytes and response parser over one socket stream."""

    def __init__(self, key: Key, stream: httpcore.NetworkStream) -> None:
        self.key = key
        self.idle_since = 0.0
        self._stream = stream
        self._parser = ResponseParser()

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


class ConnectionPool:
    """Per-origin stacks of idle HTTP/1.1 connections (HTTP/1.1 only).

    ``max_connections`` in use and idle together (``None``: unbounded), ``max_idle`` kept idle
    (``None``: as many), ``keepalive_expiry`` seconds an idle one is trusted (``None``: forever).
    ``ssl_context``: for https origins (default: :func:`default_ssl_context`, built at the first
    https connection).
    """

    def __init__(self, max_connections: int | None = None, max_idle: int | None = None,
                 keepalive_expiry: float | None = None, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max = max_connections if max_connections is not None else 1 << 30
        self._max_idle = max_idle if max_idle is not None else self._max
        self._expiry = keepalive_expiry
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

    def close(self) -> None:
        """Close the idle connections; those in use close when they are released."""
        with self._lock:
            self._closed = True
            closed = [conn for stack in self._idle.values() for conn in stack]
            for conn in closed:
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
                    raise neterrors.PoolTimeout(
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
                self._ssl = default_ssl_context()
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
