"""Interpreting OpenRouter's streamed chunks: text, reasoning, finish reason, usage, mid-stream errors.

Feed each SSE ``data`` payload to :meth:`ChunkReader.feed`; it returns the text piece the chunk
carried (``""`` for none). The protocol's real behaviour (see PROTOCOL.md section 3), not its docs:

* ``finish_reason`` is taken from the FIRST chunk that sets it; the usage chunk may repeat it.
* ``usage`` is taken from the chunk that has it, whatever its ``choices`` holds, and counted once.
* A top-level ``error`` key is a mid-stream error, whatever ``finish_reason`` says (often null),
  and that chunk may carry usage: it is kept (:attr:`ChunkReader.usage`) before
  :class:`~hive_core.errors.MidStreamError` is raised.
* ``data: [DONE]`` ends the stream; a stream that ends without it is truncated (the caller decides).
* A payload that is not a JSON object is :class:`~hive_core.errors.MalformedResponse`.
"""

from __future__ import annotations

import json
from typing import Any

from hive_core.errors import MalformedResponse, MidStreamError
from hive_core.openrouter.results import UsageInfo

__all__ = ["DONE", "ChunkReader", "mid_stream_error"]

DONE = "[DONE]"
_loads = json.loads


def mid_stream_error(error: Any) -> MidStreamError:
    """The typed error for an ``error`` object found inside a 200 answer (stream chunk or choice)."""
    if not isinstance(error, dict):
        return MidStreamError(str(error), code=None)
    code = error.get("code")
    message = error.get("message") or "provider error"
    return MidStreamError(str(message), code=code if isinstance(code, int | str) else None)


class ChunkReader:
    """State of one stream's chunks. Not thread-safe; one per stream attempt."""

    __slots__ = (
        "chunks", "done", "error", "finish_reason", "generation_id", "model", "pieces", "provider",
        "reasoning", "text", "usage",
    )

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.finish_reason: str | None = None
        self.usage: UsageInfo | None = None
        self.generation_id: str | None = None
        self.model: str | None = None
        self.provider: str | None = None
        #: data events received (``[DONE]`` excluded)
        self.chunks = 0
        #: text or reasoning pieces received: the running token estimate before usage arrives
        self.pieces = 0
        self.done = False
        self.error: MidStreamError | None = None

    def feed(self, data: str) -> str:
        """Interpret one ``data`` payload; returns its text piece (``""`` when it has none)."""
        if data == DONE:
            self.done = True
            return ""
        try:
            chunk = _loads(data)
        except ValueError as exc:
            raise MalformedResponse(f"stream chunk is not JSON: {data[:80]!r}") from exc
        if type(chunk) is not dict:
            raise MalformedResponse(f"stream chunk is not a JSON object: {data[:80]!r}")
        self.chunks += 1
        if self.generation_id is None:
            self.generation_id = chunk.get("id")
            self.model = chunk.get("model")
            self.provider = chunk.get("provider")
        usage = chunk.get("usage")
        if usage is not None and self.usage is None:
            self.usage = UsageInfo.from_openrouter(usage)
        if "error" in chunk:
            self.error = mid_stream_error(chunk["error"])
            raise self.error
        piece = ""
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    piece = content
                    self.text.append(content)
                    self.pieces += 1
                reasoning = delta.get("reasoning")
                if reasoning:
                    self.reasoning.append(reasoning)
                    if not content:
                        self.pieces += 1
            if self.finish_reason is None:
                self.finish_reason = choice.get("finish_reason")
        return piece

    @property
    def completion_tokens(self) -> int:
        """Completion tokens: the server's count once usage arrived, else pieces counted so far."""
        return self.usage.completion_tokens if self.usage is not None else self.pieces

    def counted_usage(self, prompt_tokens: int = 0) -> UsageInfo:
        """The usage to record: the server's, else our own count - the estimated prompt and the
        pieces received (never billed; ``hive-jobs reconcile`` replaces it with /generation's)."""
        if self.usage is not None:
            return self.usage
        return UsageInfo(prompt_tokens=prompt_tokens, completion_tokens=self.pieces, reported=False)
