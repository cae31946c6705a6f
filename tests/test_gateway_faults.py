"""The gateway under the emulator's faults, client disconnects, SIGTERM and revoked keys: every request
recorded exactly once, every reservation settled or released (nothing left reserved in the ledger, unless
the ledger itself failed to write a settlement)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
from openai import OpenAI

from hive_core.store.datadir import DataDir
from hive_emulator import Emulator
from tests.faults import full_disk, refuse_spend
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL, seed_failing_first
from tests.plugins.gateway import serving
from tests.plugins.store import events

if TYPE_CHECKING:
    from hive_gateway.observe import RequestSummary
    from tests.plugins.gateway import GatewayProcess


OTHER = "mistralai/mistral-nemo"
HI = [{"role": "user", "content": "hi"}]
Start = Callable[..., "GatewayProcess"]


def _budgeted(emu: Emulator, tmp_path: Path) -> Path:
    """A data directory with a generous daily limit: every request holds a reservation."""
    data = tmp_path / "data"
    assert run_cli("hive", ["budget", "set", "--daily", "100"], hive_env(emu, data)).returncode == 0
    return data


def _reserved(data: Path) -> float:
    from hive_core.budget.ledger import Ledger
    from hive_core.store.datadir import DataDir

    with Ledger(DataDir(data).ledger) as ledger:
        return ledger.reserved("global")


def _sdk(gateway: GatewayProcess, **options: Any) -> OpenAI:
    return OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", max_retries=0, timeout=30, **options)


def test_a_retried_429_is_two_attempts_and_one_usage(emulator_factory: Callable[..., Emulator],
                                                     gateway_factory: Start, tmp_path: Path) -> None:
    emu = emulator_factory(faults=["*:429:0.5"], seed=seed_failing_first("429"))
    gateway = gateway_factory(emu, "--no-auth", data_dir=_budgeted(emu, tmp_path))
    with _sdk(gateway) as sdk:
        answer = sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5)  # type: ignore[arg-type]
    assert answer.model == MODEL
    assert gateway.wait_events("api_call", 2, "attempt, status, http_status") == [
        (1, "rate_limited", 429), (2, "ok", 200)]
    assert len(gateway.wait_events("usage", 1, "request_id")) == 1
    assert gateway.stop() == 0
    assert _reserved(gateway.data_dir) == 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_model_falls_back_to_the_requests_models(emulator_factory: Callable[..., Emulator],
                                                           gateway_factory: Start, tmp_path: Path,
                                                           stream: bool) -> None:
    emu = emulator_factory(faults=[f"{MODEL}:502"])
    gateway = gateway_factory(emu, "--no-auth", data_dir=_budgeted(emu, tmp_path))
    body = {"model": MODEL, "models": [OTHER], "messages": HI, "max_tokens": 5, "stream": stream}
    answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == 200
    served = json.loads(answer.text.split("data: ")[1]) if stream else answer.json()
    assert served["model"] == OTHER
    calls = gateway.wait_events("api_call", 3, "model, attempt, status, fallback_index, request_id")
    assert [c[:4] for c in calls] == [(MODEL, 1, "server_error", 0), (MODEL, 2, "server_error", 0), (OTHER, 1, "ok", 1)]
    assert {c[4] for c in calls} == {answer.headers["x-hive-request-id"]}
    assert gateway.wait_events("usage", 1, "model") == [(OTHER,)]
    assert gateway.stop() == 0
    assert _reserved(gateway.data_dir) == 0
    assert len(events(gateway.data_dir, "usage", "*")) == 1  # once, after the flush at exit too


def test_a_mid_stream_error_is_relayed_as_openrouter_sends_it(emulator_factory: Callable[..., Emulator],
                                                              gateway_factory: Start, tmp_path: Path) -> None:
    emu = emulator_factory(faults=["*:midstream-error"])
    gateway = gateway_factory(emu, "--no-auth", data_dir=_budgeted(emu, tmp_path))
    body = {"model": MODEL, "models": [OTHER], "messages": HI, "max_tokens": 20, "stream": True}
    answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=30)
    data = [line.removeprefix("data: ") for line in answer.text.split("\n\n") if line.startswith("data: ")]
    assert answer.status_code == 200 and data[-1] == "[DONE]"
    error = json.loads(data[-2])
    assert error["error"]["code"] == 502 and error["model"] == MODEL  # no fallback after tokens
    with _sdk(gateway) as sdk, pytest.raises(openai.APIError):
        list(sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=20, stream=True))  # type: ignore[arg-type]
    assert gateway.stop() == 0
    assert [r[0] for r in events(gateway.data_dir, "stream_outcome", "outcome")] == ["errored", "errored"]
    assert len(events(gateway.data_dir, "usage", "*")) == 2
    assert _reserved(gateway.data_dir) == 0


def test_a_client_that_disconnects_cancels_the_upstream_stream(emulator_factory: Callable[..., Emulator],
                                                               gateway_factory: Start, tmp_path: Path) -> None:
    emu = emulator_factory(latency_scale=1.0)  # real pacing: a 400-token answer takes seconds
    gateway = gateway_factory(emu, "--no-auth", data_dir=_budgeted(emu, tmp_path))
    body = {"model": MODEL, "messages": HI, "max_tokens": 400, "stream": True}
    with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions", json=body, timeout=30) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: {"):
                break  # one token, then hang up
    outcome = gateway.wait_events("stream_outcome", 1, "outcome, completion_tokens")
    assert outcome[0][0] == "cancelled" and outcome[0][1] < 400
    assert gateway.wait_events("api_call", 1, "status, http_status") == [("cancelled", 200)]
    assert gateway.stop() == 0
    assert len(events(gateway.data_dir, "usage", "*")) == 1  # the partial usage, reconcilable
    assert len(events(gateway.data_dir, "stream_outcome", "*")) == 1
    assert _reserved(gateway.data_dir) == 0


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_timeout_is_a_504_after_the_retries(emulator_factory: Callable[..., Emulator],
                                                        gateway_factory: Start, tmp_path: Path, stream: bool) -> None:
    emu = emulator_factory(faults=["*:timeout"])
    gateway = gateway_factory(emu, "--no-auth", data_dir=_budgeted(emu, tmp_path), env={"HIVE_READ_TIMEOUT": "0.3"})
    body = {"model": MODEL, "messages": HI, "max_tokens": 5, "stream": stream}
    answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == 504 and answer.json()["error"]["code"] == "upstream_timeout"
    assert gateway.wait_events("api_call", 2, "attempt, status") == [(1, "timeout"), (2, "timeout")]
    assert gateway.stop() == 0
    assert events(gateway.data_dir, "usage", "*") == []
    assert _reserved(gateway.data_dir) == 0


def _stream_in_thread(url: str, results: list[str], first: threading.Semaphore) -> threading.Thread:
    def run() -> None:
        body = {"model": MODEL, "messages": HI, "max_tokens": 60, "stream": True}
        text = ""
        try:
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as answer:
                for chunk in answer.iter_text():
                    if not text:
                        first.release()
                    text += chunk
        except httpx.HTTPError as exc:
            text += f"<{type(exc).__name__}>"
        results.append(text)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("drain", ["30", "0.2"])
def test_sigterm_during_20_streams_loses_nothing(emulator_factory: Callable[..., Emulator],
                                                 gateway_factory: Start, tmp_path: Path, drain: str) -> None:
    emu = emulator_factory(latency_scale=0.5)  # 60 tokens: about a second each
    gateway = gateway_factory(emu, "--no-auth", "--drain", drain, data_dir=_budgeted(emu, tmp_path))
    results: list[str] = []
    first = threading.Semaphore(0)
    threads = [_stream_in_thread(gateway.base_url, results, first) for _ in range(20)]
    for _ in threads:
        assert first.acquire(timeout=60)  # every stream has its first bytes: all are in flight
    assert gateway.stop(signal.SIGTERM) == 0
    for thread in threads:
        thread.join(60)
    outcomes = [r[0] for r in events(gateway.data_dir, "stream_outcome", "outcome")]
    errors = {part for part in gateway.stderr.split() if part.startswith("error=")}
    assert len(outcomes) == 20 and set(outcomes) <= {"completed", "cancelled"}, (outcomes, errors)
    assert all(text.rstrip().endswith("data: [DONE]") for text in results), results  # none left hanging
    # a cancelled stream's client is told why, in its last event
    assert sum("gateway_shutting_down" in text for text in results) == outcomes.count("cancelled")
    if drain == "30":
        assert outcomes == ["completed"] * 20
    assert len(events(gateway.data_dir, "usage", "*")) == 20
    assert len(events(gateway.data_dir, "api_call", "*")) == 20
    assert _reserved(gateway.data_dir) == 0


@pytest.mark.parametrize("stream", [True, False])
def test_sigterm_cancels_what_still_runs_at_the_drain_deadline_not_later(
        emulator_factory: Callable[..., Emulator], gateway_factory: Start, tmp_path: Path, stream: bool) -> None:
    """``--drain 2``: a request that would run for a minute is cancelled about 2 s after SIGTERM (not
    after twice that: aiohttp's own shutdown waits its timeout twice), recorded and released before
    the ledger and the log close, and its client is told why: a 503 an SDK retries elsewhere, or,
    once the stream started, OpenRouter's error event and ``[DONE]``."""
    emu = emulator_factory(faults=["*:slow"], latency_scale=6.0)  # a keep-alive comment every 3 s for a minute
    gateway = gateway_factory(emu, "--no-auth", "--drain", "2", data_dir=_budgeted(emu, tmp_path))
    answers: list[httpx.Response] = []
    results: list[str] = []
    first = threading.Semaphore(0)
    if stream:
        thread = _stream_in_thread(gateway.base_url, results, first)
        assert first.acquire(timeout=60)  # its first keep-alive comment is relayed: the stream started
    else:
        body = {"model": MODEL, "messages": HI, "max_tokens": 5}
        thread = threading.Thread(target=lambda: answers.append(
            httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=60)))
        thread.start()
        _wait_in_flight(gateway)
    started = time.monotonic()
    assert gateway.stop(signal.SIGTERM) == 0
    took = time.monotonic() - started
    thread.join(60)
    assert 2.0 <= took < 3.9, f"exited {took:.2f} s after SIGTERM with --drain 2"  # (twice the drain: 4.1 s)
    if stream:
        data = [line.removeprefix("data: ") for line in results[0].split("\n\n") if line.startswith("data: ")]
        assert data[-1] == "[DONE]" and json.loads(data[-2])["error"]["code"] == 503, results
        assert json.loads(data[-2])["error"]["metadata"]["error_type"] == "gateway_shutting_down"
        assert [r[0] for r in events(gateway.data_dir, "stream_outcome", "outcome")] == ["cancelled"]
        assert len(events(gateway.data_dir, "usage", "*")) == 1  # the prompt's tokens, billed as OpenRouter bills them
    else:
        assert answers[0].status_code == 503 and answers[0].headers["retry-after"] == "1"
        assert answers[0].json()["error"]["code"] == "gateway_shutting_down"
        assert events(gateway.data_dir, "usage", "*") == []  # nothing was billed
    assert events(gateway.data_dir, "api_call", "status") == [("cancelled",)]
    assert _reserved(gateway.data_dir) == 0
    assert "Traceback" not in gateway.stderr, gateway.stderr
    assert "error=DrainDeadline" in gateway.stderr  # the access log: the gateway cut it, not the client


