"""An incremental Server-Sent Events parser (WHATWG HTML "event stream interpretation").

Feed it bytes as they arrive, split anywhere; it returns the events completed so far::

    decoder = SSEDecoder()
    for chunk in response.iter_raw():
        for event in decoder.feed(chunk):
            ...
    decoder.close()          # True when the stream ended cleanly on an event boundary

What the spec asks and this does: lines end in CR, LF or CRLF (a CRLF split across two chunks is one
line end); lines starting with ``:`` are comments (OpenRouter's keep-alive ``: OPENROUTER PROCESSING``,
anywhere in the stream); ``data`` lines of one event are joined with ``\\n``; one space after the
colon is dropped; a blank line dispatches; an event with no ``data`` is not dispatched; ``event``,
``id`` (unless it holds NUL) and ``retry`` (digits only) are kept; a leading UTF-8 BOM is skipped;
a half-received event at end of stream is discarded.

A JSON stream's reader wants only each event's ``data``: :meth:`SSEDecoder.feed_data` returns it as
the bytes received, with no event object and no UTF-8 decoding (the JSON decoder reads bytes).

Why it is fast: it splits whole chunks on ``\\n`` with ``bytes.split`` (C speed; the piece after the
last line end is the buffered incomplete line, so no search and no slicing), normalises CR only
when a chunk contains one, tests the one field OpenRouter sends (``data: ``) first, and decodes
UTF-8 once per event rather than once per line (or never, with ``feed_data``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SSEDecoder", "ServerSentEvent"]

_COLON = 58  # ord(":")
_SPACE = 32
_BOM = b"\xef\xbb\xbf"


class ServerSentEvent:
    """One dispatched event. ``event`` defaults to ``"message"``."""

    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, data: str, event: str = "message", id: str = "", retry: int | None = None) -> None:
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry

    def __repr__(self) -> str:
        return f"ServerSentEvent(event={self.event!r}, data={self.data!r}, id={self.id!r}, retry={self.retry!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (self.data, self.event, self.id, self.retry) == (other.data, other.event, other.id, other.retry)

    __hash__ = None  # type: ignore[assignment]  # mutable value object


class SSEDecoder:
    """Bytes in, :class:`ServerSentEvent` out. One instance per stream; not thread-safe."""

    __slots__ = ("_buf", "_data", "_event", "_first", "_last_id", "_pending_cr", "_retry", "comments")

    def __init__(self) -> None:
        self._buf = b""  # an incomplete last line
        self._data: list[bytes] = []  # data lines of the event being built
        self._event = b""
        self._last_id = ""  # the spec's "last event ID buffer": persists across events
        self._retry: int | None = None
        self._pending_cr = False  # the previous chunk ended in CR: a leading LF now is part of CRLF
        self._first = True
        #: comment lines seen (keep-alives); a cheap "still alive" signal for callers
        self.comments = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Parse ``chunk`` (any split of the stream) and return the events it completed."""
        return self._lines(self._split(chunk), True)

    def feed_data(self, chunk: bytes) -> list[bytes]:
        """:meth:`feed`, returning only each completed event's ``data``, undecoded.

        What a JSON stream's reader needs (StreamRun's): no event object per event, no UTF-8 decoding
        of text the JSON decoder reads from bytes anyway. Every event type is included, as ``feed``
        dispatches every type; ``id`` and ``retry`` are still tracked.
        """
        return self._lines(self._split(chunk), False)

    def _split(self, chunk: bytes) -> list[bytes]:
        """The complete lines ``chunk`` ends, line ends normalised; the rest waits in the buffer."""
        if self._first:
            if len(self._buf) + len(chunk) < 3 and _BOM.startswith(self._buf + chunk):
                self._buf += chunk  # could still be a BOM: wait for more bytes
                return []
            chunk = self._buf + chunk
            self._buf = b""
            self._first = False
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        if self._pending_cr or b"\r" in chunk:
            chunk = self._normalise(chunk)
        if self._buf:
            chunk = self._buf + chunk
        lines = chunk.split(b"\n")
        self._buf = lines.pop()  # what follows the last line end: an incomplete line, or b""
        return lines

    def _normalise(self, chunk: bytes) -> bytes:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = chunk.endswith(b"\r")
        return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def _lines(self, lines: list[bytes], events: bool) -> list[Any]:
        """Interpret complete lines; dispatched events as :class:`ServerSentEvent` (``events``) or
        as their raw ``data``."""
        out: list[Any] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    if events:
                        out.append(self._dispatch())
                        data = self._data
                    else:
                        out.append(data[0] if len(data) == 1 else b"\n".join(data))
                        data.clear()
                self._event = b""  # the spec resets the type even when nothing is dispatched
            elif line.startswith(b"data: "):  # fast path: the only field OpenRouter sends
                data.append(line[6:])
            elif line[0] == _COLON:
                self.comments += 1
            else:
                self._field(line)
        return out

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)
        # any other field name is ignored, as the spec says

    def _dispatch(self) -> ServerSentEvent:
        data = self._data
        raw = data[0] if len(data) == 1 else b"\n".join(data)
        event = ServerSentEvent(
            raw.decode("utf-8", "replace"),
            self._event.decode("utf-8", "replace") if self._event else "message",
            self._last_id,
            self._retry,
        )
        self._data = []
        return event

    def close(self) -> bool:
        """End of stream. Returns True when it ended on an event boundary (nothing half-received).

        Whatever was pending (a line without its line end, an event without its blank line) is
        discarded, as the spec's end-of-file rule says.
        """
        clean = not self._buf and not self._data
        self._buf = b""
        self._data = []
        self._event = b""
        return clean
