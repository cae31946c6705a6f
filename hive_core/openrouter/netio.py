"""The async pool's socket: an ``asyncio.Protocol`` that reads like a stream, for :mod:`.pool_async`.

httpcore's asyncio backend goes through anyio (a cancel scope per read and write, a dict of
lambdas per ``get_extra_info``); under 32 requests in flight that was a measurable part of each
request's CPU. This protocol keeps what arrived in a buffer and wakes the one reader; a server's
close is an ``eof_received`` callback, so "is this idle connection still usable" costs no system
call. It speaks httpcore's stream interface (as the sync pool's httpcore ``SyncStream`` does) and
raises the pool's own errors (:mod:`.neterrors`): no httpx or httpcore is imported with it.

Only the async pool uses it: the sync twin reads plain sockets (httpcore's ``SyncBackend``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from hive_core.openrouter import neterrors

__all__ = ["AsyncSocketStream", "open_stream"]

#: stop reading from the socket while this much is buffered and unread (TCP pushes back)
HIGH_WATER = 256 * 1024


class AsyncSocketStream(asyncio.Protocol):
    """One TCP (or TLS) connection: ``read``, ``write``, ``close`` and ``readable``."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._error: BaseException | None = None
        self._reader: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._paused = False
        #: when the read waiting now times out (None: no read is waiting), and the one timer that
        #: enforces it (see :meth:`read`)
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._lost: asyncio.Future[None] | None = None  # done once the connection is gone

    # -- protocol callbacks (the loop calls them) ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > HIGH_WATER and self._transport is not None and not self._paused:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close our side too: the server will not read another request

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def _wake(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    # -- the stream ------------------------------------------------------------------------------

    @property
    def readable(self) -> bool:
        """Bytes or the server's close arrived: an idle connection in this state is not reusable."""
        return bool(self._buffer) or self._eof

    def get_extra_info(self, info: str) -> object:
        """``is_readable`` (httpcore's name), and the transport's own extra info (``peername``, ...)."""
        if info == "is_readable":
            return self.readable
        return None if self._transport is None else self._transport.get_extra_info(info)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` (at least one), or ``b""`` once the server closed; nothing within
        ``timeout`` seconds is :class:`~.neterrors.ReadTimeout`.

        The timeout is a deadline that one timer per connection enforces (:meth:`_expire`), not an
        ``asyncio.timeout`` per read: that scheduled and cancelled a timer for every wait, about
        2 us each, once per SSE read of a stream (a sixth of the gateway's CPU per relayed chunk).
        Reads follow each other long before the timer fires, so it is moved, if at all, once per
        ``timeout`` seconds."""
        if not self._buffer and not self._eof:
            loop = asyncio.get_running_loop()
            self._reader = waiter = loop.create_future()
            if timeout is not None:
                self._deadline = deadline = loop.time() + timeout
                timer = self._timer
                if timer is None or timer.when() > deadline:  # none yet, or set for a longer timeout
                    if timer is not None:
                        timer.cancel()
                    self._timer = loop.call_at(deadline, self._expire)
            try:
                await waiter
            finally:
                self._reader = None
                self._deadline = None
        if not self._buffer:
            if self._error is not None:
                raise neterrors.ReadError(str(self._error) or type(self._error).__name__)
            return b""
        data = bytes(self._buffer[:max_bytes])
        del self._buffer[:max_bytes]
        if self._paused and len(self._buffer) <= HIGH_WATER and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data

    def _expire(self) -> None:
        """The timer: the waiting read's deadline passed (it times out), or is later (the timer
        waits for it), or no read waits (the timer ends; the next read sets another)."""
        self._timer = None
        deadline, reader = self._deadline, self._reader
        if deadline is None or reader is None or reader.done():
            return
        loop = asyncio.get_running_loop()
        if loop.time() < deadline:
            self._timer = loop.call_at(deadline, self._expire)
            return
        reader.set_exception(neterrors.ReadTimeout("timed out reading the response"))

    def read_buffered(self) -> bytes:
        """What arrived and was not read yet (``b""``: nothing), without waiting."""
        data = bytes(self._buffer)
        self._buffer.clear()
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data

    async def write(self, data: bytes, timeout: float | None = None) -> None:
        """Hand ``data`` to the socket; waits (up to ``timeout``) only while the kernel pushes back."""
        if self._transport is None or self._transport.is_closing():
            raise neterrors.WriteError("the connection is closed")
        self._transport.write(data)
        writable = self._writable
        if writable is not None:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(writable)
            except TimeoutError:
                raise neterrors.WriteTimeout("timed out sending the request") from None

    def close(self) -> None:
        """Close now (a TLS close finishes in the background)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()


    async def wait_closed(self, timeout: float) -> None:
        """Until the connection is gone after :meth:`close` (a TLS close sends its close_notify in
        the background: a loop that ends first leaves the socket open), at most ``timeout`` seconds."""
        lost = self._lost
        if lost is None or lost.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(lost)


async def open_stream(host: str, port: int, *, ssl_context: ssl.SSLContext | None,
                      timeout: float | None) -> AsyncSocketStream:
    """Connect (and handshake, with ``ssl_context``) within ``timeout``; the pool's connect errors."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            _, stream = await loop.create_connection(
                AsyncSocketStream, host, port, ssl=ssl_context, server_hostname=host if ssl_context else None)
    except TimeoutError:
        raise neterrors.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
    except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
        raise neterrors.ConnectError(str(exc) or type(exc).__name__) from exc
    return stream