def _rows_body(model: str, *, stream: bool, max_tokens: int = 60_000) -> bytes:
    """A structured-output request whose answer is as long as the model may make it (its stream:
    megabytes; latency_scale 0 sends it at once)."""
    schema = {"type": "object", "required": ["rows"], "properties": {"rows": {
        "type": "array", "minItems": 4000, "items": {"type": "string", "minLength": 400}}}}
    return json.dumps({"model": model, "messages": HI, "max_tokens": max_tokens, "stream": stream, "response_format": {
        "type": "json_schema", "json_schema": {"name": "rows", "strict": True, "schema": schema}}}).encode()


def _raw_post(body: bytes) -> bytes:
    """``POST /v1/chat/completions`` of ``body`` as a client's socket sends it."""
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def _stalled_stream(gateway: GatewayProcess) -> socket.socket:
    """A client socket (small receive buffer) that asked ``gateway`` for a multi-megabyte stream and
    read the first bytes of its 200: it reads no more unless the caller does."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(30)
    client.connect(("127.0.0.1", gateway.port))
    client.sendall(_raw_post(_rows_body(MODEL, stream=True)))
    try:
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
    except BaseException:
        client.close()
        raise
    return client


def test_a_client_that_stopped_reading_does_not_hold_up_the_exit_past_the_drain(
        emulator_factory: Callable[..., Emulator], gateway_factory: Start, tmp_path: Path) -> None:
    """A stream's client reads its first bytes, then nothing: the gateway's writes wait on the full
    socket. ``--drain 1`` cancels it at the deadline, and telling that client why does not hold up
    the exit either: the drain's cancellation cuts aiohttp's wait for the socket, which ends the
    last write at once (a last write that waits afresh: the next test). Its events are recorded
    and its reservation settled all the same."""
    emu = emulator_factory(latency_scale=0.0)  # the whole stream at once: megabytes the client never reads
    gateway = gateway_factory(emu, "--no-auth", "--drain", "1", data_dir=_budgeted(emu, tmp_path))
    client = _stalled_stream(gateway)
    try:
        # (the relay fills the socket in milliseconds: the drain's second is plenty)
        started = time.monotonic()
        assert gateway.stop(signal.SIGTERM) == 0
        took = time.monotonic() - started
    finally:
        client.close()
    assert 1.0 <= took < 4.0, f"exited {took:.2f} s after SIGTERM with --drain 1"
    assert [r[0] for r in events(gateway.data_dir, "stream_outcome", "outcome")] == ["cancelled"]
    assert events(gateway.data_dir, "api_call", "status") == [("cancelled",)]
    assert len(events(gateway.data_dir, "usage", "*")) == 1
    assert _reserved(gateway.data_dir) == 0
    assert "Traceback" not in gateway.stderr, gateway.stderr
    # logged as the other streams the deadline cut: the 200 its client got, and why it ended
    assert re.search(r"status=200 .* stream=true .* error=DrainDeadline$", gateway.stderr, re.MULTILINE), gateway.stderr


def test_the_last_words_to_a_client_that_stopped_reading_take_at_most_a_second() -> None:
    """The drain's deadline cut a stream whose client reads nothing, its socket full, and telling
    it why starts a fresh wait for that socket: the write gives up after ``LAST_WORDS_S`` rather
    than hold the worker's exit. A real aiohttp server on 127.0.0.1 and a client socket that reads
    only the response's first bytes."""
    from aiohttp import web

    from hive_gateway.chat import DRAIN_DEADLINE, LAST_WORDS_S, SHUTTING_DOWN, Tally, _failure
    from hive_gateway.relay import Downstream
    from hive_gateway.sending import SendWatch

    took: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        out = Downstream(request, {}, SendWatch())
        await out.send(b": open\n\n")
        assert request.transport is not None
        request.transport.write(b": " + b"y" * 8_000_000 + b"\n\n")  # past every buffer: the socket is full
        tally = Tally(drained=True, error_class=DRAIN_DEADLINE)
        started = time.monotonic()
        response = await _failure(out, {}, tally, SHUTTING_DOWN)
        took.append(time.monotonic() - started)
        assert tally.error_class == DRAIN_DEADLINE
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/", handler)
        async with serving(app) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
            writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            writer.transport.pause_reading()  # and not one more byte
            deadline = time.monotonic() + 30
            while not took:
                assert time.monotonic() < deadline, "the last write never gave up"
                await asyncio.sleep(0.05)
            writer.close()

    asyncio.run(asyncio.wait_for(main(), 60))
    assert LAST_WORDS_S <= took[0] < LAST_WORDS_S + 1.5, took


