"""The OpenRouter client's speed: SSE parse + dispatch vs httpx-sse and the openai SDK (a real
reasoning stream, and a tool-call stream of many small argument deltas), and the per-request
overhead of the client (retry policy, tracking, parsing) over a bare httpx request.

Parse + dispatch times what a stream runs per network read: ``StreamRun.feed`` (SSE, JSON, the
interpretation of text, reasoning, tool-call deltas, usage and finish) and ``StreamRun.deliver``
per text piece or tool-call delta. The peers only split the events and ``json.loads`` them."""

from __future__ import annotations

import codecs
import json
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

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


class _Replay:
    """One :class:`~hive_core.openrouter.stream.StreamRun`, replayed as attempt after attempt: the
    bench times the very ``feed`` and ``deliver`` the clients (and the gateway) call per read."""

    def __init__(self) -> None:
        from hive_core.openrouter import NullSink
        from hive_core.openrouter.core import ClientCore
        from hive_core.openrouter.stream import Callbacks, StreamRun
        from hive_core.settings import Settings

        settings = Settings.from_env({"OPENROUTER_API_KEY": "sk-or-v1-bench"})
        core = ClientCore(settings, sink=NullSink(), prices=None, policy=None)
        record = core.tracker.request(MODEL, streamed=True)
        self.run = StreamRun(core, record, Callbacks(), [{"role": "user", "content": "hi"}])

    def __call__(self, chunks: Iterable[bytes]) -> int:
        run = self.run
        run.start_attempt(1)
        deliver = run.deliver
        for chunk in chunks:
            for item in run.feed(chunk):  # SSE, JSON, text/reasoning/tool-call/usage/finish interpretation
                deliver(item)  # what the stream hands the caller (text pieces, tool-call deltas)
        return run.reader.chunks + run.reader.done  # data events, [DONE] included


def hive_parse(chunks: Iterable[bytes]) -> int:
    """Events of one replay through a fresh :class:`_Replay` (the timed rounds reuse one)."""
    return _Replay()(chunks)


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
#: this thread's CPU time: parsing is CPU-bound and single-threaded, and on a machine others load,
#: wall time also counts the moments this process waits for a core (one run saw 0.68x-1.21x)
_cpu = time.thread_time


def _rates(parsers: dict[str, Callable[[Iterable[bytes]], int]], chunks: list[bytes], replays: int) -> dict[str, float]:
    """Events/s per parser: the median over ROUNDS interleaved rounds, so a noisy moment of the
    machine hits every parser alike instead of whichever happened to run then."""
    samples: dict[str, list[float]] = {name: [] for name in parsers}
    per_round = max(replays // ROUNDS, 1)
    for _ in range(ROUNDS):
        for name, parse in parsers.items():
            start = _cpu()
            events = sum(parse(chunks) for _ in range(per_round))
            samples[name].append(events / (_cpu() - start))
    return {name: statistics.median(values) for name, values in samples.items()}


def _parse_figure(name: str, source: str, chunks: list[bytes], replays: int, target: float) -> Figure:
    expected = hive_parse(chunks)
    assert httpx_sse_parse(chunks) == openai_parse(chunks) == expected, "parsers disagree on the event count"
    rates = _rates({"hive": _Replay(), "httpx-sse": httpx_sse_parse, "openai SDK": openai_parse}, chunks, replays)
    ours = rates.pop("hive")
    peers = rates
    best = max(peers, key=lambda k: peers[k])
    note = ", ".join(f"{k} {v:,.0f}/s" for k, v in peers.items())
    versus = f" vs httpx-sse {ours / peers['httpx-sse']:.2f}x" if best != "httpx-sse" else ""
    ours_share, stdlib_share = decode_shares(chunks, ours)
    return Figure(name, ours, "chunks/s", f">= {target:g}x faster peer", ours >= target * peers[best],
                  peer=best, peer_value=peers[best], ratio=ours / peers[best],
                  note=f"{source} x{replays}, {READ_SIZE}-byte reads, thread CPU time, median of {ROUNDS} "
                       f"interleaved rounds; "
                       f"{note}{versus}; decoding is {ours_share:.0%} of our time (stdlib json.loads "
                       f"would be {stdlib_share:.0%})")


def decode_shares(chunks: list[bytes], events_per_s: float) -> tuple[float, float]:
    """The part of our per-event time that decoding the JSON is: with our decoder (msgspec, into the
    reader's structs), and with stdlib ``json.loads`` into dicts instead (what the decoder saves)."""
    from hive_core.openrouter.chunk_types import decode
    from hive_core.openrouter.sse import SSEDecoder

    payloads = [data for data in SSEDecoder().feed_data(b"".join(chunks)) if data != b"[DONE]"]
    texts = [data.decode() for data in payloads]
    rounds = 200

    def share(loads: Callable[[Any], object], items: list[Any]) -> float:
        start = _cpu()
        for _ in range(rounds):
            for item in items:
                loads(item)
        return (_cpu() - start) / (rounds * (len(items) + 1)) * events_per_s

    return share(decode, payloads), share(json.loads, texts)


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
