"""The gateway's access log: one logfmt line per request, an :class:`~hive_gateway.observe.Observer`.

    time=2026-06-01T12:00:00.123Z method=POST path=/v1/chat/completions status=200 ms=812.4
    request_id=0197... key=k_3f2a app=support model=openai/gpt-4o-mini stream=true ttft_ms=231.0
    tokens=42+117 cost=0.000077 error=-

(one line; wrapped here). logfmt, so ``grep``, Loki, Vector and friends split it without a parser.
``tokens=`` (prompt+completion) and ``cost=`` (USD) are what the request's ``usage`` events bill,
however it ended (an error after some tokens too; ``0+0`` and ``-`` when nothing was billed).
What a line never holds: the prompt or the answer (a :class:`RequestSummary` has neither), a key
(only the virtual key's public id; anything shaped like a key is ``[redacted]``), a query string (the part of a URL where keys end up by mistake),
control characters (a client cannot forge a second line). Values with spaces or quotes are quoted.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from functools import lru_cache
from typing import TextIO

from hive_core.clock import Clock, system_clock
from hive_gateway.observe import RequestSummary

__all__ = ["AccessLog", "format_line"]

#: characters a bare logfmt value may hold; anything else is quoted
_BARE = re.compile(r"[A-Za-z0-9_.:/+@~-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: what an OpenRouter key or a virtual key looks like, wherever a client typed one (a path, an app name)
_SECRET = re.compile(r"(sk-[A-Za-z0-9_-]{8,}|hk-[A-Za-z0-9_-]{8,})")
#: longest value written: a client-chosen path, app or model cannot make a line unbounded
MAX_VALUE = 200


def _value(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)[:MAX_VALUE]
    if "sk-" in text or "hk-" in text:  # substring tests first: the regex runs on the rare suspect value
        text = _SECRET.sub("[redacted]", text)
    if _BARE.fullmatch(text):
        return text
    text = _CONTROL.sub("?", text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


@lru_cache(maxsize=1024)
def _repeated(value: str | None) -> str:
    """:func:`_value` of what repeats from request to request (method, path, key, app, model, error
    class): checked and quoted once, then a dict lookup (bounded: a client cycling paths only evicts)."""
    return _value(value)


def format_line(summary: RequestSummary, *, at: str) -> str:
    """The log line of one request (no newline); ``at`` is the UTC time it ended."""
    path = summary.path.split("?", 1)[0]
    stream = ""
    if summary.stream:
        ttft = "-" if summary.ttft_s is None else f"{summary.ttft_s * 1000:.1f}"
        stream = f" stream=true ttft_ms={ttft} chunks={summary.chunks}"
    cost = "-" if summary.cost_usd is None else f"{summary.cost_usd:.6f}"
    return (f"time={at} method={_repeated(summary.method)} path={_repeated(path)} status={summary.status} "
            f"ms={summary.latency_s * 1000:.1f} request_id={_value(summary.request_id)} "
            f"key={_repeated(summary.key_id)} app={_repeated(summary.app)} model={_repeated(summary.model)}{stream} "
            f"tokens={summary.prompt_tokens}+{summary.completion_tokens} cost={cost} "
            f"error={_repeated(summary.error_class)}")


class AccessLog:
    """Writes a line per finished request to ``stream``, flushed (so ``tail -f`` follows it) once
    per turn of the event loop: the lines of the requests that ended in one turn go out in one
    write, not one system call each. Outside a running loop a line is written at once; the server
    calls :meth:`flush` after its last request."""

    def __init__(self, stream: TextIO, *, clock: Clock = system_clock) -> None:
        self.stream = stream
        self.clock = clock  # aware UTC, as every Clock
        self._second: datetime | None = None
        self._prefix = ""
        self._lines: list[str] = []
        self._scheduled: asyncio.Handle | None = None

    def started(self, *, stream: bool) -> None:
        """Nothing to log until the request ends."""

    def finished(self, summary: RequestSummary) -> None:
        """Write the request's line (at the end of this turn of the loop)."""
        now = self.clock()
        second = now.replace(microsecond=0)
        if second != self._second:  # strftime once a second, not once a request
            self._second, self._prefix = second, second.strftime("%Y-%m-%dT%H:%M:%S")
        at = f"{self._prefix}.{now.microsecond // 1000:03d}Z"
        self._lines.append(format_line(summary, at=at) + "\n")
        if self._scheduled is not None:
            return
        try:
            self._scheduled = asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop: at once
            self.flush()

    def flush(self) -> None:
        """Write the lines gathered so far."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._lines:
            text = "".join(self._lines)
            self._lines.clear()
            self.stream.write(text)
            self.stream.flush()