def test_a_client_that_stops_reading_is_cut_off_after_the_send_timeout(
        emulator_factory: Callable[..., Emulator], gateway_factory: Start, tmp_path: Path) -> None:
    """A stream's client reads its first bytes, then nothing, and stays connected: once a write to
    it has waited ``--send-timeout`` (1 s here) the gateway drops the connection, cancels the
    upstream stream and records it as a disconnect (cancelled, its partial usage, the reservation
    settled). The access log says the 200 it got and ``error=SendTimeout``; the worker serves on."""
    emu = emulator_factory(latency_scale=0.0)
    gateway = gateway_factory(emu, "--no-auth", "--send-timeout", "1", data_dir=_budgeted(emu, tmp_path))
    client = _stalled_stream(gateway)
    try:
        started = time.monotonic()
        outcome = gateway.wait_events("stream_outcome", 1, "outcome, completion_tokens")
        took = time.monotonic() - started
        rest = b""
        with contextlib.suppress(ConnectionError):  # the gateway closed the connection: what was sent, then EOF
            while chunk := client.recv(1 << 20):
                rest = rest[-100:] + chunk
    finally:
        client.close()
    # (the blocked write may have begun a little before this client's first read returned: hence 0.75)
    assert 0.75 <= took < 10.0, f"cut off {took:.2f} s after the client stopped reading, with --send-timeout 1"
    assert b"[DONE]" not in rest  # cut off, not ended
    assert outcome[0][0] == "cancelled" and outcome[0][1] < 60_000
    assert events(gateway.data_dir, "api_call", "status, http_status") == [("cancelled", 200)]
    with _sdk(gateway) as sdk:  # the worker serves on
        assert sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5).model == MODEL  # type: ignore[arg-type]
    assert gateway.stop() == 0
    assert len(events(gateway.data_dir, "usage", "*")) == 2  # the cut stream's partial usage, reconcilable
    assert _reserved(gateway.data_dir) == 0
    assert "Traceback" not in gateway.stderr, gateway.stderr
    assert re.search(r"status=200 .* stream=true .* error=SendTimeout$", gateway.stderr, re.MULTILINE), gateway.stderr


