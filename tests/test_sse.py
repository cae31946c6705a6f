"""The SSE parser against the spec and the real recordings, and the chunk interpreter."""

from __future__ import annotations

import json
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


@pytest.mark.parametrize("name", RECORDED_STREAMS)
def test_data_only_parse_gives_each_events_data_at_every_split(recordings_dir: Path, name: str) -> None:
    raw = (recordings_dir / name).read_bytes()
    whole = [e.data.encode() for e in parse(raw)]
    for size in (1, 2, 3, 7, 64, 1000):
        decoder = SSEDecoder()
        assert [d for i in range(0, len(raw), size) for d in decoder.feed_data(raw[i : i + size])] == whole


def spec_events(stream: bytes) -> list[tuple[str, str, str, int | None]]:
    """The WHATWG interpretation written plainly, line by line over the whole stream: the oracle the
    incremental parser must match at any split."""
    text = stream.decode("utf-8", "replace").removeprefix("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:-1]  # the tail has no line end
    events: list[tuple[str, str, str, int | None]] = []
    data: list[str] = []
    kind, last_id, retry = "", "", None
    for line in lines:
        if not line:
            if data:
                events.append(("\n".join(data), kind or "message", last_id, retry))
            data, kind = [], ""
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            retry = int(value)
    return events


_FIELD = st.sampled_from(["data", "data", "data", "event", "id", "retry", "", "other"])
_VALUE = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=12)
_LINE = st.one_of(
    st.builds(lambda f, sep, v: f + sep + v, _FIELD, st.sampled_from([":", ": ", ":  ", ""]), _VALUE),
    st.builds(lambda v: ":" + v, _VALUE),  # a comment (a keep-alive)
    st.just(""),  # a blank line: dispatch
    st.sampled_from(["retry: 15", "id: 7", 'data: {"id":"gen-1"}', "data: [DONE]"]),
)


@given(lines=st.lists(_LINE, max_size=25), newline=st.sampled_from(["\n", "\r\n", "\r"]), bom=st.booleans(),
       cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_any_stream_split_anywhere_parses_as_the_spec_says(lines: list[str], newline: str, bom: bool,
                                                           cuts: list[int]) -> None:
    stream = (b"\xef\xbb\xbf" if bom else b"") + newline.join([*lines, ""]).encode()
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    reads = [stream[a:b] for a, b in pairwise(points)]
    expected = spec_events(stream)
    events, datas = SSEDecoder(), SSEDecoder()
    assert [(e.data, e.event, e.id, e.retry) for r in reads for e in events.feed(r)] == expected
    assert [d for r in reads for d in datas.feed_data(r)] == [e[0].encode() for e in expected]


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
