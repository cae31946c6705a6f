"""The OpenRouter emulator over real HTTP: endpoints, wire format, costs, faults, concurrency, CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import httpx
import pytest
from pydantic import BaseModel, Field

from hive_emulator import FAULT_KINDS, Emulator, FaultRule, parse_fault
from tests.plugins.emulator import MODEL, NO_TOOLS_MODEL, SMALL_CONTEXT_MODEL, EmulatorProcess, function_tool

GEN_ID = re.compile(r"^gen-\d{10}-[A-Za-z0-9]{20}$")
HELLO = [{"role": "user", "content": "Hello there, how are you?"}]

Factory = Callable[..., Emulator]


def auth(emu: Emulator | EmulatorProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.api_key}"}


def chat(client: httpx.Client, emu: Emulator | EmulatorProcess, **body: Any) -> httpx.Response:
    body.setdefault("messages", HELLO)
    return client.post(f"{emu.base_url}/chat/completions", json=body, headers=auth(emu))


def parse_sse(raw: str) -> tuple[list[str], list[Any]]:
    """(every line in order, the data payloads: dicts, ``"[DONE]"`` or the raw bad text)."""
    lines = raw.split("\n")
    events: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            payload = line[len("data: "):]
            try:
                events.append("[DONE]" if payload == "[DONE]" else json.loads(payload))
            except ValueError:
                events.append(payload)
    return lines, events


def stream(client: httpx.Client, emu: Emulator, **body: Any) -> tuple[httpx.Response, str]:
    body.setdefault("messages", HELLO)
    with client.stream("POST", f"{emu.base_url}/chat/completions", json={**body, "stream": True},
                       headers=auth(emu)) as response:
        return response, response.read().decode()


@pytest.fixture
def client() -> Any:
    with httpx.Client(timeout=10) as c:
        yield c


def catalog_prices(catalog_path: Path, model_id: str) -> dict[str, Decimal]:
    models = {m["id"]: m for m in json.loads(catalog_path.read_text())["data"]}
    return {k: Decimal(v) for k, v in models[model_id]["pricing"].items() if isinstance(v, str)}


# ---------------------------------------------------------------- endpoints


def test_models_served_byte_for_byte_without_auth(emulator: Emulator, client: httpx.Client,
                                                  catalog_path: Path) -> None:
    response = client.get(f"{emulator.base_url}/models")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == catalog_path.read_bytes()


@pytest.mark.parametrize("path", ["/key", "/auth/key"])
def test_key_reports_masked_label_and_usage(emulator_factory: Factory, client: httpx.Client, path: str) -> None:
    emu = emulator_factory()
    before = client.get(f"{emu.base_url}{path}", headers=auth(emu)).json()["data"]
    assert before["usage"] == 0 and before["limit"] is None and before["is_free_tier"] is False
    assert before["label"].startswith("sk-or-v1-") and "..." in before["label"]
    assert emu.api_key not in json.dumps(before)
    cost = chat(client, emu, model="openai/gpt-4o", max_tokens=50).json()["usage"]["cost"]
    after = client.get(f"{emu.base_url}{path}", headers=auth(emu)).json()["data"]
    for field in ("usage", "usage_daily", "usage_weekly", "usage_monthly"):
        assert after[field] == pytest.approx(cost)


def test_auth_failures(emulator: Emulator, client: httpx.Client) -> None:
    url = f"{emulator.base_url}/key"
    missing = client.get(url)
    assert missing.status_code == 401
    assert missing.json()["error"] == {"code": 401, "message": "No auth credentials found"}
    for bad in ("Bearer nope", "Bearer sk-or-v1-", "Basic sk-or-v1-abc"):
        response = client.get(url, headers={"Authorization": bad})
        assert response.status_code == 401
        assert response.json() == {"error": {"message": "User not found.", "code": 401}}
    no_auth_chat = client.post(f"{emulator.base_url}/chat/completions", json={"model": "openai/gpt-4o"})
    assert no_auth_chat.status_code == 401


def test_api_key_restricts_to_one_key(emulator_factory: Factory, client: httpx.Client) -> None:
    emu = emulator_factory(api_key="sk-or-v1-only-this-one-0123456789")
    assert client.get(f"{emu.base_url}/key", headers=auth(emu)).status_code == 200
    other = client.get(f"{emu.base_url}/key", headers={"Authorization": "Bearer sk-or-v1-another-key-000"})
    assert other.status_code == 401


def test_request_errors(emulator: Emulator, client: httpx.Client) -> None:
    unknown = chat(client, emulator, model="claude-sonnet-4-6")
    assert unknown.status_code == 400
    body = unknown.json()
    assert body["error"] == {"code": 400, "message": "claude-sonnet-4-6 is not a valid model ID"}
    assert body["user_id"].startswith("user_")
    bad_json = client.post(f"{emulator.base_url}/chat/completions", content=b"{nope",
                           headers={**auth(emulator), "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == 400
    assert chat(client, emulator, model="openai/gpt-4o", messages=[]).status_code == 400
    assert chat(client, emulator, model="openai/gpt-4o", max_tokens=0).status_code == 400
    assert client.get(f"{emulator.base_url}/nope").status_code == 404
    wrong = client.get(f"{emulator.base_url}/chat/completions", headers=auth(emulator))
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert client.post(f"{emulator.base_url}/models").status_code == 405


# ---------------------------------------------------------------- completions


def test_non_streaming_completion_shape(emulator: Emulator, client: httpx.Client) -> None:
    response = chat(client, emulator, model="openai/gpt-4o", max_tokens=3000)
    assert response.status_code == 200
    body = response.json()
    assert GEN_ID.match(body["id"]) and response.headers["x-generation-id"] == body["id"]
    assert (body["provider"], body["model"], body["object"]) == ("OpenAI", "openai/gpt-4o", "chat.completion")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["native_finish_reason"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    usage = body["usage"]
    assert usage["prompt_tokens"] == 4 + len(HELLO[0]["content"]) // 4 + 1  # ceil(25 / 4) + 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert usage["is_byok"] is False and usage["cost"] > 0
    assert set(usage["cost_details"]) >= {"upstream_inference_cost", "upstream_inference_prompt_cost",
                                          "upstream_inference_completions_cost"}


def test_max_tokens_cuts_with_finish_length(emulator: Emulator, client: httpx.Client) -> None:
    body = chat(client, emulator, model="anthropic/claude-sonnet-4.5", max_tokens=7).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 7


def test_streaming_wire_format(emulator: Emulator, client: httpx.Client) -> None:
    response, raw = stream(client, emulator, model="openai/gpt-4o", max_tokens=40)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    lines, events = parse_sse(raw)
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert lines[0] == ": OPENROUTER PROCESSING" and first_data > 0
    assert all(line in ("", ": OPENROUTER PROCESSING") for line in lines[:first_data])
    assert raw.endswith("data: [DONE]\n\n") and events[-1] == "[DONE]"
    chunks = events[:-1]
    gen_id = response.headers["x-generation-id"]
    assert all(c["id"] == gen_id and c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks)
    usage_chunk, finish_chunk = chunks[-1], chunks[-2]
    assert "usage" in usage_chunk and all("usage" not in c for c in chunks[:-1])
    finish = finish_chunk["choices"][0]["finish_reason"]
    assert finish in ("stop", "length")
    assert usage_chunk["choices"][0]["finish_reason"] == finish  # 2026 style: repeated
    assert usage_chunk["choices"][0]["delta"]["content"] == ""
    tokens = [c["choices"][0]["delta"]["content"] for c in chunks[:-2]]
    assert usage_chunk["usage"]["completion_tokens"] == len(tokens)


def test_same_answer_streaming_or_not(emulator: Emulator, client: httpx.Client) -> None:
    whole = chat(client, emulator, model="mistralai/mistral-small-3.2-24b-instruct", max_tokens=64).json()
    _, raw = stream(client, emulator, model="mistralai/mistral-small-3.2-24b-instruct", max_tokens=64)
    chunks = [e for e in parse_sse(raw)[1] if isinstance(e, dict)]
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"]["cost"] == whole["usage"]["cost"]


@pytest.mark.parametrize("model_id", ["openai/gpt-4o", "anthropic/claude-sonnet-4.5", "google/gemini-2.5-flash-lite",
                                      "deepseek/deepseek-v4-flash"])
def test_cost_is_catalog_price_times_tokens(emulator: Emulator, client: httpx.Client, catalog_path: Path,
                                            model_id: str) -> None:
    prices = catalog_prices(catalog_path, model_id)
    usage = chat(client, emulator, model=model_id, max_tokens=200).json()["usage"]
    expected = (usage["prompt_tokens"] * prices["prompt"] + usage["completion_tokens"] * prices["completion"]
                + prices.get("request", Decimal(0)))
    assert Decimal(str(usage["cost"])) == pytest.approx(expected, rel=Decimal("1e-9"))


def test_reasoning_tokens_are_streamed_first_and_billed_at_the_reasoning_price(
        emulator: Emulator, client: httpx.Client, catalog_path: Path) -> None:
    model = "perplexity/sonar-deep-research"  # internal_reasoning priced below completion
    prices = catalog_prices(catalog_path, model)
    body = chat(client, emulator, model=model, max_tokens=300, reasoning={"effort": "high"}).json()
    usage = body["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert 0 < reasoning < usage["completion_tokens"] and body["choices"][0]["message"]["reasoning"]
    expected = (usage["prompt_tokens"] * prices["prompt"] + reasoning * prices["internal_reasoning"]
                + (usage["completion_tokens"] - reasoning) * prices["completion"])
    assert Decimal(str(usage["cost"])) == pytest.approx(expected, rel=Decimal("1e-9"))
    _, raw = stream(client, emulator, model=model, max_tokens=300, reasoning={"effort": "high"})
    deltas = [e["choices"][0]["delta"] for e in parse_sse(raw)[1] if isinstance(e, dict)][:-2]
    kinds = ["reasoning" if d.get("reasoning") else "content" for d in deltas]
    assert kinds == ["reasoning"] * reasoning + ["content"] * (len(kinds) - reasoning)
    plain = chat(client, emulator, model=model, max_tokens=300).json()["usage"]
    assert plain["completion_tokens_details"]["reasoning_tokens"] == 0


def test_free_model_costs_nothing(emulator: Emulator, client: httpx.Client) -> None:
    body = chat(client, emulator, model="google/gemma-4-31b-it:free", max_tokens=20).json()
    assert body["usage"]["cost"] == 0 and body["usage"]["completion_tokens"] > 0


def test_router_bills_a_concrete_model(emulator: Emulator, client: httpx.Client) -> None:
    body = chat(client, emulator, model="openrouter/auto", max_tokens=20).json()
    assert body["model"] != "openrouter/auto" and body["usage"]["cost"] > 0
    record = client.get(f"{emulator.base_url}/generation", params={"id": body["id"]},
                        headers=auth(emulator)).json()["data"]
    assert record["router"] == "openrouter/auto" and record["model"] == body["model"]


def test_generation_record(emulator: Emulator, client: httpx.Client) -> None:
    body = chat(client, emulator, model="openai/gpt-4o", max_tokens=30, user="alice").json()
    url = f"{emulator.base_url}/generation"
    record = client.get(url, params={"id": body["id"]}, headers=auth(emulator)).json()["data"]
    usage = body["usage"]
    assert record["id"] == body["id"] and record["model"] == "openai/gpt-4o"
    assert record["provider_name"] == "OpenAI" and record["external_user"] == "alice"
    assert record["total_cost"] == record["usage"] == usage["cost"]
    assert record["native_tokens_prompt"] == usage["prompt_tokens"]
    assert record["native_tokens_completion"] == usage["completion_tokens"]
    assert record["native_tokens_reasoning"] == 0 and record["native_tokens_cached"] == 0
    assert record["streamed"] is False and record["cancelled"] is False
    assert record["finish_reason"] == body["choices"][0]["finish_reason"]
    assert record["latency"] >= 0 and record["generation_time"] >= 0
    missing = client.get(url, params={"id": "gen-1-AAAAAAAAAAAAAAAAAAAA"}, headers=auth(emulator))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    assert client.get(url, params={"id": body["id"]}).status_code == 401


# ---------------------------------------------------------------- faults


def read_partial(client: httpx.Client, emu: Emulator, **body: Any) -> tuple[int, str, Exception | None]:
    """Status, the bytes received before the stream ended or broke, and the error if it broke."""
    received: list[bytes] = []
    body.setdefault("messages", HELLO)
    with client.stream("POST", f"{emu.base_url}/chat/completions", json={**body, "stream": True},
                       headers=auth(emu)) as response:
        try:
            for piece in response.iter_raw():
                received.append(piece)
        except httpx.HTTPError as exc:
            return response.status_code, b"".join(received).decode(), exc
        return response.status_code, b"".join(received).decode(), None


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("kind", ["429", "500", "502", "503"])
def test_http_error_faults(emulator_factory: Factory, client: httpx.Client, kind: str, streaming: bool) -> None:
    emu = emulator_factory(faults=[f"*:{kind}:1"])
    response = chat(client, emu, model="openai/gpt-4o", max_tokens=20, stream=streaming)
    assert response.status_code == int(kind)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == int(kind) and body["error"]["message"]
    assert body["user_id"].startswith("user_")
    if kind in ("429", "503"):
        assert float(response.headers["retry-after"]) == pytest.approx(0.02)
    if kind == "429":  # like the real errors_raised-429 recording
        assert body["error"]["message"] == "Provider returned error"
        assert body["error"]["metadata"]["provider_name"] == "OpenAI"
        assert "rate-limited upstream" in body["error"]["metadata"]["raw"]
    assert emu.stats()["requests"]["openai/gpt-4o"] == {kind: 1}


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
def test_timeout_fault_sends_nothing(emulator_factory: Factory, streaming: bool) -> None:
    emu = emulator_factory(faults=["openai/gpt-4o:timeout:1"])
    with httpx.Client(timeout=httpx.Timeout(5, read=0.2)) as slow_client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            chat(slow_client, emu, model="openai/gpt-4o", stream=streaming)
        assert time.monotonic() - started < 2
        assert chat(slow_client, emu, model="openai/gpt-4o-mini").status_code == 200  # other models fine


def test_disconnect_fault_whole_closes_without_answer(emulator_factory: Factory, client: httpx.Client) -> None:
    emu = emulator_factory(faults=["*:disconnect:1"])
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client, emu, model="openai/gpt-4o")


def test_disconnect_fault_stream_cuts_before_done(emulator_factory: Factory, client: httpx.Client) -> None:
    emu = emulator_factory(faults=["*:disconnect:1"])
    status, raw, error = read_partial(client, emu, model="openai/gpt-4o", max_tokens=40)
    assert status == 200 and isinstance(error, httpx.RemoteProtocolError)
    events = parse_sse(raw)[1]
    assert events and all(isinstance(e, dict) and "usage" not in e for e in events)
    assert "[DONE]" not in raw
    record = emu.state.ledger.generations[events[0]["id"]].as_json()
    assert record["native_tokens_completion"] == len(events) and record["cancelled"] is False


def test_midstream_error_fault_stream(emulator_factory: Factory, client: httpx.Client) -> None:
    emu = emulator_factory(faults=["*:midstream-error:1"])
    status, raw, error = read_partial(client, emu, model="openai/gpt-4o", max_tokens=40)
    assert status == 200 and error is None
    events = parse_sse(raw)[1]
    assert events[-1] == "[DONE]"
    failed = events[-2]
    assert set(failed["error"]) == {"code", "message"} and failed["error"]["code"] == 502
    assert failed["choices"][0]["finish_reason"] is None
    tokens = events[:-2]
    assert tokens and all("error" not in e for e in tokens)
    assert failed["usage"]["completion_tokens"] == len(tokens)
    record = client.get(f"{emu.base_url}/generation", params={"id": failed["id"]}, headers=auth(emu)).json()
    assert record["data"]["finish_reason"] == "error"
    assert record["data"]["total_cost"] == failed["usage"]["cost"]


def test_midstream_error_fault_whole(emulator_factory: Factory, client: httpx.Client) -> None:
    emu = emulator_factory(faults=["*:midstream-error:1"])
    response = chat(client, emu, model="openai/gpt-4o", max_tokens=40)
    assert response.status_code == 200
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "error" and choice["error"]["code"] == 502
    assert choice["message"]["content"]  # partial output
    assert response.json()["usage"]["completion_tokens"] > 0


def test_malformed_fault(emulator_factory: Factory, client: httpx.Client) -> None:
    emu = emulator_factory(faults=["*:malformed:1"])
    whole = chat(client, emu, model="openai/gpt-4o", max_tokens=40)
    assert whole.status_code == 200
    with pytest.raises(ValueError):
        whole.json()
    status, raw, error = read_partial(client, emu, model="openai/gpt-4o", max_tokens=40)
    assert status == 200 and error is None
    events = parse_sse(raw)[1]
    assert sum(isinstance(e, str) and e != "[DONE]" for e in events) == 1
    assert events[-1] == "[DONE]"


def test_slow_fault_keeps_the_connection_alive(emulator_factory: Factory) -> None:
    emu = emulator_factory(faults=["*:slow:1"], latency_scale=0.03)  # 0.3 s keep-alive phase
    with httpx.Client(timeout=httpx.Timeout(5, read=0.2)) as slow_client:
        started = time.monotonic()
        _, raw = stream(slow_client, emu, model="openai/gpt-4o-mini", max_tokens=5)
        assert time.monotonic() - started >= 0.3
        lines = raw.split("\n")
        first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
        assert lines[:first_data].count(": OPENROUTER PROCESSING") >= 20
        assert raw.endswith("data: [DONE]\n\n")
    with httpx.Client(timeout=5) as client:  # a whole answer has no way to keep the client waiting
        started = time.monotonic()
        assert chat(client, emu, model="openai/gpt-4o-mini", max_tokens=5).status_code == 200
        assert time.monotonic() - started >= 0.3
    assert emu.stats()["requests"]["openai/gpt-4o-mini"] == {"slow": 2}


def test_fault_rate_and_model_match(emulator_factory: Factory, client: httpx.Client) -> None:
    emu = emulator_factory(faults=["qwen/qwen3-4b:free:500:1", "openai/gpt-4o:503:0.5"], latency_scale=0)
    statuses = [chat(client, emu, model="openai/gpt-4o", max_tokens=5).status_code for _ in range(40)]
    assert 8 <= statuses.count(503) <= 32 and statuses.count(200) == 40 - statuses.count(503)
    assert chat(client, emu, model="openai/gpt-4o-mini", max_tokens=5).status_code == 200


def test_parse_fault() -> None:
    assert parse_fault("qwen/qwen3-4b:free:429:0.5") == FaultRule("qwen/qwen3-4b:free", "429", 0.5)
    assert parse_fault("*:midstream-error:1") == FaultRule("*", "midstream-error", 1.0)
    assert parse_fault("*:slow") == FaultRule("*", "slow", 1.0)
    assert {"429", "timeout", "disconnect", "malformed", "slow"} <= FAULT_KINDS
    for bad in ("*:boom:1", "*:500:2", "*:500:x", "500"):
        with pytest.raises(ValueError):
            parse_fault(bad)


def test_runtime_fault_control(emulator: Emulator, client: httpx.Client) -> None:
    root = emulator.base_url.removesuffix("/api/v1")
    client.post(f"{root}/_emulator/reset")
    try:
        rules = [{"model": "openai/gpt-4o", "kind": "500", "rate": 1}]
        assert client.post(f"{root}/_emulator/faults", json=rules).json() == [{**rules[0], "rate": 1.0}]
        assert chat(client, emulator, model="openai/gpt-4o").status_code == 500
        assert chat(client, emulator, model="openai/gpt-4o-mini", max_tokens=5).status_code == 200
        assert client.post(f"{root}/_emulator/faults", json=[{"model": "*", "kind": "nope"}]).status_code == 400
        assert client.get(f"{emulator.base_url}/_emulator/faults").json()[0]["kind"] == "500"  # unchanged
        stats = client.get(f"{root}/_emulator/stats").json()
        assert stats == {"total": 2, "requests": {"openai/gpt-4o": {"500": 1}, "openai/gpt-4o-mini": {"ok": 1}}}
        emulator.set_faults(["*:502:1"])
        assert chat(client, emulator, model="openai/gpt-4o-mini").status_code == 502
        assert emulator.stats()["total"] == 3
    finally:
        assert client.post(f"{root}/_emulator/reset").json() == {"ok": True}
    assert client.get(f"{root}/_emulator/faults").json() == []
    assert emulator.stats() == {"total": 0, "requests": {}}


def test_answer_quality_and_the_judge(emulator: Emulator, client: httpx.Client) -> None:
    """A model's set quality opens its answers as a tag; a judge request (system message with the
    marker) is answered SCORE: N from the judged answer's tag, the same answer always the same score;
    set over HTTP like the faults, undone by a reset."""
    from hive_emulator.judge import DEFAULT_QUALITY, JUDGE_MARKER

    root = emulator.base_url.removesuffix("/api/v1")

    def judge(answer: str) -> str:
        messages = [{"role": "system", "content": f"{JUDGE_MARKER} Grade."},
                    {"role": "user", "content": f"Request: hi\nAnswer: {answer}"}]
        body = chat(client, emulator, model="openai/gpt-4.1-mini", messages=messages).json()
        return str(body["choices"][0]["message"]["content"])

    plain = chat(client, emulator, model=MODEL, max_tokens=20).json()["choices"][0]["message"]["content"]
    assert "[quality" not in plain  # nothing set: answers as before
    try:
        assert client.post(f"{root}/_emulator/quality", json={MODEL: 0.2}).json() == {MODEL: 0.2}
        assert client.post(f"{root}/_emulator/quality", json={MODEL: 2}).status_code == 400
        answer = chat(client, emulator, model=MODEL, max_tokens=20).json()["choices"][0]["message"]["content"]
        assert answer.startswith("[quality 0.20]")
        verdict = judge(answer)
        assert re.match(r"SCORE: [1-3]\nREASON: ", verdict) and judge(answer) == verdict
        untagged = int(judge(plain).split()[1])
        assert abs(untagged - 10 * DEFAULT_QUALITY) <= 1.5
    finally:
        client.post(f"{root}/_emulator/reset")
    assert client.get(f"{root}/_emulator/quality").json() == {}


# ---------------------------------------------------------------- streams under load and cancellation


def test_sixteen_concurrent_streams(emulator_factory: Factory) -> None:
    emu = emulator_factory(latency_scale=0.02)

    async def one(client: httpx.AsyncClient, i: int) -> str:
        body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}],
                "max_tokens": 60, "stream": True}
        async with client.stream("POST", f"{emu.base_url}/chat/completions", json=body,
                                 headers=auth(emu)) as response:
            assert response.status_code == 200
            return (await response.aread()).decode()

    async def run() -> list[str]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            return await asyncio.gather(*(one(client, i) for i in range(16)))

    started = time.monotonic()
    raws = asyncio.run(run())
    elapsed = time.monotonic() - started
    assert all(raw.endswith("data: [DONE]\n\n") for raw in raws)
    assert len({parse_sse(raw)[1][0]["id"] for raw in raws}) == 16
    assert emu.stats() == {"total": 16, "requests": {"openai/gpt-4o-mini": {"ok": 16}}}
    assert elapsed < 5


def test_cancelled_stream_is_recorded_and_billed_for_tokens_sent(emulator_factory: Factory,
                                                                 client: httpx.Client) -> None:
    emu = emulator_factory(latency_scale=0.5, seed=3)
    body = {"model": "openai/gpt-4o", "messages": HELLO, "max_tokens": 400, "stream": True}
    with client.stream("POST", f"{emu.base_url}/chat/completions", json=body, headers=auth(emu)) as response:
        gen_id = response.headers["x-generation-id"]
        seen = 0
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen += 1
                if seen == 3:
                    break
    url = f"{emu.base_url}/generation"
    deadline = time.monotonic() + 5
    while (answer := client.get(url, params={"id": gen_id}, headers=auth(emu))).status_code == 404:
        assert time.monotonic() < deadline, "no generation record after the cancel"
        time.sleep(0.02)
    record = answer.json()["data"]
    assert record["cancelled"] is True and record["streamed"] is True and record["finish_reason"] is None
    assert 3 <= record["native_tokens_completion"] < 60
    prices = emu.state.catalog.models["openai/gpt-4o"].pricing
    expected = record["native_tokens_prompt"] * prices.prompt + record["native_tokens_completion"] * prices.completion
    assert Decimal(str(record["total_cost"])) == pytest.approx(expected)
    assert emu.stats()["requests"]["openai/gpt-4o"] == {"cancelled": 1}


# ---------------------------------------------------------------- determinism, credit, speed, HTTP


def test_same_seed_same_answers_and_faults(emulator_factory: Factory, client: httpx.Client) -> None:
    def run(seed: int) -> list[tuple[int, str]]:
        emu = emulator_factory(faults=["*:500:0.5"], seed=seed, latency_scale=0)
        out = []
        for i in range(16):
            response = chat(client, emu, model="openai/gpt-4o", max_tokens=50,
                            messages=[{"role": "user", "content": f"question {i % 4}"}])
            text = response.json()["choices"][0]["message"]["content"] if response.status_code == 200 else ""
            out.append((response.status_code, text))
        return out

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert {status for status, _ in first} == {200, 500}
    assert first != other


def test_credit_limit_refuses_with_402(emulator_factory: Factory, client: httpx.Client) -> None:
    emu = emulator_factory(credit_limit=0.001)
    refused = chat(client, emu, model="openai/gpt-4o", max_tokens=1000)
    assert refused.status_code == 402
    message = refused.json()["error"]["message"]
    assert message.startswith("This request requires more credits, or fewer max_tokens. You requested up to 1000")
    assert "can only afford 97" in message  # (0.001 - 11 prompt tokens x 2.5e-6) / 1e-5
    assert chat(client, emu, model="openai/gpt-4o", max_tokens=50).status_code == 200
    key = client.get(f"{emu.base_url}/key", headers=auth(emu)).json()["data"]
    assert key["limit"] == 0.001 and key["limit_remaining"] == pytest.approx(0.001 - key["usage"])


def test_latency_scale_zero_is_fast(emulator_factory: Factory, client: httpx.Client) -> None:
    """Scale 0 sleeps nowhere: the plan's delays are zero, and a request takes a small fraction of
    the model's unscaled time to first token. (A bound relative to the simulated latency, not an
    absolute speed: the suite runs on loaded machines; `make bench` measures the speed.)"""
    from hive_emulator.generation import plan_completion, profile_for

    emu = emulator_factory(latency_scale=0)
    model = emu.state.catalog.get("openai/gpt-4o")
    assert model is not None
    plan = plan_completion(model, [{"role": "user", "content": "hi"}], max_tokens=20, seed=0,
                           request_number=1, latency_scale=0)
    assert (plan.ttft_s, plan.token_interval_s) == (0.0, 0.0)
    chat(client, emu, model="openai/gpt-4o", max_tokens=20)  # warm the connection
    times = []
    for _ in range(30):
        started = time.perf_counter()
        chat(client, emu, model="openai/gpt-4o", max_tokens=20)
        times.append(time.perf_counter() - started)
    median = sorted(times)[len(times) // 2]
    assert median < profile_for(model, 0).ttft_median_s / 5, f"median {median * 1000:.1f} ms per request"


def test_keep_alive_serves_many_requests_on_one_connection(emulator: Emulator) -> None:
    request = f"GET /api/v1/key HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {emulator.api_key}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", emulator.port)) as sock:
        sock.sendall(request.encode() * 3)
        sock.settimeout(5)
        data = b""
        while data.count(b"HTTP/1.1 200 OK") < 3:
            chunk = sock.recv(65536)
            assert chunk, "connection closed early"
            data += chunk


def test_stop_with_streams_in_flight_is_clean(emulator_factory: Factory,
                                              caplog: pytest.LogCaptureFixture) -> None:
    emu = emulator_factory(latency_scale=1, faults=["openai/gpt-4o-mini:timeout:1"])
    errors: list[Exception] = []

    def consume(model: str) -> None:
        try:
            with httpx.Client(timeout=30) as client:
                read_partial(client, emu, model=model, max_tokens=500)
                chat(client, emu, model=model)
        except httpx.HTTPError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(m,)) for m in ("openai/gpt-4o", "openai/gpt-4o-mini")]
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        emu.stop()
        assert time.monotonic() - started < 1
        for thread in threads:
            thread.join(5)
    assert len(errors) == 2 and not caplog.records


def test_public_surface() -> None:
    import hive_emulator as package

    assert package.__all__ == ["DEFAULT_TEST_KEY", "FAULT_KINDS", "Emulator", "FaultRule", "parse_fault"]
    assert all(getattr(package, name) is not None for name in package.__all__)
    assert package.DEFAULT_TEST_KEY.startswith("sk-or-v1-test")


# ---------------------------------------------------------------- the CLI


def test_cli_serves_and_stops_on_signal(
    emulator_process: Callable[..., AbstractContextManager[EmulatorProcess]], client: httpx.Client,
    catalog_path: Path,
) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        with emulator_process("--seed", "3", "--latency-scale", "0", "--fault", "openai/gpt-4o:429:1") as proc:
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", proc.base_url)
            assert client.get(f"{proc.base_url}/models").content == catalog_path.read_bytes()
            assert chat(client, proc, model="openai/gpt-4o").status_code == 429
            assert chat(client, proc, model="openai/gpt-4o-mini", max_tokens=5).status_code == 200
            assert proc.stop(sig) == 0


def test_cli_rejects_a_bad_fault(catalog_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hive_emulator.server", "--catalog", str(catalog_path), "--fault", "*:boom:1"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2 and "boom" in result.stderr


# ---------------------------------------------------------------- tools, structured output, admission


class Weather(BaseModel):
    city: str
    unit: Literal["celsius", "fahrenheit"]
    days: int = Field(ge=1, le=7)


class Division(BaseModel):
    numerator: float
    denominator: int = Field(gt=0)
    on_inf: Literal["infinity", "error"] | None = None


TOOLS = [function_tool("get_weather", Weather, "Weather forecast"), function_tool("divide", Division)]
ASK = [{"role": "user", "content": "What is the weather in Paris, and 123 / 456?"}]


def tool_deltas(raw: str) -> list[dict[str, Any]]:
    """Every ``delta.tool_calls[]`` entry of a stream, in order."""
    return [d for e in parse_sse(raw)[1] if isinstance(e, dict)
            for d in e["choices"][0]["delta"].get("tool_calls") or []]


def assemble(deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls assembled per index the way the OpenAI format defines it."""
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        call = calls.setdefault(delta["index"], {"id": None, "name": None, "arguments": ""})
        call["id"] = delta.get("id", call["id"])
        call["name"] = delta.get("function", {}).get("name", call["name"])
        call["arguments"] += delta["function"]["arguments"]
    return [calls[i] for i in sorted(calls)]