class _Transport:
    """What the send watch reads of a connection: the bytes left to send; whether it was aborted."""

    def __init__(self, left: int) -> None:
        self.left, self.aborted = left, False

    def get_write_buffer_size(self) -> int:
        return self.left

    def abort(self) -> None:
        self.aborted = True


def test_the_send_watch_counts_time_without_progress() -> None:
    """The sweep's rule, clock and connections in hand: a write whose buffer shrank between two
    sweeps waits afresh; one whose buffer stays put for the timeout is cut (its connection aborted,
    out of the watch); a new write is not progress of the old one; a request with no connection left
    is cut like any other (its write ends by itself)."""
    from types import SimpleNamespace

    from hive_gateway.sending import Sending, SendWatch

    watch = SendWatch(10.0)
    reading, stuck, renewed, gone = (_Transport(100_000) for _ in range(4))
    sends = {name: Sending(SimpleNamespace(transport=t))  # type: ignore[arg-type]
             for name, t in (("reading", reading), ("stuck", stuck), ("renewed", renewed), ("gone", gone))}
    watch.sending.update(sends.values())
    for each in sends.values():
        each.since = 0.0
    assert watch.sweep(5.0) == []
    reading.left = 90_000  # the client read some
    renewed.left = 50_000
    sends["renewed"].since = 6.0  # ... and that write ended and a new one began, which shrank nothing yet
    sends["gone"].request.transport = None
    assert set(watch.sweep(9.0)) == set()
    assert set(watch.sweep(10.0)) == {sends["stuck"], sends["gone"]}
    assert stuck.aborted and sends["stuck"].stalled and not reading.aborted
    assert sends["reading"].since == 9.0 and sends["renewed"].since == 6.0
    assert watch.sweep(15.9) == []
    assert watch.sweep(16.0) == [sends["renewed"]]  # its new write began at 6.0
    assert watch.sweep(18.9) == []
    assert watch.sweep(19.0) == [sends["reading"]]  # nothing read since 9.0
    assert watch.sending == set()
    with pytest.raises(ValueError, match="positive"):
        SendWatch(0)


