"""The async client: same surface and events as the sync one; 16 concurrent streams all recorded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hive_core.errors import MidStreamError, RateLimited
from hive_core.openrouter import AsyncOpenRouterClient, RetryPolicy
from hive_core.settings import Secret, Settings
from hive_core.store.events import ApiCall, StreamOutcome, Usage
from ingest.log import EventLog
from tests.plugins.emulator import MODEL, emu_settings, fast_policy, seed_failing_first
from tests.plugins.store import ListSink, events


def test_sixteen_concurrent_streams_complete_and_are_recorded(emulator: Any, tmp_path: Path) -> None:
    settings = emu_settings(emulator, tmp_path, read_timeout_s=10.0)

    async def main(log: EventLog) -> list[Any]:
        async with AsyncOpenRouterClient(settings, sink=log) as client:
            async def one(i: int) -> Any:
                return await client.stream(f"story {i}", model=MODEL, max_tokens=40).collect()

            return await asyncio.gather(*(one(i) for i in range(16)))

    with EventLog(settings.data_dir) as log:
        results = asyncio.run(main(log))
    assert all(r.outcome == "completed" and r.text for r in results)
    assert len({r.request_id for r in results}) == 16
    calls = events(settings.data_dir, "api_call", "status, streamed, request_id")
    outcomes = events(settings.data_dir, "stream_outcome", "outcome")
    usage = events(settings.data_dir, "usage", "cost_source, request_id")
    assert len(calls) == len(outcomes) == len(usage) == 16
    assert {(status, streamed) for status, streamed, _ in calls} == {("ok", True)}
    assert set(outcomes) == {("completed",)}
    assert {source for source, _ in usage} == {"billed"}
    assert {c[2] for c in calls} == {u[1] for u in usage} == {r.request_id for r in results}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_async_retry_then_success(emulator_factory: Any, tmp_path: Path, stream: bool) -> None:
    emu = emulator_factory(faults=["*:429:0.5"], seed=seed_failing_first("429"))
    settings = emu_settings(emu, tmp_path)
    sink = ListSink()

    async def main() -> Any:
        async with AsyncOpenRouterClient(settings, sink=sink, policy=fast_policy(settings)) as client:
            if stream:
                return await client.stream("hi", model=MODEL, max_tokens=10).collect()
            return await client.chat("hi", model=MODEL, max_tokens=10)

    result = asyncio.run(main())
    assert result.attempts == 2
    assert [c.status for c in sink.of(ApiCall)] == ["rate_limited", "ok"]
    assert [u.cost_source for u in sink.of(Usage)] == ["billed"]


def test_async_persistent_fault_and_mid_stream_error(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(faults=["*:429:1"])
    settings = emu_settings(emu, tmp_path)
    sink = ListSink()

    async def main() -> None:
        async with AsyncOpenRouterClient(settings, sink=sink, policy=fast_policy(settings)) as client:
            with pytest.raises(RateLimited):
                await client.chat("hi", model=MODEL, max_tokens=10)
            emu.set_faults(["*:midstream-error:1"])
            with pytest.raises(MidStreamError):
                async for _ in client.stream("hi", model=MODEL, max_tokens=10):
                    pass

    asyncio.run(main())
    assert [c.status for c in sink.of(ApiCall)] == ["rate_limited", "rate_limited", "server_error"]
    assert [o.outcome for o in sink.of(StreamOutcome)] == ["errored"]


def test_task_cancel_records_cancelled(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(latency_scale=0.2)
    settings = emu_settings(emu, tmp_path, read_timeout_s=5.0)
    sink = ListSink()
    pieces: list[str] = []

    async def main() -> None:
        async with AsyncOpenRouterClient(settings, sink=sink) as client:
            async def consume() -> None:
                async for piece in client.stream("long", model=MODEL, max_tokens=2000):
                    pieces.append(piece)

            task = asyncio.create_task(consume())
            while len(pieces) < 3:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    (outcome,) = sink.of(StreamOutcome)
    assert outcome.outcome == "cancelled" and 3 <= outcome.completion_tokens < 2000
    assert [c.status for c in sink.of(ApiCall)] == ["cancelled"]


def test_async_handle_cancel_and_recording(recordings_dir: Path) -> None:
    raw = (recordings_dir / "stream_with_reasoning-200.sse").read_bytes()
    sink = ListSink()
    settings = Settings(api_key=Secret("sk-or-v1-x"), base_url="https://openrouter.test/api/v1")

    async def main() -> list[str]:
        transport = httpx.MockTransport(lambda r: httpx.Response(200, content=raw))
        async with AsyncOpenRouterClient(settings, sink=sink, transport=transport,
                                         policy=RetryPolicy(max_attempts=1)) as client:
            full = await client.stream("hi", model="openai/o3").collect()
            assert full.usage.cost is not None and full.finish_reason == "stop"
            got: list[str] = []
            handle = client.stream("hi", model="openai/o3")
            async for piece in handle:
                got.append(piece)
                if len(got) == 2:
                    handle.cancel()
            return got

    got = asyncio.run(main())
    assert len(got) == 2
    assert [o.outcome for o in sink.of(StreamOutcome)] == ["completed", "cancelled"]


def test_cancel_from_a_callback_and_aclose_record_cancelled(emulator_factory: Any, tmp_path: Path) -> None:
    """The async twins of the sync cancels: cancel() from on_chunk stops after that piece; leaving
    ``async with handle`` mid-stream (aclose) stops at once. Both end quietly, recorded cancelled."""
    emu = emulator_factory(latency_scale=0.2)  # paced: tokens arrive in separate reads
    settings = emu_settings(emu, tmp_path, read_timeout_s=5.0)
    sink = ListSink()

    async def main() -> tuple[list[str], list[str]]:
        async with AsyncOpenRouterClient(settings, sink=sink) as client:
            chunks: list[str] = []

            def on_chunk(piece: str, total: str) -> None:
                chunks.append(piece)
                if len(chunks) == 3:
                    handle.cancel()

            handle = client.stream("A long story", model=MODEL, max_tokens=200, on_chunk=on_chunk)
            received = [piece async for piece in handle]
            assert handle.result is not None and handle.result.outcome == "cancelled"
            closed: list[str] = []
            async with client.stream("A long story", model=MODEL, max_tokens=200) as second:
                async for piece in second:
                    closed.append(piece)
                    if len(closed) == 2:
                        break
            assert second.result is not None and second.result.outcome == "cancelled"
            return received, closed

    received, closed = asyncio.run(main())
    assert len(received) == 3 and len(closed) == 2
    assert [o.outcome for o in sink.of(StreamOutcome)] == ["cancelled", "cancelled"]
    assert [c.status for c in sink.of(ApiCall)] == ["cancelled", "cancelled"]
    first, second = sink.of(Usage)  # partial usage billed for both
    assert 3 <= first.completion_tokens < 200 and 2 <= second.completion_tokens < 200


def test_cancel_before_the_first_token_ends_at_once(emulator_factory: Any, tmp_path: Path) -> None:
    """cancel() from another task interrupts the read that waits for the first token (it used to
    wait for it); the consuming task ends its loop quietly and is not cancelled itself."""
    emu = emulator_factory(faults=["*:slow:1"], latency_scale=0.5)  # ~5 s of keep-alives first
    settings = emu_settings(emu, tmp_path, read_timeout_s=10.0)
    sink = ListSink()

    async def main() -> tuple[list[str], float, str]:
        async with AsyncOpenRouterClient(settings, sink=sink) as client:
            handle = client.stream("A story", model=MODEL, max_tokens=50)

            async def consume() -> tuple[list[str], str]:
                pieces = [piece async for piece in handle]
                await asyncio.sleep(0)  # still a live task: the interrupt was taken back
                return pieces, "finished"

            started = time.monotonic()
            task = asyncio.create_task(consume())
            await asyncio.sleep(0.3)
            handle.cancel()
            pieces, state = await task
            return pieces, time.monotonic() - started, state

    pieces, elapsed, state = asyncio.run(main())
    assert pieces == [] and elapsed < 1.5 and state == "finished"
    assert [(c.attempt, c.status) for c in sink.of(ApiCall)] == [(1, "cancelled")]
    assert [o.outcome for o in sink.of(StreamOutcome)] == ["cancelled"]
