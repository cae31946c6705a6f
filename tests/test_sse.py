"""The SSE parser against the spec and the real recordings, and the chunk interpreter."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from hive_core.errors import MalformedResponse, MidStreamError
from hive_core.openrouter.chunks import ChunkReader, Delivery
from hive_core.openrouter.sse import ServerSentEvent, SSEDecoder

RECORDED_STREAMS = ["stream_with_reasoning-200.sse", "stream_with_native_options-200.sse", "stream_error-200.sse"]


def parse(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    decoder.close()
    return events


def datas(*chunks: bytes) -> list[str]:
    return [e.data for e in parse(*chunks)]


def test_data_lines_join_with_newline_and_one_space_is_dropped() -> None:
    assert datas(b"data: a\ndata:b\ndata:  c\n\n") == ["a\nb\n c"]


def test_comments_anywhere_are_ignored_and_counted() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b": OPENROUTER PROCESSING\n\ndata: 1\n: mid-event comment\ndata: 2\n\n: tail\n\n")
    assert [e.data for e in events] == ["1\n2"]
    assert decoder.comments == 3


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(newline: bytes) -> None:
    stream = newline.join([b"data: x", b"", b"event: ping", b"data: y", b"", b""])
    assert [(e.event, e.data) for e in parse(stream)] == [("message", "x"), ("ping", "y")]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    assert datas(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n") == ["a", "b"]


def test_event_without_data_is_not_dispatched_and_resets_type() -> None:
    assert [(e.event, e.data) for e in parse(b"event: x\n\ndata: y\n\n")] == [("message", "y")]


def test_id_and_retry_fields() -> None:
    events = parse(b"id: 7\nretry: 1500\ndata: a\n\nretry: soon\ndata: b\n\nid: bad\0id\ndata: c\n\n")
    assert [(e.id, e.retry) for e in events] == [("7", 1500), ("7", 1500), ("7", 1500)]


def test_field_without_colon_and_unknown_fields() -> None:
    assert datas(b"data\n\nfoo: bar\ndata: z\n\n") == ["", "z"]


def test_bom_is_skipped_even_when_split() -> None:
    assert datas(b"\xef", b"\xbb\xbfdata: a\n\n") == ["a"]


def test_incomplete_event_at_eof_is_discarded() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: half") == [ServerSentEvent("a")]
    assert decoder.close() is False


def test_utf8_split_inside_a_character() -> None:
    raw = "data: héllo ✓\n\n".encode()
    assert datas(*[raw[i : i + 1] for i in range(len(raw))]) == ["héllo ✓"]


@pytest.mark.parametrize("name", RECORDED_STREAMS)
def test_recordings_parse_the_same_at_every_split(recordings_dir: Path, name: str) -> None:
    raw = (recordings_dir / name).read_bytes()
    whole = parse(raw)
    assert whole[-1].data == "[DONE]"
    for size in (1, 2, 3, 7, 64, 1000):
        assert parse(*[raw[i : i + size] for i in range(0, len(raw), size)]) == whole
    crlf = raw.replace(b"\n", b"\r\n")
    assert parse(*[crlf[i : i + 5] for i in range(0, len(crlf), 5)]) == whole


def read_stream(path: Path) -> ChunkReader:
    reader = ChunkReader()
    reader.read(SSEDecoder().feed_data(path.read_bytes()), [])
    return reader


def feed(reader: ChunkReader, *payloads: str | bytes) -> list[Delivery]:
    """What ``payloads`` deliver, read one at a time (as one event per network read)."""
    out: list[Delivery] = []
    for payload in payloads:
        reader.read([payload.encode() if isinstance(payload, str) else payload], out)
    return out


def test_reasoning_recording_text_finish_reason_usage_and_cost(recordings_dir: Path) -> None:
    reader = read_stream(recordings_dir / "stream_with_reasoning-200.sse")
    assert reader.done
    text = "".join(reader.text)
    assert text.startswith("I’m ChatGPT, a large-language-model assistant created by OpenAI.")
    assert text.endswith("just let me know!")
    assert reader.finish_reason == "stop"
    assert reader.usage is not None
    assert (reader.usage.prompt_tokens, reader.usage.completion_tokens) == (9, 104)
    assert reader.usage.cost == Decimal("0.00085")
    assert reader.generation_id == "gen-1762141316-q3fB64DDMstJO0ZakdSK"
    assert (reader.model, reader.provider) == ("openai/o3", "OpenAI")


def test_native_options_recording(recordings_dir: Path) -> None:
    raw = (recordings_dir / "stream_with_native_options-200.sse").read_bytes()
    reader = read_stream(recordings_dir / "stream_with_native_options-200.sse")
    # the expected values, straight from the last data chunks of the recording
    chunks = [json.loads(e.data) for e in parse(raw) if e.data != "[DONE]"]
    usage = next(c["usage"] for c in chunks if "usage" in c)
    first_finish = next(c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0].get("finish_reason"))
    expected_text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert reader.done and "".join(reader.text) == expected_text and expected_text
    assert reader.finish_reason == first_finish
    assert reader.usage is not None
    assert reader.usage.completion_tokens == usage["completion_tokens"]
    assert reader.usage.cost == Decimal(str(usage["cost"]))


def test_mid_stream_error_recording_keeps_partial_usage(recordings_dir: Path) -> None:
    reader = ChunkReader()
    with pytest.raises(MidStreamError) as info:
        reader.read(SSEDecoder().feed_data((recordings_dir / "stream_error-200.sse").read_bytes()), [])
    assert info.value.code == 400 and "Token limit reached" in str(info.value)
    assert reader.finish_reason == "length"  # from the first chunk that set it
    assert reader.usage is not None
    assert (reader.usage.prompt_tokens, reader.usage.completion_tokens, reader.usage.cost) == (43, 10, Decimal(0))
    assert reader.error is info.value


def test_usage_chunk_repeating_finish_reason_counts_once() -> None:
    reader = ChunkReader()
    base = {"id": "gen-1", "model": "m", "provider": "P"}
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "cost": 0.5}
    assert feed(
        reader,
        json.dumps({**base, "choices": [{"delta": {"content": "hi"}, "finish_reason": None}]}),
        json.dumps({**base, "choices": [{"delta": {"content": ""}, "finish_reason": "stop"}]}),
        json.dumps({**base, "choices": [{"delta": {}, "finish_reason": "length"}], "usage": usage}),
        json.dumps({**base, "choices": [], "usage": {"completion_tokens": 99}}),
        "[DONE]",
    ) == ["hi"]
    assert reader.finish_reason == "stop"
    assert reader.usage is not None and reader.usage.completion_tokens == 1
    assert reader.chunks == 4 and reader.done


def test_malformed_chunk() -> None:
    with pytest.raises(MalformedResponse):
        feed(ChunkReader(), '{"id":"gen-1","choices":[{"delta":{"content":"')
    with pytest.raises(MalformedResponse):
        feed(ChunkReader(), "[1, 2]")
