"""The OpenRouter client's speed: SSE parse + dispatch vs httpx-sse and the openai SDK (a real
reasoning stream, and a tool-call stream of many small argument deltas), and the per-request
overhead of the client (retry policy, tracking, parsing) over a bare httpx request."""

from __future__ import annotations

import codecs
import json
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.common import Figure

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "openrouter"
RECORDING = SHARED / "recordings" / "stream_with_reasoning-200.sse"
#: a real answer whose one tool call has long arguments (1.1 kB of nested JSON)
TOOL_RECORDING = SHARED / "recordings" / "google_nested_schema-200.json"
FRAGMENT = 6  # characters of arguments per delta: providers stream a token or two at a time
REPLAYS = 10_000
READ_SIZE = 1024  # bytes per network read, as httpx hands them over
MODEL = "openai/gpt-4o-mini"


def _reads(raw: bytes) -> list[bytes]:
    return [raw[i : i + READ_SIZE] for i in range(0, len(raw), READ_SIZE)]


def _chunks() -> list[bytes]:
    return _reads(RECORDING.read_bytes())


def tool_call_stream() -> bytes:
    """The recorded tool call as OpenRouter streams one: a delta naming the call, then its
    arguments in small fragments (index only), the finish chunk, the usage chunk, ``[DONE]``."""
    doc = json.loads(TOOL_RECORDING.read_bytes())
    (call,) = doc["choices"][0]["message"]["tool_calls"]
    head = {"id": doc["id"], "provider": doc["provider"], "model": doc["model"], "object": "chat.completion.chunk",
            "created": doc["created"]}
    arguments = call["function"]["arguments"]
    deltas = [{"index": 0, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"],
                                                                           "arguments": ""}}]
    deltas += [{"index": 0, "function": {"arguments": arguments[i : i + FRAGMENT]}}
               for i in range(0, len(arguments), FRAGMENT)]
    events = [dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": "", "tool_calls": [d]},
                                   "finish_reason": None, "native_finish_reason": None, "logprobs": None}])
              for d in deltas]
    events.append(dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                       "finish_reason": "tool_calls", "native_finish_reason": "STOP"}]))
    events.append(dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                       "finish_reason": None}], usage=doc["usage"]))
    text = ": OPENROUTER PROCESSING\n\n" + "".join(f"data: {json.dumps(e, separators=(',', ':'))}\n\n"
                                                  for e in events)
    return (text + "data: [DONE]\n\n").encode()


def hive_parse(chunks: Iterable[bytes]) -> int:
    from hive_core.openrouter.chunks import ChunkReader
    from hive_core.openrouter.sse import SSEDecoder

    decoder, reader = SSEDecoder(), ChunkReader()
    n = 0
    dispatched: list[object] = []  # what the stream hands on_tool_call, drained as StreamRun does
    for chunk in chunks:
        for event in decoder.feed(chunk):
            reader.feed(event.data)  # JSON + text/reasoning/tool-call/usage/finish interpretation
            if reader.tool_events:
                dispatched.extend(reader.tool_events)
                reader.tool_events.clear()
            n += 1
    return n


def httpx_sse_parse(chunks: Iterable[bytes]) -> int:
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    text = codecs.getincrementaldecoder("utf-8")()
    lines, decoder = SSELineDecoder(), SSEDecoder()
    n = 0
    for chunk in chunks:
        for line in lines.decode(text.decode(chunk)):
            event = decoder.decode(line)
            if event is not None:
                if event.data != "[DONE]":
                    json.loads(event.data)
                n += 1
    return n


def openai_parse(chunks: Iterable[bytes]) -> int:
    from openai._streaming import SSEDecoder

    n = 0
    for event in SSEDecoder().iter_bytes(iter(chunks)):
        if event.data != "[DONE]":
            json.loads(event.data)
        n += 1
    return n


ROUNDS = 10


