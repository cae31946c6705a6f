"""The sync client: wire format and recordings (MockTransport), faults and cancels (the emulator)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hive_core.catalog.catalog import Catalog
from hive_core.errors import (
    AuthError,
    MalformedResponse,
    MidStreamError,
    NetworkError,
    NoProviderAvailable,
    ProviderError,
    RateLimited,
    ReadTimeout,
    ServerError,
    StreamTruncated,
)
from hive_core.openrouter import OpenRouterClient, Progress
from hive_core.openrouter.stream import MIN_RATE_TOKENS
from hive_core.settings import Secret, Settings
from hive_core.store.events import ApiCall, StreamOutcome, Usage
from tests.plugins.emulator import MODEL, emu_settings, fast_policy, seed_failing_first
from tests.plugins.store import ListSink

KEY = "sk-or-v1-unit-test-key"


def mock_client(handler: Callable[[httpx.Request], httpx.Response], sink: ListSink | None = None,
                **settings: Any) -> OpenRouterClient:
    s = Settings(api_key=Secret(KEY), base_url="https://openrouter.test/api/v1", **settings)
    return OpenRouterClient(s, sink=sink, transport=httpx.MockTransport(handler))


# -- wire format ---------------------------------------------------------------------------------


def test_chat_sends_headers_and_body(recordings_dir: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=(recordings_dir / "usage-b-200.json").read_bytes())

    with mock_client(handler, app_url="https://app.test", app_title="Hive tests") as client:
        client.chat("hi", model=MODEL, max_tokens=12, temperature=0.2)
    request = seen[0]
    assert request.url == "https://openrouter.test/api/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["http-referer"] == "https://app.test" and request.headers["x-title"] == "Hive tests"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body == {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 12,
                    "usage": {"include": True}, "temperature": 0.2}


def test_completions_send_what_an_httpx_client_builds(recordings_dir: Path) -> None:
    """The client builds its completion requests itself (httpx.Client's per-request merging costs
    CPU under load): headers, their order, the body and timeouts must be what httpx would send."""
    seen: list[httpx.Request] = []
    answers = {False: (recordings_dir / "usage-b-200.json").read_bytes(),
               True: (recordings_dir / "stream_with_reasoning-200.sse").read_bytes()}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=answers[b'"stream":true' in request.content])

    with mock_client(handler, app_url="https://app.test", app_title="Hive tests") as client:
        client.chat("hi", model=MODEL, max_tokens=12)
        client.stream("hi", model=MODEL, max_tokens=12).collect()
        options = client.core.http_options()
        del options["limits"]
        with httpx.Client(**options) as reference:
            url = client.core.url("/chat/completions")
            want = [reference.build_request("POST", url, content=seen[0].content),
                    reference.build_request("POST", url, content=seen[1].content,
                                            headers={"Accept": "text/event-stream"})]
    assert [(r.method, r.url, r.headers.raw, r.extensions) for r in seen] == [
        (r.method, r.url, r.headers.raw, r.extensions) for r in want]
    with pytest.raises(RuntimeError, match="closed"):  # as httpx.Client.send says after close()
        client.chat("hi", model=MODEL)


@pytest.mark.parametrize("name", ["usage-200.json", "usage-b-200.json", "with_reasoning-200.json",
                                  "tool_calling-200.json", "with_preset-200.json", "google_nested_schema-200.json",
                                  "thinking_high_emits_effort_high-200.json"])
def test_recorded_answers_parse_exactly(recordings_dir: Path, name: str) -> None:
    raw = (recordings_dir / name).read_bytes()
    doc = json.loads(raw)
    sink = ListSink()
    with mock_client(lambda r: httpx.Response(200, content=raw), sink) as client:
        result = client.chat("hi", model="requested/model")
    choice = doc["choices"][0]
    assert result.text == (choice["message"].get("content") or "")
    assert result.finish_reason == choice["finish_reason"]
    assert result.usage.prompt_tokens == doc["usage"]["prompt_tokens"]
    assert result.usage.completion_tokens == doc["usage"]["completion_tokens"]
    assert (result.served_model, result.provider, result.generation_id) == (doc["model"], doc["provider"], doc["id"])
    (usage,) = sink.of(Usage)
    if "cost" in doc["usage"]:
        assert result.cost_source == usage.cost_source == "billed"
        assert result.cost_usd == usage.cost_usd == doc["usage"]["cost"]
    else:  # a 2025 answer without usage.include: no catalog given, so unknown, never 0
        assert result.cost_source == usage.cost_source == "unknown" and usage.cost_usd is None


def test_recorded_streams_give_text_usage_and_cost(recordings_dir: Path) -> None:
    raw = (recordings_dir / "stream_with_reasoning-200.sse").read_bytes()
    sink = ListSink()
    with mock_client(lambda r: httpx.Response(200, content=raw), sink) as client:
        handle = client.stream("hi", model="openai/o3")
        text = "".join(handle)
    result = handle.result
    assert result is not None and result.text == text and text.endswith("just let me know!")
    assert (result.finish_reason, result.usage.completion_tokens, result.cost_usd) == ("stop", 104, 0.00085)
    assert [type(e).__name__ for e in sink.events] == ["ApiCall", "Usage", "StreamOutcome"]
    assert sink.of(StreamOutcome)[0].outcome == "completed" and sink.of(Usage)[0].cost_source == "billed"


def test_recorded_mid_stream_error_records_partial_usage(recordings_dir: Path) -> None:
    raw = (recordings_dir / "stream_error-200.sse").read_bytes()
    sink = ListSink()
    errors: list[Exception] = []
    with mock_client(lambda r: httpx.Response(200, content=raw), sink) as client:
        handle = client.stream("hi", model="minimax/minimax-m2:free", on_error=errors.append)
        with pytest.raises(MidStreamError):
            handle.collect()
    (call,) = sink.of(ApiCall)
    (usage,) = sink.of(Usage)
    (outcome,) = sink.of(StreamOutcome)
    assert call.status == "server_error" and call.http_status == 200 and call.attempt == 1
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cost_usd, usage.cost_source) == (43, 10, 0.0, "billed")
    assert outcome.outcome == "errored" and outcome.finish_reason == "length"
    assert isinstance(errors[0], MidStreamError)


def test_key_info_and_bad_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == f"Bearer {KEY}":
            return httpx.Response(200, json={"data": {"label": "sk-or-v1-abc...xyz", "usage": 1.5, "limit": None}})
        return httpx.Response(401, json={"error": {"code": 401, "message": "User not found."}})

    with mock_client(handler) as client:
        assert client.key_info()["usage"] == 1.5
    bad = Settings(api_key=Secret("sk-or-v1-wrong"), base_url="https://openrouter.test/api/v1")
    with OpenRouterClient(bad, transport=httpx.MockTransport(handler)) as client, pytest.raises(AuthError) as info:
        client.key_info()
    assert "OPENROUTER_API_KEY" in str(info.value) and "sk-or-v1-wrong" not in str(info.value)


# -- the fault matrix against the emulator -------------------------------------------------------

TRANSIENT: dict[str, tuple[type[Exception], str, int | None]] = {
    "429": (RateLimited, "rate_limited", 429),
    "500": (ServerError, "server_error", 500),
    "502": (ProviderError, "server_error", 502),
    "503": (NoProviderAvailable, "server_error", 503),
    "timeout": (ReadTimeout, "timeout", None),
}


def run(client: OpenRouterClient, stream: bool) -> Any:
    if stream:
        return client.stream("Tell me a story", model=MODEL, max_tokens=20).collect()
    return client.chat("Tell me a story", model=MODEL, max_tokens=20)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("kind", sorted(TRANSIENT))
def test_transient_fault_is_retried_and_succeeds(emulator_factory: Any, tmp_path: Path, kind: str,
                                                 stream: bool) -> None:
    emu = emulator_factory(faults=[f"*:{kind}:0.5"], seed=seed_failing_first(kind))
    settings = emu_settings(emu, tmp_path)
    sink = ListSink()
    with OpenRouterClient(settings, sink=sink, policy=fast_policy(settings)) as client:
        result = run(client, stream)
    _cls, status, http_status = TRANSIENT[kind]
    calls = sink.of(ApiCall)
    assert [(c.attempt, c.status, c.http_status) for c in calls] == [(1, status, http_status), (2, "ok", 200)]
    assert len({c.request_id for c in sink.events}) == 1
    assert result.attempts == 2 and 0 < result.usage.completion_tokens <= 20 and result.cost_source == "billed"
    assert [u.cost_source for u in sink.of(Usage)] == ["billed"]
    assert [o.outcome for o in sink.of(StreamOutcome)] == (["completed"] if stream else [])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("kind", sorted(TRANSIENT))
def test_persistent_transient_fault_gives_up_typed(emulator_factory: Any, tmp_path: Path, kind: str,
                                                   stream: bool) -> None:
    emu = emulator_factory(faults=[f"*:{kind}:1"])
    settings = emu_settings(emu, tmp_path)
    sink = ListSink()
    cls, status, http_status = TRANSIENT[kind]
    with OpenRouterClient(settings, sink=sink, policy=fast_policy(settings)) as client, pytest.raises(cls):
        run(client, stream)
    assert [(c.attempt, c.status, c.http_status) for c in sink.of(ApiCall)] == [(1, status, http_status),
                                                                               (2, status, http_status)]
    assert sink.of(Usage) == []
    expected = ("timeout" if kind == "timeout" else "errored")
    assert [o.outcome for o in sink.of(StreamOutcome)] == ([expected] if stream else [])


# kind -> (streamed?) -> (error, api_call statuses, usage cost_source or None, stream outcome)
PERMANENT: dict[tuple[str, bool], tuple[type[Exception] | None, list[str], str | None, str | None]] = {
    ("disconnect", False): (NetworkError, ["network", "network"], None, None),
    ("disconnect", True): (StreamTruncated, ["network"], "estimated", "truncated"),
    ("midstream-error", False): (MidStreamError, ["server_error"], "billed", None),
    ("midstream-error", True): (MidStreamError, ["server_error"], "billed", "errored"),
    ("malformed", False): (MalformedResponse, ["malformed"], None, None),
    ("malformed", True): (MalformedResponse, ["malformed"], "estimated", "errored"),
    ("slow", False): (None, ["ok"], "billed", None),
    ("slow", True): (None, ["ok"], "billed", "completed"),
}


@pytest.mark.parametrize(("kind", "stream"), sorted(PERMANENT), ids=lambda v: str(v))
def test_other_faults_give_the_documented_outcome(emulator_factory: Any, tmp_path: Path, catalog: Catalog,
                                                  kind: str, stream: bool) -> None:
    emu = emulator_factory(faults=[f"*:{kind}:1"])
    settings = emu_settings(emu, tmp_path)
    sink = ListSink()
    error, statuses, cost_source, outcome = PERMANENT[(kind, stream)]
    with OpenRouterClient(settings, sink=sink, prices=catalog, policy=fast_policy(settings)) as client:
        if error is None:
            run(client, stream)
        else:
            with pytest.raises(error):
                run(client, stream)
    assert [c.status for c in sink.of(ApiCall)] == statuses
    assert [c.attempt for c in sink.of(ApiCall)] == list(range(1, len(statuses) + 1))
    assert [u.cost_source for u in sink.of(Usage)] == ([cost_source] if cost_source else [])
    assert [o.outcome for o in sink.of(StreamOutcome)] == ([outcome] if outcome else [])
    if kind == "disconnect" and stream:  # a cut stream: tokens counted, cost estimated, never 0
        usage = sink.of(Usage)[0]
        assert usage.completion_tokens > 0 and usage.cost_usd and usage.cost_usd > 0


# -- callbacks, progress, cancel -----------------------------------------------------------------


def test_callbacks_and_progress(emulator: Any, tmp_path: Path) -> None:
    settings = emu_settings(emulator, tmp_path)
    chunks: list[tuple[str, str]] = []
    progress: list[Any] = []
    done: list[Any] = []
    with OpenRouterClient(settings) as client:
        pieces = list(client.stream("Count", model=MODEL, max_tokens=10, on_chunk=lambda p, t: chunks.append((p, t)),
                                    on_progress=progress.append, on_complete=done.append))
    assert [p for p, _ in chunks] == pieces and chunks[-1][1] == "".join(pieces)
    assert [p.tokens for p in progress] == list(range(1, len(pieces) + 1))
    assert progress[-1].percent == pytest.approx(100.0 * len(pieces) / 10)
    assert done[0].text == "".join(pieces) and done[0].ttft_ms > 0
    # a handful of tokens gives no rate yet (the first callback once reported 62,000 tok/s)
    assert [p.tokens_per_s for p in progress[: MIN_RATE_TOKENS - 1]] == [None] * (MIN_RATE_TOKENS - 1)


# -- live figures: tokens/s and cancel before the first token ------------------------------------


def test_tokens_per_s_is_generation_rate_and_null_for_a_handful(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(latency_scale=0.2)  # paced: tokens arrive in separate reads
    settings = emu_settings(emu, tmp_path, read_timeout_s=5.0)
    sink = ListSink()
    progress: list[Progress] = []
    with OpenRouterClient(settings, sink=sink) as client:
        result = client.stream("A story", model=MODEL, max_tokens=40, on_progress=progress.append).collect()
        billed = client.get_generation(result.generation_id or "")
        tiny = client.stream("A story", model=MODEL, max_tokens=MIN_RATE_TOKENS - 1).collect()
    # the emulator's own clock: completion tokens after the first over its generation time
    truth = (billed["tokens_completion"] - 1) / (billed["generation_time"] / 1000)
    assert result.tokens_per_s is not None and truth / 2 < result.tokens_per_s < truth * 2
    rates = [p.tokens_per_s for p in progress if p.tokens_per_s is not None]
    assert rates and max(rates) < truth * 3  # no absurd early figure
    assert tiny.outcome == "completed" and tiny.tokens_per_s is None
    assert [o.tokens_per_s is None for o in sink.of(StreamOutcome)] == [False, True]


def test_cancel_before_the_first_token_ends_at_once(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(faults=["*:slow:1"], latency_scale=0.5)  # ~5 s of keep-alives first
    settings = emu_settings(emu, tmp_path, read_timeout_s=10.0)
    sink = ListSink()
    with OpenRouterClient(settings, sink=sink) as client:
        handle = client.stream("A story", model=MODEL, max_tokens=50)
        timer = threading.Timer(0.3, handle.cancel)
        timer.start()
        started = time.monotonic()
        pieces = list(handle)
        elapsed = time.monotonic() - started
        timer.join()
    assert pieces == [] and elapsed < 1.5
    result = handle.result
    assert result is not None and result.outcome == "cancelled" and result.tokens_per_s is None
    assert [(c.attempt, c.status) for c in sink.of(ApiCall)] == [(1, "cancelled")]
    assert [o.outcome for o in sink.of(StreamOutcome)] == ["cancelled"]


def test_cancel_from_a_callback_records_partial_tokens(emulator_factory: Any, tmp_path: Path,
                                                       catalog: Catalog) -> None:
    emu = emulator_factory(latency_scale=0.2)  # paced: tokens arrive in separate reads
    settings = emu_settings(emu, tmp_path, read_timeout_s=5.0)
    sink = ListSink()
    with OpenRouterClient(settings, sink=sink, prices=catalog) as client:
        chunks: list[str] = []

        def on_chunk(piece: str, total: str) -> None:
            chunks.append(piece)
            if len(chunks) == 3:
                handle.cancel()  # from inside the stream: closes the connection

        handle = client.stream("A long story", model=MODEL, max_tokens=200, on_chunk=on_chunk)
        received = list(handle)
    result = handle.result
    assert result is not None and result.outcome == "cancelled" and received == chunks == chunks[:3]
    (outcome,) = sink.of(StreamOutcome)
    (call,) = sink.of(ApiCall)
    (usage,) = sink.of(Usage)
    assert outcome.outcome == "cancelled" and outcome.completion_tokens >= 3 and call.status == "cancelled"
    assert 3 <= usage.completion_tokens < 200 and usage.cost_source == "estimated"


def test_cancel_from_another_thread(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(latency_scale=0.2)
    settings = emu_settings(emu, tmp_path, read_timeout_s=5.0)
    sink = ListSink()
    with OpenRouterClient(settings, sink=sink) as client:
        handle = client.stream("A long story", model=MODEL, max_tokens=2000)
        first = next(handle)
        timer = threading.Timer(0.05, handle.cancel)
        timer.start()
        rest = list(handle)
        timer.join()
    assert first and handle.result is not None and handle.result.outcome == "cancelled"
    assert len(rest) < 1999
    assert [o.outcome for o in sink.of(StreamOutcome)] == ["cancelled"]


def test_a_client_without_a_sink_says_it_records_nothing(emulator: Any, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """No sink: the first request says (once) that nothing is recorded; ``sink=NullSink()`` is the
    explicit choice and stays quiet."""
    from hive_core.openrouter import NullSink

    settings = emu_settings(emulator, tmp_path)
    with caplog.at_level(logging.WARNING, logger="hive"):
        with OpenRouterClient(settings) as client:
            client.chat("Say hi", model=MODEL, max_tokens=3)
            client.stream("Say hi", model=MODEL, max_tokens=3).collect()
        assert [r.getMessage() for r in caplog.records].count(
            "warning: this OpenRouter client has no event sink, so its requests are not recorded "
            "(use hive.Session.from_env(), pass sink=EventLog(...), or sink=NullSink() to record nothing)") == 1
        caplog.clear()
        with OpenRouterClient(settings, sink=NullSink()) as client:
            client.chat("Say hi", model=MODEL, max_tokens=3)
        assert caplog.records == []
