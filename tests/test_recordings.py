"""Every real recording replays into the right result and events; streamed equals non-streamed.

The recordings are served by ``httpx.MockTransport`` (pure wire format). Two oracles that are not
our code: the recorded documents themselves, and the openai SDK's own stream accumulator
(``ChatCompletionStreamState``) for the recorded streams. Each whole recording is also replayed
streamed, written as OpenRouter streams it (:func:`tests.plugins.wire.to_sse`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from hive_core.errors import MidStreamError, RateLimited
from hive_core.openrouter import ChatResult, OpenRouterClient, ToolCall
from hive_core.settings import Settings
from hive_core.store.events import ApiCall, StreamOutcome, Usage
from tests.plugins.store import ListSink
from tests.plugins.wire import to_sse

KEY = "sk-or-v1-recordings"
WHOLE = ["google_nested_schema-200.json", "thinking_high_emits_effort_high-200.json", "tool_calling-200.json",
         "usage-200.json", "usage-b-200.json", "with_preset-200.json", "with_reasoning-200.json"]
STREAMS = ["stream_error-200.sse", "stream_with_native_options-200.sse", "stream_with_reasoning-200.sse"]
ERRORS = ["errors_raised-429.json"]
#: the answer: what a streamed and a whole reply of the same content must agree on
ANSWER = ["text", "reasoning", "finish_reason", "native_finish_reason", "tool_calls", "reasoning_details",
          "annotations", "refusal", "logprobs", "usage", "served_model", "provider", "generation_id", "message",
          "cost_usd", "cost_source", "outcome"]


def client(body: bytes, sink: ListSink | None = None) -> OpenRouterClient:
    settings = Settings(api_key=KEY, base_url="https://openrouter.test/api/v1", max_attempts=1)
    return OpenRouterClient(settings, sink=sink, transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body)))


def answer(result: ChatResult) -> dict[str, Any]:
    return {name: getattr(result, name) for name in ANSWER}


def test_every_recording_is_replayed(recordings_dir: Path) -> None:
    assert sorted(p.name for p in recordings_dir.iterdir()) == sorted(WHOLE + STREAMS + ERRORS)


@pytest.mark.parametrize("name", WHOLE)
def test_whole_recording_replays_into_the_result(recordings_dir: Path, name: str) -> None:
    raw = (recordings_dir / name).read_bytes()
    doc = json.loads(raw)
    choice, sink = doc["choices"][0], ListSink()
    message = choice["message"]
    with client(raw, sink) as c:
        result = c.chat("hi", model="requested/model")
    assert (result.text, result.reasoning) == (message["content"] or "", message["reasoning"] or "")
    assert (result.finish_reason, result.native_finish_reason) == (choice["finish_reason"],
                                                                   choice["native_finish_reason"])
    assert [call.as_dict() for call in result.tool_calls] == [
        {k: v for k, v in call.items() if k != "index"} for call in message.get("tool_calls", [])]
    assert list(result.reasoning_details) == message.get("reasoning_details", [])
    assert result.raw == doc and result.refusal is None and result.logprobs is None
    expected_message: dict[str, Any] = {"role": "assistant", "content": message["content"] or None
                                        if message.get("tool_calls") else message["content"]}
    if message.get("tool_calls"):
        expected_message["tool_calls"] = [{k: v for k, v in call.items() if k != "index"}
                                          for call in message["tool_calls"]]
    if message.get("reasoning_details"):
        expected_message["reasoning_details"] = message["reasoning_details"]
    assert result.message == expected_message
    assert [c.status for c in sink.of(ApiCall)] == ["ok"]
    (usage,) = sink.of(Usage)
    assert (usage.prompt_tokens, usage.completion_tokens) == (doc["usage"]["prompt_tokens"],
                                                             doc["usage"]["completion_tokens"])


def test_tool_calling_recording_gives_the_call(recordings_dir: Path) -> None:
    """The issue's own example: this replay used to give text='' and no tool calls at all."""
    divide = {"type": "function", "function": {"name": "divide", "parameters": {"type": "object"}}}
    with client((recordings_dir / "tool_calling-200.json").read_bytes()) as c:
        result = c.chat("What is 123 / 456?", model="mistralai/mistral-small", tools=[divide])
    assert result.finish_reason == "tool_calls" and result.text == ""
    assert result.tool_calls == (ToolCall("3sniiMddS", "divide",
                                          '{"numerator": 123, "denominator": 456, "on_inf": "infinity"}'),)
    assert result.tool_calls[0].parse_arguments() == {"numerator": 123, "denominator": 456, "on_inf": "infinity"}
    assert result.message["content"] is None and result.message["tool_calls"][0]["id"] == "3sniiMddS"


