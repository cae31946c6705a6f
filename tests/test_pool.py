"""The clients' connection pool over real sockets on 127.0.0.1: the emulator, and a tiny asyncio
HTTP/1.1 server of this module's own for the edge cases (it counts the TCP connections it accepted,
closes idle ones on demand, and can stall a response)."""

from __future__ import annotations

import asyncio
import importlib.abc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hive_core.errors import ReadTimeout
from hive_core.openrouter import AsyncOpenRouterClient, NullSink, OpenRouterClient
from hive_core.openrouter.core import ClientCore
from hive_core.openrouter.pool import PoolTransport
from hive_core.openrouter.pool_async import AsyncPoolTransport
from hive_core.settings import Settings
from tests.plugins.emulator import MODEL, emu_settings

BODY = b"x" * 2_000_000  # more than the socket stream buffers: a half-read response leaves bytes in flight


class Server:
    """A keep-alive HTTP/1.1 server: ``/small`` answers 2 bytes, ``/big`` :data:`BODY`, ``/slow``
    waits for :attr:`release` before answering, ``.../chat/completions`` streams :attr:`sse` chunked
    (its end held back until :attr:`release` when :attr:`hold_end`). ``accepted`` counts TCP connections."""

    def __init__(self) -> None:
        self.accepted = 0
        self.active = 0
        self.peak = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.release = asyncio.Event()
        self.port = 0
        self.sse = b""
        self.hold_end = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                path = head.split(b" ")[1]
                if path.endswith(b"/chat/completions"):
                    await self.stream(writer)
                    continue
                self.active += 1
                self.peak = max(self.peak, self.active)
                if path == b"/slow":
                    await self.release.wait()
                await asyncio.sleep(0.001)
                self.active -= 1
                body = BODY if path == b"/big" else b"ok"
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stream(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for event in self.sse.split(b"\n\n"):
            if event.strip():
                writer.write(b"%x\r\n%s\n\n\r\n" % (len(event) + 2, event))
        await writer.drain()
        if self.hold_end:
            await self.release.wait()
        writer.write(b"0\r\n\r\n")

    async def close_idle(self) -> None:
        """Close every connection from the server's side (as a server's keep-alive timeout does)."""
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@asynccontextmanager
async def serving() -> AsyncIterator[Server]:
    server = Server()
    tcp = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = tcp.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        server.release.set()
        tcp.close()
        await server.close_idle()


def pool(max_connections: int = 4, pool_timeout: float = 5.0) -> tuple[AsyncPoolTransport, httpx.AsyncClient]:
    transport = AsyncPoolTransport(httpx.Limits(max_connections=max_connections))
    client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, pool=pool_timeout))
    return transport, client


async def settle(transport: AsyncPoolTransport, expected: tuple[int, int]) -> None:
    """Let the loop run the callbacks of closed sockets until the pool reports ``expected``."""
    for _ in range(200):
        if transport.connections == expected:
            return
        await asyncio.sleep(0.005)
    assert transport.connections == expected


def test_connection_limit_holds_under_64_concurrent_requests_and_connections_are_reused() -> None:
    async def main() -> None:
        async with serving() as server:
            transport, client = pool(max_connections=4)
            async with client:
                answers = await asyncio.gather(*(client.get(server.url("/small")) for _ in range(64)))
                assert [a.content for a in answers] == [b"ok"] * 64
                assert server.accepted == 4 and server.peak <= 4  # never more than 4 at once, each reused
                await asyncio.gather(*(client.get(server.url("/small")) for _ in range(64)))
                assert server.accepted == 4
                assert transport.connections == (4, 4)

    asyncio.run(main())


def test_a_server_closed_keepalive_connection_is_replaced_without_a_failed_request() -> None:
    async def main() -> None:
        async with serving() as server:
            transport, client = pool()
            async with client:
                assert (await client.get(server.url("/small"))).content == b"ok"
                await server.close_idle()
                await asyncio.sleep(0.05)  # the FIN reaches the client's socket
                assert (await client.get(server.url("/small"))).content == b"ok"
                assert server.accepted == 2
                assert transport.connections == (1, 1)

    asyncio.run(main())


