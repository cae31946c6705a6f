"""Interpreting OpenRouter's streamed chunks: text, reasoning, tool calls, finish reason, usage, errors.

Hand the SSE ``data`` payloads of each network read to :meth:`ChunkReader.read`; it appends what
they deliver, in order, to the caller's list: text pieces (``str``) and tool-call deltas as
``(position, fragment)`` pairs (:meth:`ChunkReader.tool_delta` makes the callback's value: only
when there is a callback, as this runs once per delta). One call per read rather than per payload,
and payloads as the bytes they came in: this runs for every event of every stream (issue 13's speed
target), and decoding JSON from bytes skips a UTF-8 decoding pass.
Deltas are assembled into what a non-streamed answer carries, so both give the same result:

* ``tool_calls`` (OpenAI incremental format): one call per ``index``, ``id``/``name``/``type`` from
  the delta that first carries them, ``arguments`` fragments concatenated in order; a delta with a
  *different* ``id`` at a taken index starts a new call (providers that number every parallel call
  0), and a delta without ``index`` continues the last call unless it brings a new ``id``.
* ``reasoning_details``: one block per ``(index, type)``; ``text``, ``summary`` and ``data``
  fragments concatenated, other fields (``signature``, ``format``, ``id``) kept from the first
  delta that has them. ``annotations`` and ``logprobs`` lists are concatenated, ``refusal`` joined.

The protocol's real behaviour (see PROTOCOL.md section 3), not its docs:

* ``finish_reason`` is taken from the FIRST chunk that sets it; the usage chunk may repeat it.
* ``usage`` is taken from the chunk that has it, whatever its ``choices`` holds, and counted once.
* A top-level ``error`` key is a mid-stream error, whatever ``finish_reason`` says (often null),
  and that chunk may carry usage: it is kept (:attr:`ChunkReader.usage`) before
  :class:`~hive_core.errors.MidStreamError` is raised.
* ``data: [DONE]`` ends the stream; a stream that ends without it is truncated (the caller decides).
* A payload that is not a JSON object of the chunk's shape is
  :class:`~hive_core.errors.MalformedResponse` (:mod:`~hive_core.openrouter.chunk_types` decodes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import msgspec

from hive_core.errors import MidStreamError
from hive_core.openrouter.chunk_types import ChunkDelta, ToolCallPart, decode, lenient
from hive_core.openrouter.results import ToolCall, ToolCallDelta, UsageInfo

__all__ = ["DONE", "ChunkReader", "Delivery", "mid_stream_error"]

#: the ``data`` that ends a stream
DONE = b"[DONE]"
_DONE = DONE
_UNSET = msgspec.UNSET
#: reasoning-detail fields whose streamed fragments are joined (the rest are set once)
_JOINED = frozenset({"text", "summary", "data"})

#: what a read hands on, in order: a text piece, or a tool-call delta as (position, fragment)
Delivery = str | tuple[int, str]


def mid_stream_error(error: Any) -> MidStreamError:
    """The typed error for an ``error`` object found inside a 200 answer (stream chunk or choice)."""
    if not isinstance(error, dict):
        return MidStreamError(str(error), code=None)
    code = error.get("code")
    message = error.get("message") or "provider error"
    return MidStreamError(str(message), code=code if isinstance(code, int | str) else None)


class _CallParts:
    """A tool call being assembled from its deltas."""

    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.type = "function"
        self.arguments: list[str] = []


class ChunkReader:
    """State of one stream's chunks. Not thread-safe; one per stream attempt."""

    __slots__ = (
        "_by_index", "_calls", "_detail_at", "annotations", "chunks", "created", "details", "done", "error",
        "finish_reason", "generation_id", "logprobs", "model", "native_finish_reason", "pieces", "provider",
        "raw_usage", "reasoning", "refusal", "text", "usage",
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
        self.native_finish_reason: str | None = None
        self.created: int | None = None
        #: the ``usage`` object as served, for the assembled answer document
        self.raw_usage: dict[str, Any] | None = None
        self._calls: list[_CallParts] = []
        self._by_index: dict[int, int] = {}
        self.details: list[dict[str, Any]] = []
        self._detail_at: dict[tuple[Any, Any], dict[str, Any]] = {}
        self.annotations: list[Any] = []
        self.refusal: list[str] = []
        self.logprobs: dict[str, Any] | None = None

    def read(self, payloads: Iterable[bytes], out: list[Delivery]) -> None:
        """Interpret the ``data`` payloads of one network read, in order, appending to ``out`` what
        they deliver: each text piece, each tool-call delta as ``(position, fragment)``.

        Stops at ``[DONE]``. A mid-stream error or a malformed payload raises, after ``out`` got
        what the payloads before it delivered (the caller hands that text on first).
        """
        for data in payloads:
            if data == _DONE:
                self.done = True
                return
            try:
                chunk = decode(data)
            except ValueError:  # msgspec refuses what json accepts (NaN, bad UTF-8...), or not JSON
                chunk = lenient(data)
            self.chunks += 1
            if self.generation_id is None:
                self.generation_id = chunk.id
                self.model = chunk.model
                self.provider = chunk.provider
                self.created = chunk.created
            usage = chunk.usage
            if usage is not None and self.usage is None:
                self.usage = UsageInfo.from_openrouter(usage)
                self.raw_usage = usage if type(usage) is dict else None
            if chunk.error is not _UNSET:
                self.error = mid_stream_error(chunk.error)
                raise self.error
            choices = chunk.choices
            if not choices:
                continue
            choice = choices[0]
            delta = choice.delta
            if delta is not None:
                content = delta.content
                if content:
                    out.append(content)
                    self.text.append(content)
                    self.pieces += 1
                calls = delta.tool_calls
                if calls:
                    self._tool_calls(calls, out)
                if delta.reasoning or delta.reasoning_details or delta.annotations or delta.refusal:
                    self._rare(delta, content)
            logprobs = choice.logprobs
            if logprobs:
                self._logprobs(logprobs)
            if self.finish_reason is None:
                self.finish_reason = choice.finish_reason
                self.native_finish_reason = choice.native_finish_reason

    def _rare(self, delta: ChunkDelta, content: Any) -> None:
        """The delta's fields most deltas lack: reasoning, its details, annotations, refusal."""
        reasoning = delta.reasoning
        if reasoning:
            self.reasoning.append(reasoning)
            if not content:
                self.pieces += 1
        details = delta.reasoning_details
        if details:
            self._details(details)
        annotations = delta.annotations
        if annotations:
            self.annotations.extend(annotations)
        refusal = delta.refusal
        if refusal:
            self.refusal.append(refusal)

    def _tool_calls(self, deltas: list[ToolCallPart], out: list[Delivery]) -> None:
        calls = self._calls
        for delta in deltas:
            call_id = delta.id
            index = delta.index
            if index is None:  # continue the last call unless this one names another
                position = len(calls) - 1 if calls and (not call_id or call_id == calls[-1].id) else None
            else:
                position = self._by_index.get(index)
                if position is not None and call_id and calls[position].id and call_id != calls[position].id:
                    position = None  # a parallel call under a taken index
            if position is None:
                position = len(calls)
                calls.append(_CallParts())
                if index is not None:
                    self._by_index[index] = position
            call = calls[position]
            if call_id and not call.id:
                call.id = call_id
            kind = delta.type
            if kind:
                call.type = kind
            function = delta.function
            fragment = ""
            if function is not None:
                name = function.name
                if name and not call.name:
                    call.name = name
                fragment = function.arguments or ""
                if type(fragment) is not str:  # some providers send the object itself
                    fragment = json.dumps(fragment, separators=(",", ":"))
                if fragment:
                    call.arguments.append(fragment)
            self.pieces += 1  # every delta is generated output, the call's name included
            out.append((position, fragment))

    def tool_delta(self, position: int, fragment: str) -> ToolCallDelta:
        """What ``on_tool_call`` receives for a queued ``(position, fragment)``."""
        call = self._calls[position]
        return ToolCallDelta(position, call.id, call.name, fragment)

    def _details(self, details: Any) -> None:
        for detail in details:
            if type(detail) is not dict:
                continue
            key = (detail.get("index", 0), detail.get("type"))
            kept = self._detail_at.get(key)
            if kept is None:
                self._detail_at[key] = kept = dict(detail)
                self.details.append(kept)
                continue
            for name, value in detail.items():
                if value is None:
                    continue
                before = kept.get(name)
                if name in _JOINED and isinstance(before, str) and isinstance(value, str):
                    kept[name] = before + value
                elif before is None:
                    kept[name] = value

    def _logprobs(self, logprobs: Any) -> None:
        if type(logprobs) is not dict:
            return
        kept = self.logprobs if self.logprobs is not None else {}
        self.logprobs = kept
        for name, value in logprobs.items():
            if isinstance(value, list):
                before = kept.get(name)
                if isinstance(before, list):
                    before.extend(value)
                else:
                    kept[name] = list(value)  # our own copy: later fragments extend it
            elif name not in kept:
                kept[name] = value

    def document(self) -> dict[str, Any]:
        """The chunks so far as the ``chat.completion`` document a non-streamed request gets."""
        message: dict[str, Any] = {
            "role": "assistant", "content": "".join(self.text), "refusal": "".join(self.refusal) or None,
            "reasoning": "".join(self.reasoning) or None,
        }
        if self._calls:
            message["tool_calls"] = [dict(call.as_dict(), index=i) for i, call in enumerate(self.tool_calls)]
        if self.details:
            message["reasoning_details"] = self.details
        if self.annotations:
            message["annotations"] = self.annotations
        choice = {"index": 0, "finish_reason": self.finish_reason, "native_finish_reason": self.native_finish_reason,
                  "logprobs": self.logprobs, "message": message}
        doc: dict[str, Any] = {"id": self.generation_id, "provider": self.provider, "model": self.model,
                               "object": "chat.completion", "created": self.created, "choices": [choice]}
        if self.raw_usage is not None:
            doc["usage"] = self.raw_usage
        return doc

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The calls assembled so far."""
        return tuple(ToolCall(c.id, c.name, "".join(c.arguments), c.type) for c in self._calls)

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
