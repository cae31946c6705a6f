"""The gateway over real HTTP: a ``hive gateway`` process in front of the emulator, called by the openai
SDK, by curl and by plain httpx; what it answers, and what it records compared with ``hive ask``."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
from openai import OpenAI

from hive_core.catalog.catalog import FETCHED_AT_KEY
from hive_emulator import Emulator
from hive_gateway.routing import load_catalog_document, models_document
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL, NO_TOOLS_MODEL
from tests.plugins.sdk_cases import QUESTION, TOOLS, MathAnswer, answer_calls
from tests.plugins.store import events

if TYPE_CHECKING:
    from tests.plugins.gateway import GatewayProcess


#: columns that must match between the gateway's events and hive ask's (ids and timings aside)
API_CALL = "attempt, model, served_model, provider, request_type, task_category, status, http_status, streamed, " \
           "fallback_index, max_tokens"
USAGE = "model, provider, request_type, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost_usd, " \
        "cost_source, is_byok, upstream_cost_usd"
OUTCOME = "model, outcome, chunks, completion_tokens, finish_reason"


@pytest.fixture
def sdk(gateway: GatewayProcess) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{gateway.base_url}/v1", api_key="unused-without-auth", max_retries=0, timeout=20) as client:
        yield client


def test_chat_through_the_sdk_is_relayed_whole_and_recorded(sdk: OpenAI, gateway: GatewayProcess) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                                        max_tokens=20)
    answer = raw.parse()
    request_id = raw.headers["x-hive-request-id"]
    assert answer.model == MODEL and answer.choices[0].message.content
    usage = json.loads(raw.content)["usage"]  # OpenRouter's usage object, whole
    assert usage["cost"] > 0 and "is_byok" in usage and "cost_details" in usage
    calls = gateway.wait_events("api_call", 1, "request_id, status, http_status, streamed")
    assert calls == [(request_id, "ok", 200, False)]
    assert gateway.wait_events("usage", 1, "request_id, cost_usd") == [(request_id, usage["cost"])]


def test_streaming_through_the_sdk_keeps_the_usage_chunk(sdk: OpenAI, gateway: GatewayProcess) -> None:
    # no stream_options.include_usage: OpenRouter's final usage chunk reaches the client anyway
    stream = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "count"}],
                                         max_tokens=12, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    assert {c.model for c in chunks} == {MODEL}
    outcome = gateway.wait_events("stream_outcome", 1, "outcome, completion_tokens, finish_reason")
    assert outcome == [("completed", 12, "length")]
    assert gateway.wait_events("api_call", 1, "streamed, status")[0] == (True, "ok")


def test_curl_streams_keep_alive_comments_and_done(gateway: GatewayProcess) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8,
                       "stream": True})
    done = subprocess.run(["curl", "-sN", "-D", "-", f"{gateway.base_url}/v1/chat/completions",
                           "-H", "Content-Type: application/json", "-d", body],
                          capture_output=True, text=True, timeout=30)
    head, _, sse = done.stdout.partition("\n\n")  # text mode: CRLF read as LF
    assert "text/event-stream" in head and "X-Hive-Request-Id" in head
    assert sse.startswith(": OPENROUTER PROCESSING")  # the emulator's keep-alives, relayed
    events_ = [line for line in sse.split("\n\n") if line.startswith("data: ")]
    assert events_[-1] == "data: [DONE]"
    last = json.loads(events_[-2].removeprefix("data: "))
    assert last["usage"]["cost"] > 0 and "cost_details" in last["usage"]


def test_tool_loop_and_structured_output_through_the_sdk(sdk: OpenAI, gateway: GatewayProcess) -> None:
    messages = list(QUESTION)
    first = sdk.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    calls = first.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls if c.type == "function"] == ["GetWeather", "Divide"]
    answer_calls(messages, first.choices[0].message)
    final = list(sdk.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, max_tokens=40, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in final if c.choices)
    assert not any(c.choices[0].delta.tool_calls for c in final if c.choices)
    parsed = sdk.chat.completions.parse(model=MODEL, response_format=MathAnswer,
                                        messages=[{"role": "user", "content": "Solve 8x + 7 = -23"}])
    assert isinstance(parsed.choices[0].message.parsed, MathAnswer)
    assert len(gateway.wait_events("usage", 3, "request_id")) == 3


def test_errors_are_openai_shaped(sdk: OpenAI, gateway: GatewayProcess) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.chat.completions.create(model="openai/gpt-4o-mimi", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.code == "model_not_found" and "did you mean openai/gpt-4o-mini" in unknown.value.message
    with pytest.raises(openai.NotFoundError) as no_tools:  # OpenRouter's own 404, after its retries
        sdk.chat.completions.create(model=NO_TOOLS_MODEL, messages=QUESTION, tools=TOOLS)
    assert "No endpoints found that support tool use" in no_tools.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.chat.completions.create(model=MODEL, messages=[])
    assert bad.value.code == "invalid_request" and "messages" in bad.value.message
    refused = httpx.post(f"{gateway.base_url}/v1/chat/completions", content=b"{not json")
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
    assert refused.headers["x-hive-request-id"]
    huge = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x" * (33 * 1024**2)}]})
    with pytest.raises(openai.APIStatusError) as too_large:  # 413: the SDK's own class for it is the generic one
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x" * (33 * 1024**2)}])
    assert too_large.value.status_code == 413 and too_large.value.code == "request_too_large"
    assert "32 MiB" in too_large.value.message
    refused = httpx.post(f"{gateway.base_url}/v1/chat/completions", content=huge.encode(), timeout=30)
    assert refused.status_code == 413 and refused.json()["error"]["type"] == "invalid_request_error"
    assert gateway.stop() == 0 and "Traceback" not in gateway.stderr
    assert gateway.stderr.count("status=413") == 2 and "error=HTTPRequestEntityTooLarge" in gateway.stderr


def test_a_budget_refusal_is_402_before_anything_is_sent(gateway_factory: Callable[..., GatewayProcess],
                                                        emulator: Emulator, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = hive_env(emulator, data)
    assert run_cli("hive", ["budget", "set", "--daily", "0"], env).returncode == 0  # the kill switch
    gateway = gateway_factory(emulator, "--no-auth", data_dir=data)
    with OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", max_retries=0) as client, \
            pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 402 and refused.value.code == "budget_exceeded"
    assert "kill switch" in refused.value.message
    assert events(data, "api_call", "*") == []


def test_labels_come_from_the_headers_and_the_user_field(gateway: GatewayProcess) -> None:
    answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", timeout=20, headers={
        "X-Hive-App": "search", "X-Hive-Tags": "team:a, exp:7", "X-Hive-Task": "summarization"},
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "user": "ana"})
    assert answer.status_code == 200
    rows = gateway.wait_events("api_call", 1, "app, user, tags, task_category")
    assert rows == [("search", "ana", ["team:a", "exp:7"], "summarization")]
    assert gateway.wait_events("usage", 1, "app, user, tags") == [("search", "ana", ["team:a", "exp:7"])]


def test_models_lists_the_catalog_and_the_routing_aliases(sdk: OpenAI, gateway: GatewayProcess) -> None:
    ids = [model.id for model in sdk.models.list()]
    assert MODEL in ids and len(ids) > 300
    assert ids[-4:] == ["hive/auto", "hive/auto:cost-optimized", "hive/auto:performance", "hive/auto:quality-first"]
    assert set(httpx.get(f"{gateway.base_url}/v1/models").json()) == {"object", "data"}


def test_models_keep_only_openais_list_shape_of_the_synced_file() -> None:
    """The synced file's own root keys (``hive_fetched_at``) stay home: OpenAI's list is object + data."""
    synced = {FETCHED_AT_KEY: "2026-06-01T00:00:00Z", "data": [{"id": MODEL, "name": "mini"}]}
    doc = models_document(load_catalog_document(json.dumps(synced).encode()), 0)
    assert set(doc) == {"object", "data"} and FETCHED_AT_KEY not in json.dumps(doc)
    assert doc["data"][0] == {"id": MODEL, "name": "mini", "object": "model", "owned_by": "openai"}


def test_hive_auto_asks_the_selector_and_records_its_choice(sdk: OpenAI, gateway: GatewayProcess) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="hive/auto:cost-optimized", messages=[{"role": "user", "content": "Say hi"}], max_tokens=10)
    answer = raw.parse()
    request_id = raw.headers["x-hive-request-id"]
    selection = gateway.wait_events("selection", 1, "request_id, strategy, model")
    assert selection[0][:2] == (request_id, "cost-optimized")
    calls = gateway.wait_events("api_call", 1, "request_id, model, status")
    assert calls[-1] == (request_id, answer.model, "ok") and answer.model == selection[0][2]


def _gateway_calls(base_url: str) -> None:
    with OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=20) as client:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=20)
        list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=20, stream=True))


def _store(data: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {"api_call": events(data, "api_call", API_CALL), "usage": events(data, "usage", USAGE),
            "stream_outcome": events(data, "stream_outcome", OUTCOME)}


def test_events_equal_what_hive_ask_records(emulator_factory: Callable[..., Emulator],
                                            gateway_factory: Callable[..., GatewayProcess], tmp_path: Path,
                                            catalog_path: Path) -> None:
    # two emulators with one seed answer the same requests alike: one behind the gateway, one for hive ask
    through_gateway, direct = emulator_factory(seed=7), emulator_factory(seed=7)
    gateway = gateway_factory(through_gateway, "--no-auth")
    _gateway_calls(gateway.base_url)
    assert gateway.stop() == 0
    data = tmp_path / "ask"
    (data / "catalog").mkdir(parents=True)
    shutil.copy(catalog_path, data / "catalog" / "models.json")
    env = hive_env(direct, data)
    for stream in ("--no-stream", "--stream"):
        done = run_cli("hive", ["ask", "--model", MODEL, "--max-tokens", "20", stream, "-q", "hi"], env)
        assert done.returncode == 0, done.stderr
    recorded = _store(gateway.data_dir)
    assert recorded == _store(data)
    assert len(recorded["api_call"]) == 2 and len(recorded["stream_outcome"]) == 1


def test_the_openrouter_key_never_reaches_a_client(gateway: GatewayProcess, emulator: Emulator) -> None:
    seen = []
    for request in ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
                    {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True},
                    {"model": NO_TOOLS_MODEL, "messages": QUESTION, "tools": TOOLS},
                    {"model": "nope/nope", "messages": []}):
        answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", json=request, timeout=20)
        seen.append(str(answer.headers) + answer.text)
    seen.append(httpx.get(f"{gateway.base_url}/v1/models").text)
    seen.append(httpx.get(f"{gateway.base_url}/metrics").text)
    assert gateway.stop() == 0
    seen += [gateway.stdout, gateway.stderr]
    for table in ("api_call", "usage", "stream_outcome"):
        seen.append(repr(events(gateway.data_dir, table, "*")))
    key = emulator.api_key
    assert all(key not in text and key[:16] not in text for text in seen)
    assert "method=POST path=/v1/chat/completions" in gateway.stderr  # the access log did run


def test_check_lists_each_problem_on_one_line(emulator: Emulator, tmp_path: Path) -> None:
    env = hive_env(emulator, tmp_path / "data")
    env.pop("OPENROUTER_API_KEY")
    done = run_cli("hive", ["gateway", "--check", "--no-auth"], env)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any("OPENROUTER_API_KEY" in line for line in lines)
    assert any("hive models sync" in line for line in lines)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_send_timeout_that_is_no_positive_number_is_refused(emulator: Emulator, tmp_path: Path, value: str) -> None:
    done = run_cli("hive", ["gateway", "--no-auth", "--send-timeout", value], hive_env(emulator, tmp_path / "data"))
    assert done.returncode == 2
    assert "--send-timeout" in done.stderr and "Traceback" not in done.stderr


def test_check_refuses_a_send_timeout_that_is_not_positive(emulator: Emulator, tmp_path: Path) -> None:
    from hive_core.settings import Settings
    from hive_gateway.config import GatewayConfig, check

    config = GatewayConfig(Settings.from_env(hive_env(emulator, tmp_path / "data")), no_auth=True, send_timeout_s=0)
    assert "--send-timeout must be more than 0 seconds, not 0" in check(config, catalog=False)



@pytest.mark.parametrize("body", [
    b'{"model": "m", "messages": [], "n": 1e400}',  # beyond a float: json reads inf
    b'{"x": NaN, "y": -Infinity}',
    b'{"s": "\\ud800 lone surrogate"}',
    b'\xef\xbb\xbf{"bom": true}',
    '{"utf16": "é"}'.encode("utf-16"),
    b'{"big": 123456789012345678901234567890, "f": 0.1, "e": 1.5e308, "dup": 1, "dup": 2}',
    b'{"a": [1, 2.5, "x", null, true, {"b": {}}]}',
])
def test_bodies_read_as_json_reads_them(body: bytes) -> None:
    """Request and answer bodies are decoded by msgspec for speed, by json where msgspec refuses:
    what is accepted and what it means are json's (NaN compared by its text)."""
    from hive_core.openrouter.protocol import loads

    assert repr(loads(body)) == repr(json.loads(body))


def test_recorded_answers_read_as_json_reads_them() -> None:
    from hive_core.openrouter.protocol import loads

    recordings = sorted((Path(__file__).parents[2] / "shared" / "data" / "openrouter" / "recordings").glob("*.json"))
    assert recordings, "the real recordings are missing from ../shared"
    for path in recordings:
        assert loads(path.read_bytes()) == json.loads(path.read_bytes()), path.name
    for bad in (b"", b"{", b'{"a": 1,}', b"\xff\xfe\x00"):
        with pytest.raises(ValueError):
            loads(bad)