def test_pool_timeout_is_typed_and_the_pool_recovers() -> None:
    async def main() -> None:
        async with serving() as server:
            transport, client = pool(max_connections=1, pool_timeout=0.05)
            async with client:
                slow = asyncio.create_task(client.get(server.url("/slow")))
                while server.active == 0:
                    await asyncio.sleep(0.001)
                with pytest.raises(httpx.PoolTimeout):
                    await client.get(server.url("/small"))
                server.release.set()
                assert (await slow).content == b"ok"
                assert (await client.get(server.url("/small"))).content == b"ok"
                assert transport.connections == (1, 1) and server.accepted == 1

    asyncio.run(main())


def test_the_client_turns_a_pool_timeout_into_a_key_free_typed_error(emulator: Any, tmp_path: Path) -> None:
    settings = emu_settings(emulator, tmp_path, max_attempts=1)
    core = ClientCore(settings, sink=None, prices=None, policy=None)
    error = core.transport_error(httpx.PoolTimeout("no connection free", request=httpx.Request("POST", "http://h/x")))
    assert isinstance(error, ReadTimeout) and settings.require_api_key() not in str(error)


def test_cancel_while_waiting_and_while_streaming_leaks_nothing() -> None:
    async def main() -> None:
        async with serving() as server:
            transport, client = pool(max_connections=2)
            async with client:
                held = [asyncio.create_task(client.get(server.url("/slow"))) for _ in range(2)]
                while server.active < 2:
                    await asyncio.sleep(0.001)
                waiting = [asyncio.create_task(client.get(server.url("/small"))) for _ in range(3)]
                await asyncio.sleep(0.01)
                for task in waiting:  # cancelled while queued for a connection
                    task.cancel()
                held[0].cancel()  # cancelled in flight: its connection is closed, not reused
                await asyncio.gather(*waiting, held[0], return_exceptions=True)
                server.release.set()
                assert (await held[1]).content == b"ok"

                async with client.stream("GET", server.url("/big")) as response:  # cancelled mid-stream
                    reading = asyncio.create_task(response.aread())
                    await asyncio.sleep(0)
                    reading.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await reading
                # full capacity again: two requests at once, answered
                answers = await asyncio.gather(*(client.get(server.url("/small")) for _ in range(2)))
                assert [a.content for a in answers] == [b"ok", b"ok"]
                await settle(transport, (2, 2))

    asyncio.run(main())


def test_a_stream_abandoned_half_read_does_not_return_a_dirty_connection() -> None:
    async def main() -> None:
        async with serving() as server:
            transport, client = pool(max_connections=1)
            async with client:
                async with client.stream("GET", server.url("/big")) as response:
                    async for _ in response.aiter_raw(1024):
                        break  # the rest of the body is still coming
                await settle(transport, (0, 0))  # closed, not parked
                answer = await client.get(server.url("/small"))  # would read the old body's bytes
                assert answer.content == b"ok"
                assert server.accepted == 2

    asyncio.run(main())


def test_a_response_closed_unread_whose_end_arrived_leaves_a_clean_connection() -> None:
    async def main() -> None:
        async with serving() as server:
            transport, client = pool(max_connections=1)
            async with client:
                async with client.stream("GET", server.url("/small")):
                    await asyncio.sleep(0.05)  # the answer arrives; nobody reads it
                assert transport.connections == (1, 1)  # its end was here: parked, not closed
                assert (await client.get(server.url("/small"))).content == b"ok"
                assert server.accepted == 1

    asyncio.run(main())


