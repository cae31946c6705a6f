"""The async client under load (issue 13: CPU per request at concurrency 32 <= 1 ms), beside a bare
``httpx.AsyncClient`` (httpcore's pool) and an ``aiohttp.ClientSession`` (the floor), the overhead
at concurrency 1, and streamed completions at concurrency 32 (each stream's connection reused).
The emulator runs in its own process, so ``time.process_time`` counts only the client side (every
thread of this process)."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path

from bench.common import Figure

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "openrouter"
MODEL = "openai/gpt-4o-mini"
KEY = "sk-or-v1-bench"
ROUNDS = 5
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "usage": {"include": True}}


async def _load(send: Callable[[], Awaitable[object]], requests: int, concurrency: int) -> float:
    """CPU seconds per request of ``requests`` calls of ``send`` with ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await send()

    await asyncio.gather(*(one() for _ in range(concurrency)))  # warm the connections
    start = time.process_time()
    await asyncio.gather(*(one() for _ in range(requests)))
    return (time.process_time() - start) / requests


def _clients(base_url: str, requests: int, concurrency: int,
             stream: bool = False) -> dict[str, Callable[[], Coroutine[None, None, float]]]:
    """The three clients' runs; ``stream``: streamed completions, which the peers read to the end
    (their lines, unparsed) while Hive parses every event, as its callers get them."""
    import aiohttp
    import httpx

    from hive_core.openrouter import AsyncOpenRouterClient, NullSink
    from hive_core.settings import Settings

    auth = {"Authorization": f"Bearer {KEY}"}
    body = {**BODY, "stream": True} if stream else BODY
    url = f"{base_url}/chat/completions"

    async def hive() -> float:
        settings = Settings.from_env({"OPENROUTER_API_KEY": KEY, "OPENROUTER_BASE_URL": base_url})
        async with AsyncOpenRouterClient(settings, sink=NullSink()) as client:
            if stream:
                return await _load(lambda: client.stream("hi", model=MODEL, max_tokens=8).collect(), requests,
                                   concurrency)
            return await _load(lambda: client.chat("hi", model=MODEL, max_tokens=8), requests, concurrency)

    async def bare() -> float:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency), headers=auth) as http:
            async def one() -> object:
                if stream:
                    async with http.stream("POST", url, json=body) as response:
                        return [line async for line in response.aiter_lines()]
                return (await http.post(url, json=body)).json()

            return await _load(one, requests, concurrency)

    async def floor() -> float:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=auth) as session:
            async def one() -> object:
                async with session.post(url, json=body) as response:
                    if stream:
                        return [line async for line in response.content]
                    return json.loads(await response.read())

            return await _load(one, requests, concurrency)

    return {"hive": hive, "httpx": bare, "aiohttp": floor}


def async_load_figures(requests: int = 640, concurrency: int = 32) -> list[Figure]:
    """Ours, bare httpx and aiohttp, interleaved over :data:`ROUNDS` rounds (a noisy moment of the
    machine hits all three alike); medians."""
    emulator = subprocess.Popen(
        [str(Path(sys.executable).with_name("hive-emulator")), "--catalog", str(SHARED / "models-2026-06.json"),
         "--latency-scale", "0", "--api-key", KEY], stdout=subprocess.PIPE, text=True)
    try:
        line = emulator.stdout.readline() if emulator.stdout else ""
        base_url = line.strip().rsplit(" ", 1)[-1]  # "listening on http://127.0.0.1:PORT/api/v1"
        figures = []
        for level, n, stream in ((concurrency, requests, False), (1, requests // 4, False),
                                 (concurrency, requests // 2, True)):
            runs = _clients(base_url, n, level, stream)
            samples: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(ROUNDS):
                for name, run in runs.items():
                    samples[name].append(asyncio.run(run()))
            ms = {name: statistics.median(values) * 1000 for name, values in samples.items()}
            figures.append(_figure(level, n, ms, stream))
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    return figures


def _figure(concurrency: int, requests: int, ms: dict[str, float], stream: bool) -> Figure:
    target, ok = ("<= 1 ms", ms["hive"] <= 1.0) if concurrency > 1 and not stream else ("-", None)
    what = ("streamed completion (8 tokens; peers read the lines unparsed), " if stream else "") + \
        f"concurrency {concurrency}"
    return Figure(f"async client CPU per request, {what}", ms["hive"], "ms", target, ok,
                  peer="bare httpx AsyncClient", peer_value=ms["httpx"], ratio=ms["hive"] / ms["httpx"],
                  note=f"aiohttp ClientSession (floor) {ms['aiohttp']:.3f} ms, ours {ms['hive'] / ms['aiohttp']:.2f}x "
                       f"aiohttp; process CPU / requests, {requests} requests x {ROUNDS} interleaved rounds, "
                       "emulator in its own process (latency_scale 0)")


def run() -> list[Figure]:
    """The figures of ``make bench`` for the async client under load."""
    return async_load_figures()


__all__ = ["async_load_figures", "run"]