class _Summaries:
    """An observer that keeps each finished request's summary."""

    def __init__(self) -> None:
        self.seen: list[RequestSummary] = []

    def started(self, *, stream: bool) -> None:
        pass

    def finished(self, summary: RequestSummary) -> None:
        self.seen.append(summary)


#: the slow reader's pace: 8 KB every 50 ms (160 KB/s), so its answer (~300-450 KB) takes seconds
SLOW_READ, SLOW_PAUSE_S = 8192, 0.05


@pytest.mark.parametrize("reader", ["stopped", "slow"])
@pytest.mark.parametrize("stream", [False, True])
def test_the_send_timeout_cuts_a_client_that_reads_nothing_never_one_that_reads_slowly(
        emulator_factory: Callable[..., Emulator], tmp_path: Path, stream: bool, reader: str) -> None:
    """The worker's real application on 127.0.0.1 with ``send_timeout_s=1``, its sockets' send
    buffers small (the listener's SO_SNDBUF, which accepted sockets inherit) so an answer of a few
    hundred KB outgrows them, and a client with a small receive buffer:

    * one that reads the response's head, then nothing, is cut off a second or two later, also when
      the answer is a single write (not streamed): the answer it was billed for is recorded and
      settled, a stream recorded as cancelled; the summary says 200 and ``SendTimeout``;
    * one that reads 8 KB every 50 ms is never cut, though its answer waits on it for seconds: the
      timeout counts the time without progress, as nginx's does."""
    from aiohttp import web

    from hive_core.settings import Settings
    from hive_gateway.app import build_app
    from hive_gateway.config import GatewayConfig
    from hive_gateway.sending import SEND_TIMEOUT

    emu = emulator_factory(latency_scale=0.0)
    data = _budgeted(emu, tmp_path)
    settings = Settings.from_env(hive_env(emu, data))
    if stream:
        body = _rows_body(MODEL, stream=True, max_tokens=4_000)  # ~300 KB of SSE
    else:  # a model that may answer 400,000 tokens: ~450 KB of JSON
        body = _rows_body("minimax/minimax-m3", stream=False, max_tokens=400_000)
    summaries = _Summaries()

    async def main() -> tuple[float, bytes]:
        app = build_app(GatewayConfig(settings, no_auth=True, send_timeout_s=1.0), summaries)
        runner = web.AppRunner(app, handler_cancellation=True)
        await runner.setup()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        listener.bind(("127.0.0.1", 0))
        try:
            await web.SockSite(runner, listener).start()
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.setblocking(False)
            await asyncio.get_running_loop().sock_connect(client, listener.getsockname())
            stream_reader, writer = await asyncio.open_connection(sock=client, limit=SLOW_READ)
            writer.write(_raw_post(body))
            head = await asyncio.wait_for(stream_reader.readuntil(b"\r\n\r\n"), 30)
            assert head.startswith(b"HTTP/1.1 200"), head
            started = time.monotonic()
            received = b""
            if reader == "stopped":
                writer.transport.pause_reading()  # and not one more byte
                while not summaries.seen and time.monotonic() < started + 30:
                    await asyncio.sleep(SLOW_PAUSE_S)
            else:  # to the answer's end: its Content-Length, or a stream's last chunk
                length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
                while not (len(received) >= int(length[1]) if length else received.endswith(b"\r\n0\r\n\r\n")):
                    chunk = await asyncio.wait_for(stream_reader.read(SLOW_READ), 30)
                    if not chunk:
                        break  # the connection ended first (cut off)
                    received += chunk
                    await asyncio.sleep(SLOW_PAUSE_S)
            took = time.monotonic() - started
            writer.close()
            return took, received
        finally:
            await runner.cleanup()  # the worker's close: every event written

    took, received = asyncio.run(asyncio.wait_for(main(), 90))
    assert len(summaries.seen) == 1, "the request never ended"
    summary = summaries.seen[0]
    if reader == "stopped":
        # (the blocked write may have begun a little before the head was read: hence 0.75)
        assert 0.75 <= took < 10.0, f"cut off {took:.2f} s after its client stopped reading, with a 1 s send timeout"
        assert (summary.status, summary.error_class) == (200, SEND_TIMEOUT)
    else:
        assert took > 1.5, f"the answer took {took:.2f} s to read: it never waited on the slow reader past the timeout"
        assert (summary.status, summary.error_class) == (200, None)
        assert (b"data: [DONE]" in received[-100:]) if stream else received.endswith(b"}")  # the whole answer
    statuses = [status for (status,) in events(data, "api_call", "status")]
    if stream:
        assert statuses == ["cancelled" if reader == "stopped" else "ok"]
        assert [o for (o,) in events(data, "stream_outcome", "outcome")] == [
            "cancelled" if reader == "stopped" else "completed"]
    else:
        assert statuses == ["ok"]  # answered and billed before it was sent: recorded either way
    assert len(events(data, "usage", "*")) == 1
    assert _reserved(data) == 0


