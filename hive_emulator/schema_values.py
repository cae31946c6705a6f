"""A deterministic value for a JSON Schema: what the emulator answers when a request fixes the shape.

Tool arguments (each tool's ``parameters``) and structured outputs (``response_format``
``json_schema``) must be JSON that validates against the schema the caller sent, or the caller's
parser (the openai SDK's ``parse``, a pydantic model) fails. Real applications send a small
subset of JSON Schema, the one pydantic and the OpenAI "strict" mode produce, and that subset is
what this module covers:

* ``type`` (one name or a list: the first non-``null`` one wins), ``object`` with ``properties``
  (every property is filled, required or not: always valid) and ``additionalProperties`` (unused),
  ``array`` with ``items`` (``minItems``..``maxItems``, two items by default), ``string``
  (``minLength``/``maxLength``, ``format`` date-time/date/time/email/uri/uuid), ``integer`` and
  ``number`` (``minimum``/``maximum``, exclusive ones too, ``multipleOf`` for integers), ``boolean``,
  ``null``;
* ``enum`` and ``const``; ``anyOf``/``oneOf`` (the first branch that is not ``null``), ``allOf``
  (the branches merged); local ``$ref`` (``#/$defs/X``, ``#/definitions/X``: pydantic's nested
  models), recursion cut at :data:`MAX_DEPTH` with the shortest valid value.

``pattern`` is not honoured (no regex inverter; the stdlib has none). Values are drawn from a
random generator seeded by the caller, so the same request gives the same JSON.
"""

from __future__ import annotations

import math
import random
from typing import Any

__all__ = ["MAX_DEPTH", "SchemaError", "value_for"]

#: nesting deeper than this gets the smallest valid value (empty arrays, no optional properties)
MAX_DEPTH = 8
#: items per array when the schema does not bound it
DEFAULT_ITEMS = 2

_WORDS = ["alpha", "bravo", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper",
          "kestrel", "lumen", "meadow", "nova", "orchid", "pebble", "quartz", "river", "summit", "tundra"]
_FORMATS = {
    "date-time": "2026-01-{day:02d}T12:00:00Z",
    "date": "2026-01-{day:02d}",
    "time": "12:{day:02d}:00",
    "email": "{word}@example.com",
    "uri": "https://example.com/{word}",
    "uuid": "00000000-0000-4000-8000-0000000000{day:02d}",
}


class SchemaError(ValueError):
    """The schema cannot be satisfied or uses a reference that does not resolve."""


def value_for(schema: Any, rng: random.Random) -> Any:
    """A value valid against ``schema`` (see the module docstring), drawn from ``rng``."""
    if not isinstance(schema, dict):
        return _string({}, rng)  # a boolean schema or garbage: any value passes ``true``
    return _Generator(schema, rng).value(schema, 0)


class _Generator:
    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self._root = root
        self._rng = rng

    def _resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise SchemaError(f"only local $ref is supported, got {ref!r}")
        node: Any = self._root
        for part in filter(None, ref[1:].split("/")):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaError(f"$ref {ref!r} does not resolve")
            node = node[part]
        if not isinstance(node, dict):
            raise SchemaError(f"$ref {ref!r} is not a schema")
        return node

    def value(self, schema: dict[str, Any], depth: int) -> Any:
        if "$ref" in schema:
            target = self._resolve(str(schema["$ref"]))
            return self.value({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self._rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            branches = [b for b in schema.get(key) or [] if isinstance(b, dict)]
            if branches:
                chosen = next((b for b in branches if b.get("type") != "null"), branches[0])
                rest = {k: v for k, v in schema.items() if k != key}
                return self.value({**rest, **chosen}, depth + 1)
        if isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for branch in schema["allOf"]:
                if isinstance(branch, dict):
                    branch = self._resolve(branch["$ref"]) if "$ref" in branch else branch
                    merged = _merge(merged, branch)
            return self.value(merged, depth + 1)
        kind = _type_of(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "integer":
            return _integer(schema, self._rng)
        if kind == "number":
            return _number(schema, self._rng)
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "null":
            return None
        return _string(schema, self._rng)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            if depth >= MAX_DEPTH and name not in required:
                continue
            out[name] = self.value(sub if isinstance(sub, dict) else {}, depth + 1)
        return out

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        count = low if depth >= MAX_DEPTH else max(low, DEFAULT_ITEMS)
        if high is not None:
            count = min(count, int(high))
        if count < low:
            raise SchemaError("minItems is greater than maxItems")
        items = schema.get("items")
        if isinstance(schema.get("prefixItems"), list):
            prefix = [self.value(s, depth + 1) for s in schema["prefixItems"] if isinstance(s, dict)]
            return prefix + [self.value(items if isinstance(items, dict) else {}, depth + 1)
                             for _ in range(max(0, count - len(prefix)))]
        item_schema = items if isinstance(items, dict) else {}
        values = [self.value(item_schema, depth + 1) for _ in range(count)]
        if schema.get("uniqueItems") and len({repr(v) for v in values}) < len(values):
            values = values[:1]  # drawn twice the same (small enums): one copy is still valid if minItems <= 1
        return values


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    merged = {**left, **right}
    if "properties" in left and "properties" in right:
        merged["properties"] = {**left["properties"], **right["properties"]}
    if "required" in left and "required" in right:
        merged["required"] = [*left["required"], *right["required"]]
    return merged


def _string(schema: dict[str, Any], rng: random.Random) -> str:
    fmt = schema.get("format")
    word = rng.choice(_WORDS)
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt].format(day=rng.randint(1, 28), word=word)
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))
    while len(text) < low:
        text += " " + rng.choice(_WORDS)
    return text if high is None else text[: int(high)]


def _bounds(schema: dict[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    low_open = high_open = False
    if isinstance(ex_low, bool):  # draft 4 form
        low_open = ex_low
    elif isinstance(ex_low, int | float):
        low, low_open = ex_low, True
    if isinstance(ex_high, bool):
        high_open = ex_high
    elif isinstance(ex_high, int | float):
        high, high_open = ex_high, True
    return low, high, low_open, high_open


def _integer(schema: dict[str, Any], rng: random.Random) -> int:
    low, high, low_open, high_open = _bounds(schema)
    first = None if low is None else (math.floor(low) + 1 if low_open else math.ceil(low))
    last = None if high is None else (math.ceil(high) - 1 if high_open else math.floor(high))
    if first is None:
        first = 0 if last is None else min(0, last)
    if last is None:
        last = first + 100
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        first = -(-first // step) * step
        last = last // step * step
    else:
        step = 1
    if first > last:
        raise SchemaError("no integer within the bounds")
    return first + step * rng.randint(0, (last - first) // step)


def _number(schema: dict[str, Any], rng: random.Random) -> float:
    low, high, low_open, high_open = _bounds(schema)
    lo = 0.0 if low is None else float(low)
    hi = lo + 100.0 if high is None else float(high)
    if low is None and high is not None:
        lo = min(0.0, hi - 100.0)
    if lo > hi:
        raise SchemaError("number bounds are empty")
    value = round(rng.uniform(lo, hi), 2)
    if (low_open and value <= lo) or (high_open and value >= hi) or not lo <= value <= hi:
        value = (lo + hi) / 2
    return value
