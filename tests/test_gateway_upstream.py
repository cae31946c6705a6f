"""The gateway's upstream leg (Hive's own connection pool, driven raw) against a real HTTP server on
127.0.0.1 that stands in for OpenRouter with real recorded answers: what it asks for and sends back,
what it decodes, what it refuses, and which connections it keeps."""

from __future__ import annotations

import asyncio
import gc
import json
import ssl
import subprocess
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hive_core.errors import MalformedResponse
from hive_core.openrouter.core import ClientCore
from hive_core.settings import Settings
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.gateway import serving

if TYPE_CHECKING:
    from aiohttp import web

    from hive_core.store.events import Event
    from tests.plugins.gateway import GatewayProcess

KEY = "sk-or-v1-" + "0" * 64
#: a model of the real catalog snapshot, for the gateway to route (the stand-in answers any)
MODEL = "openai/gpt-4o-mini"
#: how long the stand-in waits between a stream's ``data: [DONE]`` and its body's end (the emulator
#: and OpenRouter send the end in a write of its own, after their bookkeeping)
END_DELAY_S = 0.02


def _compressor(coding: str) -> Any:
    return zlib.compressobj(wbits=zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS)


class StandIn:
    """OpenRouter's chat endpoint at ``/<coding>/api/v1/chat/completions``: the recorded JSON answer,
    or the recorded SSE stream event by event, in ``coding`` (``identity``, ``gzip``, ``deflate``,
    ``br`` (bytes left as they are), ``gzip-cut`` (the compressed body's end missing)) whatever the
    request asked for; a cookie set on every answer. It notes each request's headers, body and peer."""

    def __init__(self, answer: bytes, stream: bytes) -> None:
        self.answer = answer
        self.events = [event + b"\n\n" for event in stream.rstrip(b"\n").split(b"\n\n")]
        self.headers: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.peers: set[tuple[str, int]] = set()
        self.port = 0

    def app(self) -> web.Application:
        from aiohttp import web

        async def completions(request: web.Request) -> web.StreamResponse:
            self.headers.append({name.lower(): value for name, value in request.headers.items()})
            self.bodies.append(await request.read())
            self.peers.add(request.transport.get_extra_info("peername") if request.transport else ("?", 0))
            streamed = (await request.json()).get("stream", False)
            coding = request.match_info["coding"]
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream" if streamed else "application/json"})
            response.set_cookie("__cf_bm", f"edge-{len(self.headers)}", path="/")
            if coding != "identity":
                response.headers["Content-Encoding"] = coding.removesuffix("-cut")
            response.enable_chunked_encoding()
            await response.prepare(request)
            squeeze = _compressor(coding.removesuffix("-cut")) if coding in ("gzip", "deflate", "gzip-cut") else None
            for piece in self.events if streamed else [self.answer]:
                await response.write(piece if squeeze is None else squeeze.compress(piece) + squeeze.flush(zlib.Z_SYNC_FLUSH))
            if squeeze is not None and coding != "gzip-cut":
                await response.write(squeeze.flush())
            if streamed:
                await asyncio.sleep(END_DELAY_S)
            await response.write_eof()
            return response

        app = web.Application()
        app.router.add_post("/{coding}/api/v1/chat/completions", completions)
        return app

    def base_url(self, coding: str) -> str:
        # "localhost": a cookie jar keeps no cookie of a bare IP address, so a jar would show here
        return f"http://localhost:{self.port}/{coding}/api/v1"


@contextmanager
def _served(server: StandIn, ssl_context: ssl.SSLContext | None = None) -> Iterator[StandIn]:
    """``server`` on 127.0.0.1 from a thread of its own (a gateway process or a test's loop calls it)."""
    loop = asyncio.new_event_loop()
    ready, stop = threading.Event(), asyncio.Event()

    async def main() -> None:
        async with serving(server.app(), ssl_context) as port:
            server.port = port
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the stand-in server did not start"
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def _recorded(recordings_dir: Path) -> StandIn:
    return StandIn((recordings_dir / "usage-b-200.json").read_bytes(),
                   (recordings_dir / "stream_with_native_options-200.sse").read_bytes())


@pytest.fixture
def stand_in(recordings_dir: Path) -> Iterator[StandIn]:
    with _served(_recorded(recordings_dir)) as server:
        yield server


class Events:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        self.events.append(event)


@contextmanager
def upstream_to(base_url: str, tmp_path: Path) -> Iterator[tuple[Any, Events]]:
    from hive_gateway.upstream import Upstream

    settings = Settings.from_env(hive_env(SimpleNamespace(api_key=KEY, base_url=base_url), tmp_path / "data"))
    sink = Events()
    core = ClientCore(settings, sink=sink, prices=None, policy=None)
    yield Upstream(settings, core), sink


def _run(body: Callable[[], Any]) -> Any:
    return asyncio.run(asyncio.wait_for(body(), 60))