def _wait_in_flight(gateway: GatewayProcess) -> None:
    """Until the gateway's /metrics count one request in flight (a non-streamed one is silent until it ends)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = httpx.get(f"{gateway.base_url}/metrics", timeout=5).text
        if re.search(r'^hive_gateway_in_flight_requests\{stream="false"\} 1(\.0)?$', text, re.MULTILINE):
            return
        time.sleep(0.05)
    raise AssertionError("the request never got in flight")


@pytest.mark.parametrize("stream", [False, True])
def test_a_ledger_that_fails_to_settle_loses_no_event_and_tells_the_operator_not_the_client(
        emulator_factory: Callable[..., Emulator], gateway_factory: Start, tmp_path: Path, stream: bool) -> None:
    """The ledger fails as a request's spend settles: an answer still reaches its client whole, and a
    request that failed upstream is told of that failure, not of the ledger's. Each one's events are
    all recorded (a failed stream's outcome too), neither reservation is released as if unbilled,
    and the operator reads the failure's line on stderr - no traceback."""
    emu = emulator_factory(faults=["*:midstream-error:0.5"], seed=seed_failing_first("midstream-error"))
    gateway = gateway_factory(emu, "--no-auth", data_dir=_budgeted(emu, tmp_path))
    refuse_spend(DataDir(gateway.data_dir).ledger)
    url = f"{gateway.base_url}/v1/chat/completions"
    body = {"model": MODEL, "messages": HI, "max_tokens": 20, "stream": stream}
    failed = httpx.post(url, json=body, timeout=30)  # the upstream fails it after some text
    answered = httpx.post(url, json=body, timeout=30)
    if stream:
        data = [line.removeprefix("data: ") for line in failed.text.split("\n\n") if line.startswith("data: ")]
        assert failed.status_code == 200 and data[-1] == "[DONE]"
        assert json.loads(data[-2])["error"]["code"] == 502  # OpenRouter's error event, relayed
        assert answered.text.rstrip().endswith("data: [DONE]") and '"usage"' in answered.text
    else:
        assert failed.status_code == 200 and failed.json()["choices"][0]["finish_reason"] == "error"
        assert answered.status_code == 200 and answered.json()["choices"][0]["finish_reason"] != "error"
    assert gateway.stop() == 0
    assert len(events(gateway.data_dir, "api_call", "*")) == 2
    assert len(events(gateway.data_dir, "usage", "*")) == 2
    if stream:
        assert [r[0] for r in events(gateway.data_dir, "stream_outcome", "outcome")] == ["errored", "completed"]
    with contextlib.closing(sqlite3.connect(DataDir(gateway.data_dir).ledger)) as con:
        states = [row[0] for row in con.execute("SELECT state FROM reservations ORDER BY created")]
    # neither is released as if unbilled: each holds its maximum cost until it goes stale (on the
    # safe side; the spend is in the events, for `hive-jobs rebuild-ledger`)
    assert states == ["reserved", "reserved"], gateway.stderr
    problems = [line for line in gateway.stderr.splitlines() if line.startswith("error:")]
    assert problems and all("no room for spend" in line and "rebuild-ledger" in line
                            for line in problems), gateway.stderr
    assert "Traceback" not in gateway.stderr, gateway.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_full_disk_at_shutdown_is_each_workers_one_line_and_a_failed_exit(
        emulator: Emulator, gateway_factory: Start, tmp_path: Path, workers: str) -> None:
    """The data directory fills up while the gateway serves: its events cannot be written at
    SIGTERM. Each worker says so in one line (where its events went, or that they are lost) and
    the gateway exits non-zero - with --workers 2 as with one (a worker's failure was silent)."""
    started: list[GatewayProcess] = []

    def serve(data: Path) -> None:  # on the empty disk; full_disk fills it once the gateway runs
        started.append(gateway_factory(emulator, "--no-auth", "--workers", workers, data_dir=data,
                                       env={"HIVE_FLUSH_AGE": "60"}))

    with full_disk(tmp_path / "data", "16M", prepare=serve):
        gateway = started[0]
        body = {"model": MODEL, "messages": HI, "max_tokens": 5}
        for _ in range(4):  # the kernel spreads connections over the workers: each one likely serves some
            with httpx.Client(timeout=30) as client:
                assert client.post(f"{gateway.base_url}/v1/chat/completions", json=body).status_code == 200
        status = gateway.stop()
    assert status == 1 and "Traceback" not in gateway.stderr, gateway.stderr
    errors = [line for line in gateway.stderr.splitlines() if line.startswith("error:")]
    spilled = [line for line in errors if "event(s) could not be written" in line and "import-spills" in line]
    # every event of the 4 requests (an api_call and a usage each) kept in a spill directory: none lost
    assert sum(int(re.search(r"(\d+) event\(s\)", line)[1]) for line in spilled) == 8, errors  # type: ignore[index]
    if workers == "1":
        assert spilled == errors[-1:]  # the CLI's last line: what became of the events
    else:
        assert 1 <= len(spilled) <= 2 and all(re.match(r"error: worker \d+: ", line) for line in spilled), errors


def test_keys_are_required_and_a_revoked_key_is_refused_at_once(emulator: Emulator, gateway_factory: Start,
                                                               tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = hive_env(emulator, data)
    gateway = gateway_factory(emulator, data_dir=data)
    created = run_cli("hive", ["keys", "create", "--app", "search", "--user", "ana", "--json"], env)
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    secret, key_id = made["secret"], made["key"]["key_id"]
    url = f"{gateway.base_url}/v1/chat/completions"
    body = {"model": MODEL, "messages": HI, "max_tokens": 5}
    refused = httpx.post(url, json=body, timeout=30)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    with OpenAI(base_url=f"{gateway.base_url}/v1", api_key=secret, max_retries=0) as sdk:
        assert sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5).choices  # type: ignore[arg-type]
        assert run_cli("hive", ["keys", "revoke", key_id], env).returncode == 0
        with pytest.raises(openai.AuthenticationError):  # the next request: no cache to expire
            sdk.chat.completions.create(model=MODEL, messages=HI, max_tokens=5)  # type: ignore[arg-type]
    rows = gateway.wait_events("api_call", 1, "app, user")
    assert rows == [("search", "ana")]
    assert gateway.stop() == 0 and secret not in gateway.stderr
