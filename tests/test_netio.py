"""The async pool's socket (:mod:`hive_core.openrouter.netio`) against a real server on 127.0.0.1: its
read timeout is a deadline per read (between bytes, as ``HIVE_READ_TIMEOUT`` says), enforced by one
timer per connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from hive_core.openrouter import neterrors
from hive_core.openrouter.netio import AsyncSocketStream, open_stream

Serve = Callable[[asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def connected(serve: Serve) -> AsyncIterator[AsyncSocketStream]:
    """A stream to a server that runs ``serve`` on its one connection."""
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await serve(writer)
            await done.wait()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    stream = await open_stream("127.0.0.1", server.sockets[0].getsockname()[1], ssl_context=None, timeout=5)
    try:
        yield stream
    finally:
        stream.close()
        done.set()
        server.close()
        await server.wait_closed()


def _run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 60))


def test_a_slow_steady_answer_never_times_out_however_long_it_takes_in_all() -> None:
    """50 bytes 20 ms apart: a second in all, twice the read timeout, and no read waits that long."""
    async def drip(writer: asyncio.StreamWriter) -> None:
        for _ in range(50):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.02)

    async def body() -> None:
        async with connected(drip) as stream:
            started, got = time.monotonic(), b""
            while len(got) < 50:
                got += await stream.read(1024, timeout=0.5)
            assert time.monotonic() - started > 0.5

    _run(body)


def test_a_stall_times_out_at_that_reads_deadline_also_after_reads_with_a_longer_one() -> None:
    """The timer set for a 30 s read is brought forward for a 0.2 s one on the same connection; a
    read after the timeout waits again (the timer ends with no read waiting, the next sets another)."""
    async def one_byte_then_silence(writer: asyncio.StreamWriter) -> None:
        writer.write(b"x")
        await writer.drain()

    async def body() -> None:
        async with connected(one_byte_then_silence) as stream:
            assert await stream.read(1024, timeout=30) == b"x"
            for _ in range(2):
                started = time.monotonic()
                with pytest.raises(neterrors.ReadTimeout, match="timed out reading"):
                    await stream.read(1024, timeout=0.2)
                assert 0.15 < time.monotonic() - started < 10  # not the 30 s of the first read
            stream.close()
            assert stream._timer is None  # a closed stream holds no timer

    _run(body)


def test_a_read_without_a_timeout_waits_for_the_servers_close() -> None:
    async def close_soon(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.3)
        writer.close()

    async def body() -> None:
        async with connected(close_soon) as stream:
            assert await stream.read(1024) == b""

    _run(body)
