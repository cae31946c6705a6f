"""HTTP/1.1 for the clients' pool, sans-I/O: a request's bytes out, one response at a time in.

h11 (which the pool used before) builds, validates and dispatches an event object per head, piece
and end, through a generic state machine for both roles: under 32 requests in flight that was a
quarter of a completion's CPU. The pool needs less: a client that sends one request at a time on a
connection (no pipelining, no upgrades) and reads its answer. Here the request head is written and
checked in one pass (one regular expression over the header block), a response head is parsed in
one pass, and the body comes out as plain ``bytes`` with the framing of RFC 9112 section 6.3:
no body (HEAD, 1xx, 204, 304), ``Transfer-Encoding: chunked``, ``Content-Length``, or until the
server closes. As strict as h11 where it matters, stricter where h11 is lenient for servers Hive
never talks to (an obs-fold, a bare LF, a transfer coding other than ``chunked``, a
``Content-Length`` list): any of those is a :class:`RemoteProtocolError`, a bad request header a
:class:`LocalProtocolError`, before a byte is sent.

    parser = ResponseParser()
    data = request_bytes(b"GET", b"/", [(b"Host", b"example.org")], b"")   # send it, then:
    parser.start(head_request=False, close=False)
    parser.feed(received)           # b"" when the server closed
    head = parser.head()            # None: feed more
    piece = parser.body()           # bytes, NEED_DATA, or END
    parser.reusable                 # after END: the next request may use this connection
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, NamedTuple

__all__ = ["END", "NEED_DATA", "Head", "LocalProtocolError", "RemoteProtocolError", "ResponseParser", "has_token",
           "request_bytes"]

#: the longest response head (or chunk-size line, or trailer block) accepted: h11's limit
MAX_HEAD = 16 * 1024


class LocalProtocolError(Exception):
    """The request cannot be sent as given (a header name or value HTTP forbids, a body that
    disagrees with its framing)."""


class RemoteProtocolError(Exception):
    """The server's answer breaks HTTP/1.1 (or closed before the answer was complete)."""


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: :meth:`ResponseParser.head` / :meth:`~ResponseParser.body` need more bytes
NEED_DATA: Final = _Marker("NEED_DATA")
#: the response's body ended
END: Final = _Marker("END")


class Head(NamedTuple):
    """A final (non-1xx) response's status line and headers (names as sent)."""

    status: int
    reason: bytes
    http_version: bytes
    headers: list[tuple[bytes, bytes]]


_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_VALUE = rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?"  # h11's field-value: no CR, LF, NUL; trimmed
_REQUEST_HEADERS = re.compile(rb"(?:" + _TOKEN + rb": " + _VALUE + rb"\r\n)*")
_TARGET = re.compile(rb"[^\x00-\x20\x7f]+")
_METHOD = re.compile(_TOKEN)
_STATUS = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: ((?:[ \t]|[^\x00\s])*))?")
_RESPONSE_HEADERS = re.compile(rb"(?:" + _TOKEN + rb":[ \t]*" + _VALUE + rb"[ \t]*\r\n)*")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?[ \t]*")


def has_token(headers: Sequence[tuple[bytes, bytes]], name: bytes, token: bytes) -> bool:
    """Whether header ``name`` (lower case) lists ``token`` (lower case) in any of its values."""
    return any(n.lower() == name and token in (t.strip() for t in v.lower().split(b",")) for n, v in headers)


