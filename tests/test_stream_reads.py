"""StreamRun.feed over network reads split anywhere: the same deliveries in the same order, the same
result; and what one read brings before a mid-stream error is handed on before the error.

StreamRun is the sans-I/O core the sync and async clients (and the gateway's relay) feed raw bytes
to, read by read; these tests feed it directly, as they do.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive_core.errors import MidStreamError
from hive_core.openrouter.chunks import Delivery
from hive_core.openrouter.core import ClientCore
from hive_core.openrouter.results import ChatResult
from hive_core.openrouter.stream import Callbacks, StreamRun
from hive_core.settings import Settings
from tests.plugins.store import ListSink
from tests.plugins.wire import to_sse

MODEL = "requested/model"
#: an answer of text, reasoning and two parallel tool calls, and a real recorded stream
SOURCES = ["tool_calling-200.json", "with_reasoning-200.json", "stream_with_reasoning-200.sse"]


def new_run() -> StreamRun:
    core = ClientCore(Settings.from_env({"OPENROUTER_API_KEY": "sk-or-v1-reads"}), sink=ListSink(), prices=None,
                      policy=None)
    run = StreamRun(core, core.tracker.request(MODEL, streamed=True), Callbacks(), [{"role": "user", "content": "hi"}])
    run.start_attempt(1)
    run.http_status = 200
    return run


def replay(stream: bytes, reads: list[bytes]) -> tuple[list[Delivery], ChatResult]:
    run = new_run()
    delivered: list[Delivery] = []
    for raw in reads:
        for item in run.feed(raw):
            run.deliver(item)
            delivered.append(item)
        run.raise_deferred()
    run.end_of_body()
    return delivered, run.finish(None)


def stream_of(recordings_dir: Path, name: str) -> bytes:
    raw = (recordings_dir / name).read_bytes()
    return raw if name.endswith(".sse") else to_sse(json.loads(raw), size=4)


@pytest.mark.parametrize("name", SOURCES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_reads_split_anywhere_deliver_the_same(recordings_dir: Path, name: str, cuts: list[int]) -> None:
    stream = stream_of(recordings_dir, name)
    whole_items, whole = replay(stream, [stream])
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    items, result = replay(stream, [stream[a:b] for a, b in pairwise(points)])
    assert items == whole_items and whole_items
    assert (result.text, result.reasoning, result.tool_calls, result.usage, result.finish_reason) == (
        whole.text, whole.reasoning, whole.tool_calls, whole.usage, whole.finish_reason)


def test_text_read_with_an_error_is_delivered_before_the_error() -> None:
    head = '{"id":"gen-1","model":"m","provider":"P","choices":[{"delta":{"content":"%s"}}]}'
    error = '{"id":"gen-1","error":{"code":502,"message":"provider went away"},"choices":[]}'
    run = new_run()
    assert run.feed(f"data: {head % 'a'}\n\ndata: {head % 'b'}\n\ndata: {error}\n\n".encode()) == ["a", "b"]
    with pytest.raises(MidStreamError, match="provider went away"):
        run.raise_deferred()
    alone = new_run()
    with pytest.raises(MidStreamError):  # nothing to hand on first: raised at once
        alone.feed(f"data: {error}\n\n".encode())


def test_nothing_after_done_is_read() -> None:
    run = new_run()
    chunk = 'data: {"id":"gen-1","choices":[{"delta":{"content":"x"}}]}\n\n'
    assert run.feed(f"{chunk}data: [DONE]\n\n{chunk}".encode()) == ["x"]
    assert run.reader.done and run.reader.chunks == 1