def test_tool_calls_validate_and_stream_as_incremental_deltas(emulator: Emulator, client: httpx.Client) -> None:
    whole = chat(client, emulator, model=MODEL, messages=ASK, tools=TOOLS).json()
    choice = whole["choices"][0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == ("tool_calls", "tool_calls")
    message = choice["message"]
    assert message["content"] == "" and [c["index"] for c in message["tool_calls"]] == [0, 1]
    weather, division = message["tool_calls"]
    assert weather["type"] == "function" and re.fullmatch(r"call_[A-Za-z0-9]{24}", weather["id"])
    assert weather["function"]["name"] == "get_weather" and division["function"]["name"] == "divide"
    Weather.model_validate_json(weather["function"]["arguments"])
    Division.model_validate_json(division["function"]["arguments"])

    _, raw = stream(client, emulator, model=MODEL, messages=ASK, tools=TOOLS)
    deltas = tool_deltas(raw)
    firsts = [next(d for d in deltas if d["index"] == i) for i in (0, 1)]
    assert all(set(d) == {"index", "id", "type", "function"} and d["function"]["arguments"] == "" for d in firsts)
    rest = [d for d in deltas if d not in firsts]
    assert rest and all(set(d) == {"index", "function"} and set(d["function"]) == {"arguments"} for d in rest)
    order = [d["index"] for d in deltas]
    assert order == sorted(order) and set(order) == {0, 1}  # one call after the other, as OpenAI streams them
    expected = [{"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                for c in message["tool_calls"]]
    assert assemble(deltas) == expected
    chunks = [e for e in parse_sse(raw)[1] if isinstance(e, dict)]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == len(deltas) == whole["usage"]["completion_tokens"]


def test_tool_definitions_are_billed_as_prompt(emulator: Emulator, client: httpx.Client, catalog_path: Path) -> None:
    plain = chat(client, emulator, model=MODEL, messages=ASK, tool_choice="none", max_tokens=20).json()["usage"]
    with_tools = chat(client, emulator, model=MODEL, messages=ASK, tools=TOOLS).json()
    usage = with_tools["usage"]
    tools_json = json.dumps(TOOLS, separators=(",", ":"), ensure_ascii=False)
    assert usage["prompt_tokens"] == plain["prompt_tokens"] + -(-len(tools_json) // 4)
    prices = catalog_prices(catalog_path, MODEL)
    expected = usage["prompt_tokens"] * prices["prompt"] + usage["completion_tokens"] * prices["completion"]
    assert Decimal(str(usage["cost"])) == pytest.approx(expected, rel=Decimal("1e-9"))
    record = client.get(f"{emulator.base_url}/generation", params={"id": with_tools["id"]},
                        headers=auth(emulator)).json()["data"]
    assert record["finish_reason"] == "tool_calls" and record["total_cost"] == usage["cost"]
    assert record["native_tokens_prompt"] == usage["prompt_tokens"]


def test_tool_choice_and_parallel_tool_calls(emulator: Emulator, client: httpx.Client) -> None:
    def answer(**body: Any) -> dict[str, Any]:
        response = chat(client, emulator, model=MODEL, tools=TOOLS, max_tokens=50, **body)
        assert response.status_code == 200, response.text
        return dict(response.json()["choices"][0])

    def names(choice: dict[str, Any]) -> list[str]:
        return [c["function"]["name"] for c in choice["message"].get("tool_calls") or []]

    assert names(answer(messages=ASK)) == ["get_weather", "divide"]
    assert names(answer(messages=ASK, parallel_tool_calls=False)) == ["get_weather"]
    assert names(answer(messages=ASK, tool_choice="required")) == ["get_weather", "divide"]
    named = {"type": "function", "function": {"name": "divide"}}
    assert names(answer(messages=ASK, tool_choice=named)) == ["divide"]
    refused = answer(messages=ASK, tool_choice="none")
    assert names(refused) == [] and refused["message"]["content"] and refused["finish_reason"] in ("stop", "length")

    first = answer(messages=ASK, parallel_tool_calls=False)["message"]
    call = first["tool_calls"][0]
    loop = [*ASK, {"role": "assistant", "content": None, "tool_calls": first["tool_calls"]},
            {"role": "tool", "tool_call_id": call["id"], "content": '{"forecast": "sunny"}'}]
    done = answer(messages=loop)
    assert names(done) == [] and done["message"]["content"] and "tool_calls" not in done["message"]
    assert names(answer(messages=loop, tool_choice="required")) == ["get_weather", "divide"]  # forced again

    unknown = chat(client, emulator, model=MODEL, messages=ASK, tools=TOOLS,
                   tool_choice={"type": "function", "function": {"name": "nope"}})
    assert unknown.status_code == 400 and "nope" in unknown.json()["error"]["message"]
    broken = function_tool("broken", {"type": "object", "properties": {"x": {"$ref": "#/$defs/Gone"}}})
    invalid = chat(client, emulator, model=MODEL, messages=ASK, tools=[broken])
    assert invalid.status_code == 400
    assert invalid.json()["error"]["message"].startswith("Invalid schema for function 'broken': ")
    server_tool = chat(client, emulator, model=MODEL, messages=ASK, max_tokens=20,
                       tools=[{"type": "openrouter:web_search"}]).json()["choices"][0]
    assert server_tool["finish_reason"] in ("stop", "length") and "tool_calls" not in server_tool["message"]


def test_tools_refused_with_the_real_404_for_models_without_them(emulator: Emulator, client: httpx.Client) -> None:
    response = chat(client, emulator, model=NO_TOOLS_MODEL, messages=ASK, tools=TOOLS)
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert message.startswith('No endpoints found that support tool use. Try disabling "get_weather". ')
    assert response.json()["error"]["code"] == 404
    assert chat(client, emulator, model=NO_TOOLS_MODEL, messages=ASK, max_tokens=5).status_code == 200
    choice = chat(client, emulator, model="amazon/nova-lite-v1", messages=ASK, tools=TOOLS, tool_choice="required")
    assert choice.status_code == 404 and "'tool_choice' value" in choice.json()["error"]["message"]
    assert emulator.stats()["requests"][NO_TOOLS_MODEL]["no_tool_endpoints"] >= 1


def test_images_accepted_by_vision_models_only(emulator: Emulator, client: httpx.Client) -> None:
    image = [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]
    text_only = chat(client, emulator, model=NO_TOOLS_MODEL, messages=image, max_tokens=5)
    assert text_only.status_code == 404
    assert text_only.json()["error"]["message"] == "No endpoints found that support image input"
    vision = chat(client, emulator, model=MODEL, messages=image, max_tokens=5)
    assert vision.status_code == 200
    words = chat(client, emulator, model=MODEL, messages=[{"role": "user", "content": "What is in this picture?"}],
                 max_tokens=5).json()
    assert vision.json()["usage"]["prompt_tokens"] == words["usage"]["prompt_tokens"] + 85  # one image


def test_audio_accepted_by_audio_models_only_and_files_by_any(emulator: Emulator, client: httpx.Client) -> None:
    audio = [{"role": "user", "content": [
        {"type": "text", "text": "What is said here?"},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]
    refused = chat(client, emulator, model=MODEL, messages=audio, max_tokens=5)
    assert refused.status_code == 404
    assert refused.json()["error"]["message"] == "No endpoints found that support audio input"
    assert chat(client, emulator, model="google/gemini-3.5-flash", messages=audio, max_tokens=5).status_code == 200
    pdf = [{"role": "user", "content": [
        {"type": "text", "text": "Summarise"},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}]}]
    assert chat(client, emulator, model=NO_TOOLS_MODEL, messages=pdf, max_tokens=5).status_code == 200


def test_prompt_beyond_the_context_gets_the_real_400(emulator: Emulator, client: httpx.Client) -> None:
    long = [{"role": "user", "content": "word " * 3200}]  # 4000 tokens + 4 for the message
    response = chat(client, emulator, model=SMALL_CONTEXT_MODEL, messages=long, max_tokens=200)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "This endpoint's maximum context length is 4096 tokens. However, you requested about 4204 tokens "
        "(4004 of text input, 200 in the output). Please reduce the length of either one, or use the "
        '"middle-out" transform to compress your prompt automatically.')
    assert chat(client, emulator, model=SMALL_CONTEXT_MODEL, messages=long, max_tokens=90).status_code == 200
    big = [{"role": "user", "content": "x" * 600_000}]
    with_tools = chat(client, emulator, model=MODEL, messages=big, tools=TOOLS, max_tokens=1000).json()
    tool_tokens = -(-len(json.dumps(TOOLS, separators=(",", ":"))) // 4)
    assert f"(150004 of text input, {tool_tokens} of tool input, 1000 in the output)" in with_tools["error"]["message"]
    assert emulator.stats()["requests"][MODEL]["context_length"] >= 1


class Address(BaseModel):
    street: str
    city: str
    tags: list[Literal["home", "work"]]


class Person(BaseModel):
    name: str = Field(min_length=3, max_length=40)
    age: int = Field(ge=18, le=99)
    score: float = Field(gt=0, lt=1)
    active: bool
    email: str | None
    homes: list[Address] = Field(min_length=1, max_length=3)
    best: Address


def test_response_format_json_schema_and_json_object(emulator: Emulator, client: httpx.Client) -> None:
    schema_format = {"type": "json_schema",
                     "json_schema": {"name": "person", "strict": True, "schema": Person.model_json_schema()}}
    whole = chat(client, emulator, model=MODEL, response_format=schema_format).json()
    content = whole["choices"][0]["message"]["content"]
    Person.model_validate_json(content)
    assert whole["choices"][0]["finish_reason"] == "stop"
    assert whole["usage"]["completion_tokens"] == -(-len(content) // 4)
    _, raw = stream(client, emulator, model=MODEL, response_format=schema_format)
    assert "".join(e["choices"][0]["delta"]["content"] for e in parse_sse(raw)[1] if isinstance(e, dict)) == content
    cut = chat(client, emulator, model=MODEL, response_format=schema_format, max_tokens=5).json()["choices"][0]
    assert cut["finish_reason"] == "length" and content.startswith(cut["message"]["content"])

    obj = json.loads(chat(client, emulator, model=MODEL, response_format={"type": "json_object"})
                     .json()["choices"][0]["message"]["content"])
    assert isinstance(obj, dict) and obj
    # a model without response_format drops it, as OpenRouter drops unsupported parameters
    prose = chat(client, emulator, model="perplexity/sonar-deep-research", max_tokens=30,
                 response_format={"type": "json_object"}).json()["choices"][0]["message"]["content"]
    with pytest.raises(ValueError):
        json.loads(prose)


@pytest.mark.parametrize("kind", ["disconnect", "midstream-error"])
def test_faults_cut_a_streamed_tool_call(emulator_factory: Factory, client: httpx.Client, kind: str) -> None:
    emu = emulator_factory(faults=[f"*:{kind}:1"])
    _, raw, _ = read_partial(client, emu, model=MODEL, messages=ASK, tools=TOOLS)
    deltas = tool_deltas(raw)
    assert deltas and raw.endswith("data: [DONE]\n\n") == (kind == "midstream-error")
    _, whole = stream(client, emulator_factory(), model=MODEL, messages=ASK, tools=TOOLS)  # same seed, no fault
    full = tool_deltas(whole)
    assert deltas == full[: len(full) // 2]  # cut half-way through the calls
    events = [e for e in parse_sse(raw)[1] if isinstance(e, dict)]
    record = emu.state.ledger.generations[events[0]["id"]]
    assert record.completion_tokens == len(deltas)
    if kind == "midstream-error":
        assert events[-1]["error"]["code"] == 502 and events[-1]["usage"]["completion_tokens"] == len(deltas)


def test_schema_values_cover_what_pydantic_emits() -> None:
    import random

    from hive_emulator.schema_values import SchemaError, value_for

    class Node(BaseModel):
        label: str
        children: list[Node] = []

    class Order(BaseModel):
        id: UUID
        when: datetime
        day: date
        contact: Literal["email"] = "email"
        quantity: int = Field(multiple_of=5, ge=7, le=40)
        tree: Node
        extra: dict[str, int] | None

    for seed in range(30):
        Order.model_validate_json(json.dumps(value_for(Order.model_json_schema(), random.Random(seed))))
        Person.model_validate_json(json.dumps(value_for(Person.model_json_schema(), random.Random(seed))))
    assert value_for(Order.model_json_schema(), random.Random(1)) == value_for(Order.model_json_schema(),
                                                                                 random.Random(1))
    with pytest.raises(SchemaError):
        value_for({"$ref": "#/$defs/Missing"}, random.Random(0))
    with pytest.raises(SchemaError):
        value_for({"type": "integer", "minimum": 5, "maximum": 4}, random.Random(0))
