"""The pool's HTTP/1.1 codec: every response framing read whole and split at every byte, h11 as the
reference for what a valid answer means, and malformed bytes always a typed error."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive_core.openrouter.http11 import (
    END,
    NEED_DATA,
    Head,
    LocalProtocolError,
    RemoteProtocolError,
    ResponseParser,
    request_bytes,
)

NAMES = st.sampled_from([b"Content-Type", b"x-generation-id", b"Server", b"Set-Cookie", b"cf-ray", b"Via"])
VALUES = st.from_regex(rb"\A[!-~](?:[ !-~]{0,30}[!-~])?\Z", fullmatch=True)
HEADERS = st.lists(st.tuples(NAMES, VALUES), max_size=6)


def read_all(parser: ResponseParser, pieces: list[bytes]) -> tuple[Head, bytes]:
    """Feed ``pieces`` one by one (``b""`` closes), asking for the head, then the body, as the pool does."""
    feed = iter(pieces)
    while (head := parser.head()) is None:
        parser.feed(next(feed))
    body = b""
    while (piece := parser.body()) is not END:
        if piece is NEED_DATA:
            parser.feed(next(feed))
        else:
            assert isinstance(piece, bytes) and piece  # never an empty piece
            body += piece
    return head, body


def response(status: int, headers: list[tuple[bytes, bytes]], body: bytes, framing: str, sizes: list[int]) -> bytes:
    """A response as a server writes it: ``framing`` "length", "chunked" (chunks of ``sizes``) or "close"."""
    if framing == "length":
        headers = [*headers, (b"Content-Length", str(len(body)).encode())]
        payload = body
    elif framing == "chunked":
        headers = [*headers, (b"Transfer-Encoding", b"chunked")]
        chunks, rest = [], body
        for size in sizes:
            if rest:
                chunks.append(b"%x;ext=1\r\n%s\r\n" % (len(rest[:size]), rest[:size]))
                rest = rest[size:]
        if rest:
            chunks.append(b"%X\r\n%s\r\n" % (len(rest), rest))
        payload = b"".join(chunks) + b"0\r\nx-trailer: t\r\n\r\n"
    else:
        payload = body
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return b"HTTP/1.1 %d OK\r\n%s\r\n%s" % (status, head, payload)


@settings(max_examples=60, deadline=None)
@given(headers=HEADERS, body=st.binary(max_size=80), framing=st.sampled_from(["length", "chunked", "close"]),
       sizes=st.lists(st.integers(1, 30), max_size=5), continue_first=st.booleans())
def test_every_framing_reads_the_same_at_every_split(headers: list[tuple[bytes, bytes]], body: bytes, framing: str,
                                                     sizes: list[int], continue_first: bool) -> None:
    data = response(200, headers, body, framing, sizes)
    if continue_first:
        data = b"HTTP/1.1 100 Continue\r\n\r\n" + data
    tail = [b""] if framing == "close" else []
    for split in range(len(data) + 1):
        parser = ResponseParser()
        parser.start(head_request=False, close=False)
        pieces = [p for p in (data[:split], data[split:]) if p] + tail
        head, got = read_all(parser, pieces)
        assert (head.status, head.reason, head.http_version, got) == (200, b"OK", b"1.1", body)
        assert head.headers[:len(headers)] == headers
        assert parser.reusable is (framing != "close")


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from([
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n",
]), at=st.integers(0, 80), junk=st.binary(min_size=1, max_size=3), cut=st.booleans())
def test_malformed_bytes_are_a_typed_error_or_what_h11_reads(base: bytes, at: int, junk: bytes, cut: bool) -> None:
    """Corrupt a valid answer (bytes replaced or cut off, then the server closes): ours raises
    RemoteProtocolError, or reads what h11 reads from the same bytes; never another exception."""
    at = min(at, len(base))
    data = base[:at] if cut else base[:at] + junk + base[at + len(junk):]
    ours: object
    try:
        parser = ResponseParser()
        parser.start(head_request=False, close=False)
        head, body = read_all(parser, [data, b""])
        ours = (head.status, head.headers, body)
    except RemoteProtocolError:
        ours = "error"
    reference = h11.Connection(h11.CLIENT)
    reference.send(h11.Request(method="GET", target="/", headers=[("Host", "h")]))
    reference.send(h11.EndOfMessage())
    reference.receive_data(data)
    reference.receive_data(b"")
    theirs: object = "error"
    try:
        events = []
        while not isinstance(event := reference.next_event(), h11.EndOfMessage | h11.ConnectionClosed):
            assert event is not h11.NEED_DATA
            events.append(event)
        final = next(e for e in events if isinstance(e, h11.Response))
        theirs = (final.status_code, list(final.headers.raw_items()),
                  b"".join(bytes(e.data) for e in events if isinstance(e, h11.Data)))
    except (h11.RemoteProtocolError, StopIteration):
        pass
    # h11 forgives what ours refuses (bare LF line ends, obs-fold): only the other way is a bug
    assert ours == "error" or ours == theirs


@pytest.mark.parametrize(("head_request", "data", "body", "reusable"), [
    (True, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", b"", True),  # HEAD: no body whatever it says
    (False, b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", b"", True),
    (False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"", True),
    (False, b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok", b"ok", False),
    (False, b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", False),  # 1.0: no keep-alive
    (False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP", b"ok", False),  # bytes after the end
])
def test_what_ends_a_body_and_what_ends_a_connection(head_request: bool, data: bytes, body: bytes,
                                                     reusable: bool) -> None:
    parser = ResponseParser()
    parser.start(head_request=head_request, close=False)
    assert read_all(parser, [data])[1] == body
    assert parser.reusable is reusable


@pytest.mark.parametrize(("data", "message"), [
    (b"", "without sending a response"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", "middle of the response head"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", "end of the body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "chunked body"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", "framing"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok", "framing"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk-size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n", "CRLF"),
    (b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", "malformed"),
    (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "response head"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: " + b"a" * 17_000, "longer than"),
])
def test_broken_answers_are_remote_protocol_errors(data: bytes, message: str) -> None:
    parser = ResponseParser()
    parser.start(head_request=False, close=False)
    with pytest.raises(RemoteProtocolError, match=message):
        read_all(parser, [data, b""])


def test_request_bytes_are_what_h11_writes() -> None:
    headers = [(b"Host", b"openrouter.ai"), (b"Authorization", b"Bearer k"), (b"Content-Length", b"2")]
    reference = h11.Connection(h11.CLIENT)
    want = reference.send(h11.Request(method="POST", target="/api/v1/chat/completions", headers=headers))
    want = (want or b"") + (reference.send(h11.Data(data=b"{}")) or b"") + (reference.send(h11.EndOfMessage()) or b"")
    assert request_bytes(b"POST", b"/api/v1/chat/completions", headers, b"{}") == want
    chunked = request_bytes(b"POST", b"/", [(b"Host", b"h"), (b"Transfer-Encoding", b"chunked")], b"abc")
    assert chunked.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")


@pytest.mark.parametrize(("headers", "body"), [
    ([(b"X-Title", b"evil\r\nInjected: 1")], b""),
    ([(b"Bad Name", b"v")], b""),
    ([(b"X", b" padded")], b""),
    ([(b"Content-Length", b"3")], b"{}"),
    ([], b"{}"),  # a body with no framing header
])
def test_a_request_http_forbids_is_refused_before_sending(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        request_bytes(b"POST", b"/", [(b"Host", b"h"), *headers], body)
