"""A minimal HTTP/1.1 server on asyncio streams.

Only what the emulator needs, with full control over timing and disconnects: keep-alive,
``Content-Length`` and chunked request bodies, whole responses or chunked streams. A handler gets
the parsed :class:`Request` and an :class:`Exchange` and answers with ``send`` (a whole body),
``start_stream``/``write``/``end_stream`` (chunked), or ``close`` (drop the connection unanswered).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

__all__ = ["ClientGone", "Exchange", "Handler", "HttpServer", "Request"]

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
#: an idle keep-alive connection is closed after this long (real servers do the same)
IDLE_TIMEOUT_S = 120.0


class ClientGone(Exception):
    """The client closed the connection while we were answering."""


class _BadHttp(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Request:
    """One parsed request. Header names are lower-case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


Handler = Callable[[Request, "Exchange"], Awaitable[None]]

_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    # formatdate costs microseconds; one string per second is enough
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return b"HTTP/1.1 %d %s\r\n" % (status, reason.encode())


class Exchange:
    """The answer to one request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep_alive: bool) -> None:
        self._reader = reader
        self._writer = writer
        self.keep_alive = keep_alive
        self.started = False
        self.finished = False

    @property
    def client_gone(self) -> bool:
        """The client closed its side (it sends nothing while waiting for our answer, so EOF means gone)."""
        return self._writer.transport.is_closing() or self._reader.at_eof()

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        lines = [_status_line(status), b"Date: ", _http_date(), b"\r\n"]
        for name, value in headers:
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        if not self.keep_alive:
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def send(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """A whole response with ``Content-Length`` (headers and body in one write: no Nagle stalls)."""
        all_headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *(headers or [])]
        self._writer.write(self._head(status, all_headers) + body)
        self.finished = True

    def start_stream(
        self, status: int, *, content_type: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        """Send the head of a chunked response; follow with :meth:`write` and :meth:`end_stream`."""
        all_headers = [("Content-Type", content_type), ("Transfer-Encoding", "chunked"), *(headers or [])]
        self._writer.write(self._head(status, all_headers))

    async def write(self, data: bytes) -> None:
        """One chunk; raises :class:`ClientGone` when the client has hung up."""
        if self.client_gone:
            raise ClientGone()
        if data:
            self._writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            raise ClientGone() from exc

    async def end_stream(self) -> None:
        """The terminating zero-length chunk (skipped if the client already left with everything)."""
        if not self.client_gone:
            self._writer.write(b"0\r\n\r\n")
        self.finished = True

    def close(self) -> None:
        """Drop the connection after whatever was written (an unfinished answer)."""
        self.keep_alive = False

    async def wait_closed_by_client(self, timeout: float) -> None:
        """Send nothing until the client hangs up, or ``timeout`` seconds pass."""
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(timeout):
                while await self._reader.read(65536):
                    pass


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadHttp(400, "incomplete request head") from None
        return None  # clean close between requests
    except asyncio.LimitOverrunError:
        raise _BadHttp(431, "request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadHttp(400, "bad request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadHttp(400, "bad header line")
            headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    body = b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise _BadHttp(400, "bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BadHttp(413, "body too large")
        body = await reader.readexactly(length)
    url = urlsplit(target)
    return Request(method, url.path, dict(parse_qsl(url.query)), headers, body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadHttp(400, "bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        total += size
        if total > MAX_BODY_BYTES:
            raise _BadHttp(413, "body too large")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class HttpServer:
    """Serves ``handler`` on ``host:port`` (port 0 picks a free one) until :meth:`close`."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=MAX_HEADER_BYTES, backlog=512
        )

    async def close(self) -> None:
        """Stop listening and drop every open connection (streams in flight are cut)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_requests(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ClientGone):
            pass
        except asyncio.CancelledError:
            # close() cancelled us: end normally, asyncio's start_server callback would log a
            # cancelled task as an error on 3.11
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT_S):
                    request = await _read_request(reader)
            except TimeoutError:
                return
            except _BadHttp as exc:
                body = b'{"error":{"code":%d,"message":"%s"}}' % (exc.status, str(exc).encode())
                Exchange(reader, writer, keep_alive=False).send(exc.status, body)
                return
            if request is None:
                return
            exchange = Exchange(reader, writer, request.keep_alive)
            try:
                await self._handler(request, exchange)
            except ClientGone:
                return
            except Exception:
                traceback.print_exc(file=sys.stderr)
                if not exchange.started:
                    exchange.keep_alive = False
                    exchange.send(500, b'{"error":{"code":500,"message":"Internal Server Error"}}')
            if not exchange.finished or not exchange.keep_alive:
                await writer.drain()
                return
            await writer.drain()