@pytest.mark.parametrize("coding", ["identity", "gzip", "deflate"])
def test_it_asks_for_no_coding_keeps_no_cookie_and_decodes_what_comes_compressed_anyway(
        stand_in: StandIn, tmp_path: Path, coding: str) -> None:
    """Answers and streams arrive whole and byte for byte (a stream decoded piece by piece, as it
    comes); every request asks for ``identity`` and carries the key, never a cookie of an earlier answer
    (the one pool serves every app and user)."""
    from hive_gateway.upstream import Answer

    with upstream_to(stand_in.base_url(coding), tmp_path) as (upstream, sink):
        async def calls() -> list[bytes]:
            streams = []
            try:
                for _ in range(2):
                    kept: list[Answer] = []
                    result = await upstream.chat(upstream.core.tracker.request(MODEL), b'{"model": "m"}', kept)
                    assert kept[0].status == 200 and kept[0].body == stand_in.answer
                    assert result.cost_usd is not None and result.cost_usd > 0
                    exchange = await upstream.open(b'{"model": "m", "stream": true}', stream=True)
                    pieces = []
                    while (piece := await exchange.piece()) is not None:
                        assert piece  # never an empty piece (a compressed write can decode to nothing)
                        pieces.append(piece)
                    streams.append(b"".join(pieces))
                assert upstream.pool.connections == (1, 1)  # every exchange on one kept connection
            finally:
                await upstream.close()
            return streams

        streams = _run(calls)
    assert streams == [b"".join(stand_in.events)] * 2
    assert [event.type for event in sink.events] == ["api_call", "usage"] * 2
    assert [h.get("accept-encoding") for h in stand_in.headers] == ["identity"] * 4
    assert [h.get("cookie") for h in stand_in.headers] == [None] * 4
    assert [h["accept"] for h in stand_in.headers] == ["application/json", "text/event-stream"] * 2
    assert all(h["authorization"] == f"Bearer {KEY}" for h in stand_in.headers)


@pytest.mark.parametrize(("coding", "why"), [("br", "Content-Encoding is 'br'"),
                                             ("gzip-cut", "compressed body ended before its end")])
def test_an_answer_it_cannot_decode_is_a_malformed_answer_recorded_once(
        stand_in: StandIn, tmp_path: Path, coding: str, why: str) -> None:
    from hive_gateway.upstream import Answer

    with upstream_to(stand_in.base_url(coding), tmp_path) as (upstream, sink):
        async def call() -> None:
            try:
                kept: list[Answer] = []
                await upstream.chat(upstream.core.tracker.request(MODEL), b'{"model": "m"}', kept)
            finally:
                await upstream.close()

        with pytest.raises(MalformedResponse, match=why) as caught:
            _run(call)
    assert KEY not in str(caught.value)
    assert [(event.type, event.status) for event in sink.events] == [("api_call", "malformed")]  # type: ignore[attr-defined]
    assert len(stand_in.headers) == 1  # a malformed answer is not retried


def test_a_streams_upstream_connection_serves_the_next_stream(
        stand_in: StandIn, gateway_factory: Callable[..., GatewayProcess]) -> None:
    """The body's end comes after ``data: [DONE]`` in a write of its own: the gateway ends its
    client's stream, then waits for that end, so the connection (a TCP and TLS handshake, with
    OpenRouter) serves the next request instead of being closed."""
    gateway = gateway_factory(SimpleNamespace(api_key=KEY, base_url=stand_in.base_url("identity")), "--no-auth")
    for _ in range(5):
        with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions", timeout=30,
                          json={"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as answer:
            assert answer.status_code == 200
            assert b"".join(answer.iter_bytes()) == b"".join(stand_in.events)
    outcomes = gateway.wait_events("stream_outcome", 5, "outcome")
    assert outcomes == [("completed",)] * 5
    assert len(stand_in.headers) == 5 and len(stand_in.peers) == 1


_PROMPT = "Voilà, un résumé — 要約して 😀 (U+2028: \u2028) " * 1500  # ~90 KB of UTF-8
_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]}}}]


