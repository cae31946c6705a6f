"""The OpenRouter emulator over real HTTP: endpoints, wire format, costs, faults, concurrency, CLI."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from hive_core.emulator import Emulator
from tests.plugins.emulator import EmulatorProcess

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
