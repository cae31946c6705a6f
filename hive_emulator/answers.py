"""Answers whose shape the request fixes: tool calls (``tools``) and JSON content (``response_format``).

Tool calls, deterministic so tests can predict them:

* ``tool_choice`` ``"none"``: no call, a text answer. ``"auto"`` (the default): a call, unless the
  last message is a ``tool`` result, then a text answer (so a tool loop finishes). ``"required"``:
  a call. ``{"type": "function", "function": {"name": X}}``: one call to X, whatever came before
  (a forced call is forced on every turn, as with the real API).
* Which tools: the offered function tools in order, up to :data:`MAX_PARALLEL_CALLS` of them, or
  only the first (or the named one) when ``parallel_tool_calls`` is ``false``. Server tools
  (``{"type": "openrouter:web_search"}``) are never called.
* Arguments: JSON generated from each tool's ``parameters`` schema (:mod:`hive_emulator.schema_values`),
  compact as OpenAI sends it; ids shaped like the serving provider's (``call_...`` for OpenAI,
  nine characters for Mistral, ``tool_<name>_...`` for Google, ``toolu_...`` for Anthropic).
* Streamed as the OpenAI format defines it: a call's first delta carries ``index``, ``id``,
  ``type``, ``function.name`` and empty ``arguments``; later deltas carry only ``index`` and an
  argument fragment. Parallel calls follow one another (call 0 whole, then call 1 ...), the order
  OpenAI streams them in: the openai SDK's stream helper takes a change of ``index`` to mean the
  previous call is complete and parses its arguments then, so interleaved calls would break it.
  Each delta is one completion token (the header stands for the name's tokens).

``response_format``: ``json_object`` gives ``{"answer": "..."}``; ``json_schema`` gives JSON valid
against ``json_schema.schema``. The JSON is streamed in token-sized fragments like any content, and
``max_tokens`` cuts it (finish ``length``: the JSON is then incomplete, as real models leave it).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hive_emulator.schema_values import SchemaError, value_for

__all__ = [
    "CHARS_PER_PIECE",
    "MAX_PARALLEL_CALLS",
    "ShapeError",
    "ShapedAnswer",
    "ToolCall",
    "fragments",
    "function_tools",
    "shape_answer",
]

#: calls made at once when ``parallel_tool_calls`` allows it
MAX_PARALLEL_CALLS = 3
#: characters per streamed fragment (one completion token, the same estimate as prompt tokens)
CHARS_PER_PIECE = 4

_ALNUM = string.ascii_letters + string.digits
_JSON_OBJECT_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


class ShapeError(ValueError):
    """The request fixes a shape that cannot be honoured: ``tool_choice`` names no offered tool or is
    not a value the format defines, or a tool's ``parameters`` / ``response_format``'s schema is
    unsatisfiable (the emulator answers 400, as OpenAI does for an invalid schema)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model makes."""

    index: int
    id: str
    name: str
    arguments: str

    def as_json(self, arguments: str | None = None) -> dict[str, Any]:
        """The ``message.tool_calls[]`` entry (with ``arguments`` cut short when given)."""
        return {"function": {"arguments": self.arguments if arguments is None else arguments, "name": self.name},
                "id": self.id, "index": self.index, "type": "function"}

    def header_delta(self) -> dict[str, Any]:
        """The call's first streamed delta."""
        return {"index": self.index, "id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": ""}}


@dataclass(frozen=True, slots=True)
class ShapedAnswer:
    """The answer tokens in stream order: content fragments, or (``calls`` set) call deltas, where
    ``owners[i]`` is the call of piece ``i`` and a call's first piece is its header (text ``""``)."""

    pieces: tuple[str, ...]
    calls: tuple[ToolCall, ...] = ()
    owners: tuple[int, ...] = ()
    #: positions of the calls' header pieces
    headers: frozenset[int] = frozenset()

    def delta(self, position: int) -> dict[str, Any]:
        """The streamed ``delta.tool_calls[]`` entry of piece ``position``."""
        owner = self.owners[position]
        if position in self.headers:
            return self.calls[owner].header_delta()
        return {"index": owner, "function": {"arguments": self.pieces[position]}}

    def calls_json(self, tokens: int) -> list[dict[str, Any]]:
        """The ``tool_calls`` of an answer cut after ``tokens`` pieces (calls not begun are absent)."""
        parts: dict[int, list[str]] = {}
        for owner, piece in zip(self.owners[:tokens], self.pieces[:tokens], strict=True):
            parts.setdefault(owner, []).append(piece)
        return [self.calls[i].as_json("".join(parts[i])) for i in sorted(parts)]


