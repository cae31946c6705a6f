"""The chunk decoder changes the speed, never the meaning: msgspec's structs against stdlib json."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive_core.errors import MalformedResponse, MidStreamError
from hive_core.openrouter.chunk_types import Chunk, decode, lenient
from hive_core.openrouter.chunks import ChunkReader, Delivery

HEAD = '{"id":"gen-1","model":"m","provider":"P","object":"chat.completion.chunk","created":1,'

# JSON values as json.loads returns them (no NaN: json.dumps would write it, msgspec refuses it)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
_CALLS = st.lists(st.fixed_dictionaries({}, optional={
    "index": st.integers(0, 3), "id": st.text(max_size=4), "type": st.just("function"),
    "function": st.fixed_dictionaries({}, optional={"name": st.text(max_size=4), "arguments": _VALUES})}), max_size=3)
_CHUNKS = st.fixed_dictionaries({}, optional={
    "id": _SCALARS, "model": _SCALARS, "created": _SCALARS, "usage": _VALUES, "error": _VALUES, "object": _VALUES,
    "choices": st.lists(st.fixed_dictionaries({}, optional={
        "index": _VALUES, "finish_reason": _SCALARS, "native_finish_reason": _SCALARS, "logprobs": _VALUES,
        "delta": st.fixed_dictionaries({}, optional={
            "role": _VALUES, "content": _SCALARS, "reasoning": _SCALARS, "refusal": _SCALARS,
            "reasoning_details": _VALUES, "annotations": _VALUES, "tool_calls": _CALLS})}), max_size=2)})


@given(doc=_CHUNKS, ascii_only=st.booleans())
def test_fast_decoding_equals_reading_with_json(doc: dict[str, Any], ascii_only: bool) -> None:
    """Every payload both read decodes to the same chunk: floats to the last bit, big integers,
    any text; the lenient path (json.loads, then into the structs) is the oracle."""
    data = json.dumps(doc, ensure_ascii=ascii_only).encode()
    assert decode(data) == lenient(data)


def read(*payloads: bytes) -> tuple[ChunkReader, list[Delivery]]:
    reader, out = ChunkReader(), list[Delivery]()
    reader.read(payloads, out)
    return reader, out


@pytest.mark.parametrize(("content", "expected"), [
    (b'"caf\xe9"', "caf\ufffd"),  # invalid UTF-8: replaced, as the SSE decoder replaces event text
    (b'"\\ud83d"', "\ud83d"),  # a lone surrogate escape, as json.loads keeps it
    (b'"ok"', "ok"),
])
def test_text_msgspec_refuses_is_read_as_json_reads_it(content: bytes, expected: str) -> None:
    reader, out = read(HEAD.encode() + b'"choices":[{"delta":{"content":' + content + b"}}]}")
    assert out == [expected] and reader.text == [expected]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_numbers_msgspec_refuses_are_read_as_json_reads_them(number: bytes) -> None:
    usage = b'{"prompt_tokens":3,"completion_tokens":2,"cost":' + number + b"}"
    reader, _ = read(HEAD.encode() + b'"choices":[],"usage":' + usage + b"}")
    assert reader.raw_usage is not None
    assert math.isnan(reader.raw_usage["cost"]) or math.isinf(reader.raw_usage["cost"])
    assert reader.usage is not None and reader.usage.cost is None  # not a price: unknown, never NaN
    assert reader.usage.completion_tokens == 2


def test_big_integers_and_floats_keep_their_value() -> None:
    usage = b'{"prompt_tokens":18446744073709551616,"completion_tokens":1,"cost":0.1,"x":1.0000000000000002}'
    reader, _ = read(HEAD.encode() + b'"choices":[],"usage":' + usage + b"}")
    assert reader.raw_usage == json.loads(usage)
    assert reader.usage is not None and reader.usage.prompt_tokens == 2**64 and reader.usage.cost == Decimal("0.1")


@pytest.mark.parametrize(("payload", "message"), [
    (b'{"id":"gen-1","choices":[{"delta":{"content":"', "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'"text"', "not a JSON object"),
    (HEAD.encode() + b'"choices":{"0":{}}}', "not the protocol"),
    (HEAD.encode() + b'"choices":["a"]}', "not the protocol"),
    (HEAD.encode() + b'"choices":[{"delta":"hi"}]}', "not the protocol"),
    (HEAD.encode() + b'"choices":[{"delta":{"tool_calls":"f"}}]}', "not the protocol"),
    (HEAD.encode() + b'"choices":[{"delta":{"tool_calls":[{"index":0,"function":7}]}}]}', "not the protocol"),
])
def test_payloads_that_are_not_the_protocol_are_malformed(payload: bytes, message: str) -> None:
    """Typed errors, not the AttributeError or KeyError a dict reader met on a wrong shape."""
    with pytest.raises(MalformedResponse, match=message):
        read(payload)


def test_null_shapes_are_absent() -> None:
    reader, out = read(HEAD.encode() + b'"choices":[{"delta":{"content":"a","tool_calls":null},"logprobs":null}]}',
                       HEAD.encode() + b'"choices":null}', HEAD.encode() + b'"choices":[{"delta":null}]}')
    assert out == ["a"] and reader.chunks == 3


def test_an_error_key_is_a_mid_stream_error_even_when_null() -> None:
    reader, out = ChunkReader(), list[Delivery]()
    with pytest.raises(MidStreamError):
        reader.read([HEAD.encode() + b'"choices":[{"delta":{"content":"a"}}]}', HEAD.encode() + b'"error":null}'],
                    out)
    assert out == ["a"]  # what came before the error was handed on first


def test_unknown_fields_are_skipped_and_undeclared_ones_kept_whole() -> None:
    payload = (HEAD + '"choices":[{"index":0,"delta":{"role":"assistant","content":"x","audio":{"id":"a"}},'
               '"logprobs":{"content":[{"token":"x","logprob":-0.5}]}}],"system_fingerprint":"fp"}').encode()
    chunk = decode(payload)
    assert isinstance(chunk, Chunk) and chunk.choices is not None
    assert chunk.choices[0].logprobs == {"content": [{"token": "x", "logprob": -0.5}]}