def with_logprobs_and_citations(doc: dict[str, Any]) -> dict[str, Any]:
    """A recorded answer given what a ``logprobs`` request and a web search add, in their shapes."""
    doc = json.loads(json.dumps(doc))
    choice = doc["choices"][0]
    words = choice["message"]["content"].split(" ")[:12]
    choice["logprobs"] = {"content": [{"token": w, "logprob": -0.5, "bytes": list(w.encode()), "top_logprobs": []}
                                      for w in words], "refusal": None}
    choice["message"]["annotations"] = [{"type": "url_citation", "url_citation": {
        "url": "https://en.wikipedia.org/wiki/Mars", "title": "Mars", "content": "Mars is the fourth planet",
        "start_index": 0, "end_index": 10}}]
    return doc


@pytest.mark.parametrize("name", [*WHOLE, "usage-b-200.json+logprobs+citations"])
def test_streamed_and_whole_answers_give_the_same_result(recordings_dir: Path, name: str) -> None:
    doc = json.loads((recordings_dir / name.split("+")[0]).read_bytes())
    if "+logprobs" in name:
        doc = with_logprobs_and_citations(doc)
    with client(json.dumps(doc).encode()) as c:
        whole = c.chat("hi", model="requested/model")
    with client(to_sse(doc)) as c:
        streamed = c.stream("hi", model="requested/model").collect()
    assert streamed.streamed and not whole.streamed
    assert answer(streamed) == answer(whole)
    assert streamed.raw is not None and streamed.raw["choices"][0]["message"]["content"] == whole.text
    if "+logprobs" in name:
        assert whole.logprobs is not None and len(whole.logprobs["content"]) == 12
        assert whole.annotations[0]["url_citation"]["title"] == "Mars"


def sdk_accumulated(raw: bytes) -> Any:
    """The openai SDK's own assembly of a recorded stream (error chunks left out)."""
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    state: Any = ChatCompletionStreamState()
    for line in raw.decode().splitlines():
        if line.startswith("data: {") and '"error"' not in line:
            state.handle_chunk(ChatCompletionChunk.model_validate(json.loads(line[6:])))
    return state.current_completion_snapshot.choices[0]


@pytest.mark.parametrize("name", STREAMS)
def test_recorded_stream_replays_like_the_openai_sdk_assembles_it(recordings_dir: Path, name: str) -> None:
    raw = (recordings_dir / name).read_bytes()
    sdk = sdk_accumulated(raw)
    usage_doc = next(json.loads(line[6:]) for line in raw.decode().splitlines() if '"usage"' in line)["usage"]
    sink = ListSink()
    with client(raw, sink) as c:
        handle = c.stream("hi", model="requested/model")
        if name == "stream_error-200.sse":
            with pytest.raises(MidStreamError, match="Token limit reached"):
                handle.collect()
        else:
            handle.collect()
    result = handle.result
    assert result is not None
    extra = sdk.message.model_extra or {}
    assert result.text == (sdk.message.content or "")
    assert result.reasoning == (extra.get("reasoning") or "")
    assert list(result.reasoning_details) == extra.get("reasoning_details", [])
    assert result.finish_reason == sdk.finish_reason and result.tool_calls == ()
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (usage_doc["prompt_tokens"],
                                                                           usage_doc["completion_tokens"])
    assert result.message["reasoning_details"] == extra["reasoning_details"]  # sent back next turn
    assert [type(e) for e in sink.events] == [ApiCall, Usage, StreamOutcome]
    assert sink.of(StreamOutcome)[0].outcome == ("errored" if name == "stream_error-200.sse" else "completed")


def test_recorded_rate_limit_is_typed(recordings_dir: Path) -> None:
    raw = (recordings_dir / "errors_raised-429.json").read_bytes()
    settings = Settings(api_key=KEY, base_url="https://openrouter.test/api/v1", max_attempts=1)
    sink = ListSink()
    transport = httpx.MockTransport(lambda r: httpx.Response(429, content=raw))
    with OpenRouterClient(settings, sink=sink, transport=transport) as c, pytest.raises(RateLimited):
        c.chat("hi", model="google/gemini-2.0-flash-exp:free")
    assert [(a.status, a.http_status) for a in sink.of(ApiCall)] == [("rate_limited", 429)]
    assert sink.of(Usage) == []
