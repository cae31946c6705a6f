"""A streamed chunk as the reader decodes it: typed structs holding only the fields it reads.

Why msgspec: decoding runs once per SSE event of every stream, and with stdlib :mod:`json` it was
over half of a stream's time (issue 13's target: parse + dispatch of tool-call deltas >= 1.5x
httpx-sse's event rate). msgspec decodes JSON bytes straight into these structs: fields not
declared here (``object``, ``index``, ``role``...) are skipped without building Python objects for
them, and the reader reads attributes rather than ``dict.get`` chains. Measured on the bench's
tool-call stream, same reader otherwise: stdlib ``json.loads`` 0.71x httpx-sse, pydantic-core's
``from_json`` (already installed with pydantic) 1.33x, orjson 1.59x, msgspec into dicts about as
orjson, msgspec into these structs 1.94x.

What stays exactly as :mod:`json` reads it:

* every value the reader keeps whole (``usage``, ``error``, ``logprobs``, ``reasoning_details``,
  ``annotations``, a tool call's ``arguments``) is ``Any``: the same dicts, lists, ints and floats
  ``json.loads`` gives;
* what msgspec refuses but Python's :mod:`json` accepts - invalid UTF-8 (replaced, as the SSE
  decoder does for event text), ``NaN`` / ``Infinity``, lone surrogates, numbers out of a float's
  range - goes through :func:`lenient`, which reads it with :mod:`json` and converts it into the
  same structs. The decoder changes the speed, never which payloads are accepted nor what they
  mean.

The shapes the protocol defines (``choices`` a list of objects, ``delta`` an object,
``tool_calls`` a list of objects, ``function`` an object) are typed: a chunk where one is anything
else (but ``null``) is :class:`~hive_core.errors.MalformedResponse`.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from hive_core.errors import MalformedResponse

__all__ = ["Chunk", "ChunkChoice", "ChunkDelta", "FunctionPart", "ToolCallPart", "decode", "lenient"]

# gc=False: decoded JSON is a tree (no reference cycles), so the structs need no GC tracking;
# it makes creating them cheaper, and this runs per event.


class FunctionPart(msgspec.Struct, gc=False):
    """A tool-call delta's ``function``: the name (first delta) and an ``arguments`` fragment."""

    name: Any = None
    #: a JSON text fragment; some providers send the object itself
    arguments: Any = None


class ToolCallPart(msgspec.Struct, gc=False):
    """One entry of a delta's ``tool_calls``."""

    index: Any = None
    id: Any = None
    type: Any = None
    function: FunctionPart | None = None


class ChunkDelta(msgspec.Struct, gc=False):
    """A choice's ``delta``."""

    content: Any = None
    tool_calls: list[ToolCallPart] | None = None
    reasoning: Any = None
    reasoning_details: Any = None
    annotations: Any = None
    refusal: Any = None


class ChunkChoice(msgspec.Struct, gc=False):
    """One entry of a chunk's ``choices``."""

    delta: ChunkDelta | None = None
    finish_reason: Any = None
    native_finish_reason: Any = None
    logprobs: Any = None


class Chunk(msgspec.Struct, gc=False):
    """One ``chat.completion.chunk`` (or a mid-stream error chunk)."""

    id: Any = None
    model: Any = None
    provider: Any = None
    created: Any = None
    choices: list[ChunkChoice] | None = None
    usage: Any = None
    #: ``UNSET`` when the chunk has no ``error`` key (``null`` is an error too: the key is there)
    error: Any = msgspec.UNSET


#: JSON bytes -> :class:`Chunk`; raises ``msgspec.DecodeError`` (a ``ValueError``) on anything it
#: refuses: call :func:`lenient` then
decode = msgspec.json.Decoder(Chunk).decode


def lenient(data: bytes) -> Chunk:
    """A payload :data:`decode` refused, read as Python's :mod:`json` reads it; raises
    :class:`~hive_core.errors.MalformedResponse` when it is not a JSON object of the protocol's shape."""
    text = data.decode("utf-8", "replace")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise MalformedResponse(f"stream chunk is not JSON: {text[:80]!r}") from exc
    if type(value) is not dict:
        raise MalformedResponse(f"stream chunk is not a JSON object: {text[:80]!r}")
    try:
        return msgspec.convert(value, Chunk)
    except msgspec.ValidationError as exc:
        raise MalformedResponse(f"stream chunk is not the protocol ({exc}): {text[:80]!r}") from exc