@pytest.mark.parametrize("hold_end", [False, True], ids=["end-follows", "end-withheld"])
def test_a_stream_ended_by_done_keeps_its_connection_unless_the_body_stays_open(
        recordings_dir: Path, hold_end: bool) -> None:
    """At ``[DONE]`` the body's last chunk marker is still to come: the handle waits for it (briefly)
    so the next request reuses the connection; a server that holds it back costs the stream no
    more than that wait, and its connection is closed."""
    async def main() -> None:
        async with serving() as server:
            server.sse = (recordings_dir / "stream_with_reasoning-200.sse").read_bytes()
            server.hold_end = hold_end
            settings = Settings.from_env({"OPENROUTER_API_KEY": "sk-or-v1-pool",
                                          "OPENROUTER_BASE_URL": f"http://127.0.0.1:{server.port}/api/v1"})
            async with AsyncOpenRouterClient(settings, sink=NullSink()) as client:
                transport = client._http._transport
                assert isinstance(transport, AsyncPoolTransport)
                for _ in range(2):
                    result = await client.stream("hi", model=MODEL).collect()
                    assert result.outcome == "completed" and result.text
                assert transport.connections == ((0, 0) if hold_end else (1, 1))
                assert server.accepted == (2 if hold_end else 1)

    asyncio.run(main())


def test_the_sync_pool_reuses_and_replaces_connections() -> None:
    async def main() -> None:
        async with serving() as server:
            transport = PoolTransport(httpx.Limits(max_connections=2))
            with httpx.Client(transport=transport, timeout=5.0) as client:
                def three() -> list[bytes]:
                    return [client.get(server.url("/small")).content for _ in range(3)]

                assert await asyncio.to_thread(three) == [b"ok"] * 3
                assert server.accepted == 1
                await server.close_idle()
                await asyncio.sleep(0.05)
                assert await asyncio.to_thread(three) == [b"ok"] * 3
                assert server.accepted == 2 and transport.connections == (1, 1)

                def abandon() -> None:
                    with client.stream("GET", server.url("/big")) as response:
                        next(response.iter_raw(1024))

                await asyncio.to_thread(abandon)
                assert transport.connections == (0, 0)  # the half-read one was closed, not parked
                assert await asyncio.to_thread(three) == [b"ok"] * 3

    asyncio.run(main())


class _Refuse(importlib.abc.MetaPathFinder):
    """Counts the imports that reach the finders (not yet in ``sys.modules``); refuses ``sniffio``
    as a clean install does (only the openai test extra pulls it into .venv)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        self.asked.append(name)
        if name == "sniffio":
            raise ModuleNotFoundError("No module named 'sniffio'", name=name)


def test_no_request_imports_anything(emulator: Any, tmp_path: Path) -> None:
    """httpcore's pool retries ``import sniffio`` on every request when sniffio is missing."""
    settings = emu_settings(emulator, tmp_path, read_timeout_s=10.0)
    finder = _Refuse()

    async def main() -> None:
        async with AsyncOpenRouterClient(settings, sink=NullSink()) as client:
            await asyncio.gather(*(client.chat("hi", model=MODEL, max_tokens=5) for _ in range(4)))  # warm
            async for _ in client.stream("hi", model=MODEL, max_tokens=5):  # first use imports (budget estimate)
                pass
            saved = sys.modules.pop("sniffio", None)  # as if never installed
            sys.meta_path.insert(0, finder)
            try:
                await asyncio.gather(*(client.chat("hi", model=MODEL, max_tokens=5) for _ in range(8)))
                async for _ in client.stream("hi", model=MODEL, max_tokens=5):
                    pass
            finally:
                sys.meta_path.remove(finder)
                if saved is not None:
                    sys.modules["sniffio"] = saved

    asyncio.run(main())
    assert finder.asked == []


def test_the_sync_client_uses_the_pool(emulator: Any, tmp_path: Path) -> None:
    settings = emu_settings(emulator, tmp_path, read_timeout_s=10.0)
    with OpenRouterClient(settings, sink=NullSink()) as client:
        assert "".join(client.stream("hi", model=MODEL, max_tokens=5))
        for _ in range(3):
            assert client.chat("hi", model=MODEL, max_tokens=5).text
        assert isinstance(client._http._transport, PoolTransport)
        assert client._http._transport.connections == (1, 1)  # one connection, reused