def request_bytes(method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bytes:
    """The request's head and ``body`` as sent: framed by its ``Content-Length`` (which must be
    ``len(body)``), or chunked (``Transfer-Encoding: chunked``, one chunk), or no body at all."""
    block = b"".join([name + b": " + value + b"\r\n" for name, value in headers])
    # every line valid, and as many lines as headers: a CR LF inside a value would pass as two lines
    if _REQUEST_HEADERS.fullmatch(block) is None or block.count(b"\n") != len(headers) \
            or _TARGET.fullmatch(target) is None or _METHOD.fullmatch(method) is None:
        raise LocalProtocolError("a request header, its method or its target has characters HTTP forbids")
    if has_token(headers, b"transfer-encoding", b"chunked"):
        framed = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
    else:
        lengths = {v.strip() for n, v in headers if n.lower() == b"content-length"}
        if lengths != ({str(len(body)).encode()} if lengths or body else set()):
            raise LocalProtocolError(f"the body is {len(body)} bytes, its Content-Length says {sorted(lengths)}")
        framed = body
    return b"%s %s HTTP/1.1\r\n%s\r\n%s" % (method, target, block, framed)


class ResponseParser:
    """One connection's answers, one at a time: :meth:`start` after each request is sent."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False
        self._head_request = False
        self._close = False
        self._left = 0  # body bytes still to come: of the Content-Length, or of the current chunk
        self._framing = ""  # "", "none", "length", "chunked", "close"; "" until the head is read
        self._chunk_state = "size"  # chunked: "size", "data", "crlf", "trailers"
        self.done = False

    def start(self, *, head_request: bool, close: bool) -> None:
        """A new request was sent (``head_request``: a HEAD; ``close``: it said ``Connection: close``)."""
        self._head_request, self._close = head_request, close
        self._framing, self._chunk_state, self.done = "", "size", False

    def feed(self, data: bytes) -> None:
        """Bytes the server sent; ``b""`` when it closed."""
        if data:
            self._buf += data
        else:
            self._eof = True

    @property
    def reusable(self) -> bool:
        """The answer ended, neither side asked to close, nothing else arrived: ready for the next."""
        return self.done and not self._close and not self._buf and not self._eof

    def head(self) -> Head | None:
        """The final response head (1xx ones are skipped), or ``None`` until it is all here."""
        while True:
            buf = self._buf
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise RemoteProtocolError(f"the response head is longer than {MAX_HEAD} bytes")
                if self._eof:
                    raise RemoteProtocolError("Server disconnected without sending a response." if not buf
                                              else "the server closed in the middle of the response head")
                return None
            status_line, _, block = bytes(buf[:end + 2]).partition(b"\r\n")
            del buf[:end + 4]
            status = _STATUS.fullmatch(status_line)
            if status is None or _RESPONSE_HEADERS.fullmatch(block) is None:
                raise RemoteProtocolError("malformed response head")
            headers = [(name, value.strip(b" \t")) for name, _, value in
                       (line.partition(b":") for line in block.split(b"\r\n")[:-1])]
            code = int(status[2])
            if code < 200:
                if code == 101:
                    raise RemoteProtocolError("the server switched protocols, which this client never asks for")
                continue  # 100 Continue and the like
            version = status[1]
            self._close = self._close or version != b"1.1"
            self._frame(code, headers)
            return Head(code, status[3] or b"", version, headers)

    def _frame(self, code: int, headers: list[tuple[bytes, bytes]]) -> None:
        """How the body is delimited (RFC 9112 section 6.3), and whether the server closes after it
        (``Connection: close``): one look at each header name."""
        codings = []
        lengths = set()
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"transfer-encoding":
                codings.append(value)
            elif lowered == b"content-length":
                lengths.add(value)
            elif lowered == b"connection" and b"close" in (t.strip() for t in value.lower().split(b",")):
                self._close = True
        if self._head_request or code in (204, 304):
            self._framing = "none"
        elif codings:
            if [c.lower() for c in codings] != [b"chunked"] or lengths:
                raise RemoteProtocolError(f"unsupported framing: Transfer-Encoding {codings!r}, "
                                          f"Content-Length {sorted(lengths)}")
            self._framing = "chunked"
        elif lengths:
            (length,) = lengths if len(lengths) == 1 else (b"",)
            if not length.isdigit() or len(length) > 18:
                raise RemoteProtocolError(f"bad Content-Length {sorted(lengths)}")
            self._framing, self._left = "length", int(length)
        else:
            self._framing, self._close = "close", True
        if self._framing == "none" or (self._framing == "length" and not self._left):
            self._framing, self.done = "none", True

    def body(self) -> bytes | _Marker:
        """The next piece of the body (``bytes``), :data:`NEED_DATA`, or :data:`END`."""
        if self.done:
            return END
        framing, buf = self._framing, self._buf
        if framing == "length":
            if not buf:
                return self._need("the server closed before the end of the body (Content-Length)")
            piece = bytes(buf[:self._left])
            del buf[:self._left]
            self._left -= len(piece)
            if not self._left:
                self.done = True
            return piece
        if framing == "close":
            if buf:
                piece = bytes(buf)
                buf.clear()
                return piece
            if self._eof:
                self.done = True
                return END
            return NEED_DATA
        if framing == "chunked":
            return self._chunked()
        raise RuntimeError("body() before head()")

    def _need(self, closed: str) -> _Marker:
        if self._eof:
            raise RemoteProtocolError(closed)
        return NEED_DATA

    def _chunked(self) -> bytes | _Marker:
        buf = self._buf
        closed = "the server closed before the end of the chunked body"
        while True:
            state = self._chunk_state
            if state == "data":
                if not buf:
                    return self._need(closed)
                piece = bytes(buf[:self._left])
                del buf[:self._left]
                self._left -= len(piece)
                if not self._left:
                    self._chunk_state = "crlf"
                return piece
            if state == "crlf":
                if len(buf) < 2:
                    return self._need(closed)
                if buf[:2] != b"\r\n":
                    raise RemoteProtocolError("a chunk does not end with CRLF")
                del buf[:2]
                self._chunk_state = "size"
                continue
            if state == "size":
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise RemoteProtocolError("a chunk-size line is too long")
                    return self._need(closed)
                size = _CHUNK_SIZE.fullmatch(buf, 0, end)
                if size is None:
                    raise RemoteProtocolError("malformed chunk-size line")
                self._left = int(size[1], 16)
                del buf[:end + 2]
                self._chunk_state = "data" if self._left else "trailers"
                continue
            # trailers: header lines until an empty one; read and dropped
            if buf[:2] == b"\r\n":
                del buf[:2]
                self.done = True
                return END
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise RemoteProtocolError("the trailers are too long")
                return self._need(closed)
            if _RESPONSE_HEADERS.fullmatch(buf, 0, end + 2) is None:
                raise RemoteProtocolError("malformed trailers")
            del buf[:end + 4]
            self.done = True
            return END