def function_tools(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The offered ``{"type": "function", "function": {...}}`` tools (server tools left out)."""
    tools = payload.get("tools")
    if not isinstance(tools, list):
        return []
    return [t for t in tools if isinstance(t, dict) and t.get("type", "function") == "function"
            and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)]


def fragments(text: str) -> list[str]:
    """``text`` in :data:`CHARS_PER_PIECE`-character pieces (at least one)."""
    return [text[i:i + CHARS_PER_PIECE] for i in range(0, len(text), CHARS_PER_PIECE)] or [""]


def _chosen_tools(payload: dict[str, Any], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    choice = payload.get("tool_choice") or "auto"
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        named = [t for t in tools if t["function"]["name"] == name]
        if not named:
            raise ShapeError(f"tool_choice names function {name!r}, which is not among the offered tools")
        return named[:1]
    if choice not in ("none", "auto", "required"):
        raise ShapeError(f"tool_choice must be \"none\", \"auto\", \"required\" or a named function, got {choice!r}")
    messages = payload.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if choice == "none" or (choice == "auto" and last.get("role") == "tool"):
        return []
    parallel = payload.get("parallel_tool_calls", True) is not False
    return tools[:MAX_PARALLEL_CALLS if parallel else 1]


def _call_id(provider: str, name: str, rng: random.Random) -> str:
    if provider == "Mistral":
        return "".join(rng.choices(_ALNUM, k=9))
    if provider.startswith("Google"):
        return f"tool_{name}_{''.join(rng.choices(_ALNUM, k=20))}"
    if provider == "Anthropic":
        return "toolu_" + "".join(rng.choices(_ALNUM, k=24))
    return "call_" + "".join(rng.choices(_ALNUM, k=24))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _in_sequence(calls: Sequence[ToolCall]) -> ShapedAnswer:
    pieces: list[str] = []
    owners: list[int] = []
    headers: set[int] = set()
    for index, call in enumerate(calls):
        headers.add(len(pieces))
        for piece in ["", *fragments(call.arguments)]:  # "" = the header delta
            pieces.append(piece)
            owners.append(index)
    return ShapedAnswer(tuple(pieces), tuple(calls), tuple(owners), frozenset(headers))


def shape_answer(payload: dict[str, Any], provider: str, rng: random.Random) -> ShapedAnswer | None:
    """The answer the request's ``tools``/``response_format`` fix, or ``None`` for free text.
    Raises :class:`ShapeError` when that shape cannot be honoured."""
    tools = function_tools(payload)
    chosen = _chosen_tools(payload, tools) if tools else []
    if chosen:
        calls = []
        for index, tool in enumerate(chosen):
            function = tool["function"]
            try:
                arguments = _dumps(value_for(function.get("parameters") or {"type": "object"}, rng))
            except SchemaError as exc:
                raise ShapeError(f"Invalid schema for function '{function['name']}': {exc}") from exc
            calls.append(ToolCall(index, _call_id(provider, function["name"], rng), function["name"], arguments))
        return _in_sequence(calls)
    response_format = payload.get("response_format")
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        try:
            return ShapedAnswer(tuple(fragments(_dumps(value_for(schema or _JSON_OBJECT_SCHEMA, rng)))))
        except SchemaError as exc:
            name = spec.get("name") if isinstance(spec, dict) else None
            raise ShapeError(f"Invalid schema for response_format '{name}': {exc}") from exc
    if kind == "json_object":
        return ShapedAnswer(tuple(fragments(_dumps(value_for(_JSON_OBJECT_SCHEMA, rng)))))
    return None