def _rates(parsers: dict[str, Callable[[Iterable[bytes]], int]], chunks: list[bytes], replays: int) -> dict[str, float]:
    """Events/s per parser: the median over ROUNDS interleaved rounds, so a noisy moment of the
    machine hits every parser alike instead of whichever happened to run then."""
    samples: dict[str, list[float]] = {name: [] for name in parsers}
    per_round = max(replays // ROUNDS, 1)
    for _ in range(ROUNDS):
        for name, parse in parsers.items():
            start = time.perf_counter()
            events = sum(parse(chunks) for _ in range(per_round))
            samples[name].append(events / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in samples.items()}


def _parse_figure(name: str, source: str, chunks: list[bytes], replays: int, target: float) -> Figure:
    expected = hive_parse(chunks)
    assert httpx_sse_parse(chunks) == openai_parse(chunks) == expected, "parsers disagree on the event count"
    rates = _rates({"hive": hive_parse, "httpx-sse": httpx_sse_parse, "openai SDK": openai_parse}, chunks, replays)
    ours = rates.pop("hive")
    peers = rates
    best = max(peers, key=lambda k: peers[k])
    note = ", ".join(f"{k} {v:,.0f}/s" for k, v in peers.items())
    versus = f" vs httpx-sse {ours / peers['httpx-sse']:.2f}x" if best != "httpx-sse" else ""
    share = json_share(chunks, ours)
    return Figure(name, ours, "chunks/s", f">= {target:g}x faster peer", ours >= target * peers[best],
                  peer=best, peer_value=peers[best], ratio=ours / peers[best],
                  note=f"{source} x{replays}, {READ_SIZE}-byte reads, median of {ROUNDS} interleaved rounds; "
                       f"{note}{versus}; stdlib json.loads alone is {share:.0%} of our time")


def json_share(chunks: list[bytes], events_per_s: float) -> float:
    """The part of our per-event time that is ``json.loads`` alone (what a faster decoder could cut)."""
    from hive_core.openrouter.sse import SSEDecoder

    payloads = [e.data for e in SSEDecoder().feed(b"".join(chunks)) if e.data != "[DONE]"]
    loads, rounds = json.loads, 200
    start = time.perf_counter()
    for _ in range(rounds):
        for payload in payloads:
            loads(payload)
    per_event = (time.perf_counter() - start) / (rounds * (len(payloads) + 1))
    return per_event * events_per_s


def parse_figures(replays: int = REPLAYS) -> list[Figure]:
    tools = _reads(tool_call_stream())
    return [
        _parse_figure("sse parse+dispatch (chunks/s)", RECORDING.name, _chunks(), replays, 1.0),
        # issue 13: tool-call deltas, >= 1.5x httpx-sse's event rate (peers only decode the JSON)
        _parse_figure("sse parse+dispatch, tool-call deltas (chunks/s)",
                      f"{TOOL_RECORDING.name} as {FRAGMENT}-char argument deltas", tools, replays, 1.5),
    ]


def overhead_figures(requests: int = 400) -> list[Figure]:
    import httpx

    from hive_core.openrouter import OpenRouterClient
    from hive_core.settings import Settings
    from hive_core.store.events import Event
    from hive_emulator import Emulator

    class MemorySink:
        def __init__(self) -> None:
            self.events: list[Event] = []

        def record(self, event: Event) -> None:
            self.events.append(event)

    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8,
            "usage": {"include": True}}
    with Emulator(SHARED / "models-2026-06.json", seed=1, latency_scale=0.0) as emu:
        settings = Settings(api_key=emu.api_key, base_url=emu.base_url)
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        ours: list[float] = []
        bare: list[float] = []
        with OpenRouterClient(settings, sink=MemorySink()) as client, httpx.Client() as http:
            for i in range(requests + 50):  # interleaved, so drift hits both alike; 50 warm-up
                start = time.perf_counter()
                client.chat("hi", model=MODEL, max_tokens=8)
                t_ours = time.perf_counter() - start
                start = time.perf_counter()
                http.post(f"{emu.base_url}/chat/completions", json=body, headers=headers).json()
                t_bare = time.perf_counter() - start
                if i >= 50:
                    ours.append(t_ours)
                    bare.append(t_bare)
    added_ms = (statistics.median(ours) - statistics.median(bare)) * 1000
    return [Figure("client overhead per request (median)", added_ms, "ms", "<= 0.5 ms", added_ms <= 0.5,
                   peer="bare httpx request", peer_value=statistics.median(bare) * 1000,
                   note=f"emulator latency_scale 0, {requests} requests each, ours median "
                        f"{statistics.median(ours) * 1000:.3f} ms")]


def run() -> list[Figure]:
    """The figures of ``make bench`` for the client."""
    return parse_figures() + overhead_figures()