@pytest.mark.parametrize(("body", "fast"), [
    (json.dumps({"model": MODEL, "messages": [{"role": "system", "content": _PROMPT}, {"role": "user", "content": "hi"}],
                 "tools": _TOOLS, "tool_choice": "auto", "temperature": 0.1, "top_p": 1e-7, "seed": 2 ** 70,
                 "response_format": {"type": "json_object"}, "provider": {"order": ["openai"], "allow_fallbacks": False},
                 "max_completion_tokens": 40, "user": "u-1"}, ensure_ascii=False).encode(), True),
    # json reads what msgspec refuses (NaN, a lone surrogate): it is written back as json writes it
    (f'{{"model": "{MODEL}", "messages": [{{"role": "user", "content": "\\ud800 lone"}}], "temperature": NaN}}'.encode(),
     False),
])
def test_a_request_reaches_openrouter_with_the_meaning_it_came_with(
        stand_in: StandIn, gateway_factory: Callable[..., GatewayProcess], body: bytes, fast: bool) -> None:
    """The gateway re-encodes the body it passes on (its model, cap and usage flag added): what
    msgspec read it writes back (text as UTF-8, not ``\\u`` escapes), the rest json does; either way
    OpenRouter gets the same JSON document the library's own encoding gives."""
    from hive_core.openrouter.protocol import chat_body

    gateway = gateway_factory(SimpleNamespace(api_key=KEY, base_url=stand_in.base_url("identity")), "--no-auth")
    answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", content=body, timeout=30,
                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    sent = json.loads(body)
    own = {"model", "models", "messages", "stream", "max_tokens", "max_completion_tokens"}
    expected = chat_body(sent["messages"], model=MODEL, max_tokens=sent.get("max_completion_tokens"), stream=False,
                         params={name: value for name, value in sent.items() if name not in own})
    (received,) = stand_in.bodies
    assert repr(json.loads(received)) == repr(json.loads(expected))  # repr: NaN equals its own text
    assert ("Voilà".encode() in received) is fast  # msgspec wrote it: UTF-8; json: a \u escape


@pytest.mark.parametrize("command", [["gateway", "--check", "--no-auth"], ["gateway", "--no-auth", "--port", "0"]])
def test_a_setting_no_http_header_can_carry_is_refused_before_serving(tmp_path: Path, command: list[str]) -> None:
    """The request head is built and checked once, at start-up: a line break in ``HIVE_APP_TITLE``
    is one line naming the settings, from ``--check`` and from a gateway that would start."""
    env = {**hive_env(SimpleNamespace(api_key=KEY, base_url="http://127.0.0.1:9/api/v1"), tmp_path / "data"),
           "HIVE_APP_TITLE": "my\napp"}
    done = run_cli("hive", command, env)
    assert done.returncode != 0
    said = [line for line in (done.stdout + done.stderr).splitlines() if "HIVE_APP_TITLE" in line]
    assert len(said) == 1 and "characters HTTP forbids" in said[0]
    assert "Traceback" not in done.stderr and KEY not in done.stdout + done.stderr


def test_a_gateway_worker_serves_without_httpx_or_httpcore(
        stand_in: StandIn, gateway_factory: Callable[..., GatewayProcess]) -> None:
    """The upstream leg is the pool alone (no httpx objects, the pool's own errors): a worker that
    served a JSON answer and a stream has loaded neither httpx nor httpcore (~5 MB of RSS each
    worker would carry for nothing, against the 100 MB target)."""
    import sys

    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('LOADED:' + ','.join(m for m in ('httpx', 'httpcore', 'h11', 'anyio') "
            "if m in sys.modules), flush=True))\n"
            "from hive_cli.hive import main\n"
            "sys.argv[0] = 'hive'\n"
            "sys.exit(main())\n")
    gateway = gateway_factory(SimpleNamespace(api_key=KEY, base_url=stand_in.base_url("identity")), "--no-auth",
                              launcher=[sys.executable, "-c", code])
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    url = f"{gateway.base_url}/v1/chat/completions"
    assert httpx.post(url, json=chat, timeout=30).status_code == 200
    streamed = httpx.post(url, json={**chat, "stream": True}, timeout=30)
    assert streamed.status_code == 200 and streamed.content == b"".join(stand_in.events)
    assert gateway.stop() == 0, gateway.stderr
    assert gateway.stdout.splitlines()[-1] == "LOADED:", f"the worker loaded {gateway.stdout.splitlines()[-1]}"


def test_over_tls_it_checks_the_certificate_against_certifi_or_ssl_cert_file(
        recordings_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenRouter is https: the stand-in serves TLS with a certificate made for this test (by the
    openssl command). Not in certifi's bundle, it is refused as an unreachable OpenRouter, the
    reason on the line; named by ``SSL_CERT_FILE`` (as httpx honours it), it is trusted. Closing the
    pool waits for the TLS close, so ``asyncio.run`` ending right after leaves no socket open."""
    from hive_core.errors import Unreachable
    from hive_gateway.upstream import Answer

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                           "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                           "-addext", "subjectAltName=DNS:localhost"], capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with _served(_recorded(recordings_dir), served) as server:
        base_url = server.base_url("identity").replace("http://", "https://")

        def ask() -> bytes:
            with upstream_to(base_url, tmp_path) as (upstream, _):
                async def call() -> bytes:
                    try:
                        kept: list[Answer] = []
                        await upstream.chat(upstream.core.tracker.request(MODEL), b'{"model": "m"}', kept)
                        return kept[0].body
                    finally:
                        await upstream.close()

                return _run(call)  # type: ignore[no-any-return]

        with pytest.raises(Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
            ask()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always", ResourceWarning)
            assert ask() == server.answer
            gc.collect()
        # closing the pool waits for its TLS closes: none is cut off by the end of the loop
        assert not [w for w in warned if issubclass(w.category, ResourceWarning)], [str(w.message) for w in warned]
    assert len(server.headers) == 1  # the refused handshake sent nothing
