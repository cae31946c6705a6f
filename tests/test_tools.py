"""Agent requests: the whole request surface goes into the body, tool calls come back assembled,
and a multi-turn tool loop works sync and async, streamed and not, one logical request per turn.

The server side is ``httpx.MockTransport`` serving answers in the recorded shape (the tool-calling
recording, with two parallel calls), streamed through :func:`tests.plugins.wire.to_sse`; then the
emulator, which calls the offered tools and answers in text once the tool results are in.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from hive_core.openrouter import AsyncOpenRouterClient, ChatResult, OpenRouterClient, ToolCall, ToolCallDelta
from hive_core.settings import Settings
from hive_core.store.events import ApiCall, StreamOutcome, Usage
from tests.plugins.emulator import MODEL as EMU_MODEL
from tests.plugins.emulator import emu_settings
from tests.plugins.store import ListSink
from tests.plugins.wire import to_sse

MODEL = "mistralai/mistral-small"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
SETTINGS = Settings(api_key="sk-or-v1-tools", base_url="https://openrouter.test/api/v1", max_attempts=1)


def test_chat_sends_the_whole_request_surface() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"id": "gen-1", "model": MODEL, "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]})

    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in these?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18C"},
        {"role": "assistant", "content": "The answer is"},  # prefill
    ]
    surface: dict[str, Any] = {
        "tools": [WEATHER, {"type": "openrouter:web_search", "parameters": {"max_results": 3}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "parallel_tool_calls": False,
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "strict": True,
                                                                   "schema": {"type": "object"}}},
        "reasoning": {"effort": "low", "exclude": True},
        "provider": {"order": ["mistral"], "allow_fallbacks": False, "max_price": {"prompt": 1.0}},
        "models": [MODEL, "openai/gpt-4o-mini"], "stop": ["\n\n"], "seed": 7, "temperature": 0.3, "top_p": 0.9,
        "top_k": 40, "frequency_penalty": 0.1, "presence_penalty": 0.2, "repetition_penalty": 1.1,
        "logprobs": True, "top_logprobs": 2, "user": "end-user-42",
    }
    with OpenRouterClient(SETTINGS, transport=httpx.MockTransport(handler)) as client:
        client.chat(messages, model=MODEL, max_tokens=50, **surface, extra_body={"future_field": {"x": 1}})
        client.chat("hi", model=MODEL, not_typed_yet=1)  # type: ignore[call-arg]  # untyped callers too
    assert seen[0] == {"model": MODEL, "messages": messages, "max_tokens": 50, "usage": {"include": True},
                       **surface, "future_field": {"x": 1}}
    assert seen[1]["not_typed_yet"] == 1


def answer_doc(n: int, message: dict[str, Any], finish: str) -> dict[str, Any]:
    """Turn ``n``'s answer, shaped like the tool-calling recording."""
    return {"id": f"gen-1762047030-turn{n}", "provider": "Mistral", "model": MODEL, "object": "chat.completion",
            "created": 1762047030 + n, "choices": [{"index": 0, "finish_reason": finish, "native_finish_reason": finish,
                                                    "logprobs": None, "message": dict(role="assistant", **message)}],
            "usage": {"prompt_tokens": 134 + 60 * n, "completion_tokens": 43, "total_tokens": 177 + 60 * n,
                      "cost": 0.0001, "is_byok": False}}


ASKS = answer_doc(0, {"content": "", "tool_calls": [
    {"id": "3sniiMddS", "index": 0, "type": "function",
     "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}},
    {"id": "9QkpTz1Ab", "index": 1, "type": "function",
     "function": {"name": "get_weather", "arguments": '{"city": "Tokyo", "unit": "celsius"}'}}]}, "tool_calls")
FINAL = answer_doc(1, {"content": "Paris is 18C and Tokyo 24C."}, "stop")


def model(request: httpx.Request) -> httpx.Response:
    """Asks for both cities' weather, then answers once the tool results are in the conversation."""
    body = json.loads(request.content)
    doc = FINAL if body["messages"][-1]["role"] == "tool" else ASKS
    if body.get("stream"):
        return httpx.Response(200, content=to_sse(doc, size=5), headers={"content-type": "text/event-stream"})
    return httpx.Response(200, json=doc)


WEATHER_NOW = {"Paris": "18C", "Tokyo": "24C"}


def tool_turns(first: ChatResult, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the caller appends after a turn that asked for tools."""
    return [first.message] + [call.reply(WEATHER_NOW[call.parse_arguments()["city"]]) for call in first.tool_calls]


def check_loop(results: list[ChatResult], sink: ListSink, sent: list[dict[str, Any]], stream: bool) -> None:
    first, last = results
    assert first.finish_reason == "tool_calls" and first.text == ""
    assert first.tool_calls == (ToolCall("3sniiMddS", "get_weather", '{"city": "Paris", "unit": "celsius"}'),
                                ToolCall("9QkpTz1Ab", "get_weather", '{"city": "Tokyo", "unit": "celsius"}'))
    assert (last.text, last.finish_reason, last.tool_calls) == ("Paris is 18C and Tokyo 24C.", "stop", ())
    second = sent[1]["messages"]
    assert second[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "3sniiMddS", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}},
        {"id": "9QkpTz1Ab", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Tokyo", "unit": "celsius"}'}}]}
    assert second[2:] == [{"role": "tool", "tool_call_id": "3sniiMddS", "content": "18C"},
                          {"role": "tool", "tool_call_id": "9QkpTz1Ab", "content": "24C"}]
    # one logical request per turn: its own request_id and its own events
    ids = [first.request_id, last.request_id]
    assert ids[0] != ids[1]
    assert [c.request_id for c in sink.of(ApiCall)] == ids and [u.request_id for u in sink.of(Usage)] == ids
    assert [u.prompt_tokens for u in sink.of(Usage)] == [134, 194]
    assert [o.request_id for o in sink.of(StreamOutcome)] == (ids if stream else [])
    assert [o.finish_reason for o in sink.of(StreamOutcome)] == (["tool_calls", "stop"] if stream else [])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_tool_loop_sync(stream: bool) -> None:
    sent: list[dict[str, Any]] = []
    sink = ListSink()

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return model(request)

    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
    results: list[ChatResult] = []
    with OpenRouterClient(SETTINGS, sink=sink, transport=httpx.MockTransport(handler)) as client:
        while not results or results[-1].tool_calls:
            if results:
                messages += tool_turns(results[-1], messages)
            if stream:
                results.append(client.stream(messages, model=MODEL, tools=[WEATHER]).collect())
            else:
                results.append(client.chat(messages, model=MODEL, tools=[WEATHER], parallel_tool_calls=True))
    check_loop(results, sink, sent, stream)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_tool_loop_async(stream: bool) -> None:
    sent: list[dict[str, Any]] = []
    sink = ListSink()

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(await request.aread()))
        return model(request)

    async def main() -> list[ChatResult]:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
        results: list[ChatResult] = []
        async with AsyncOpenRouterClient(SETTINGS, sink=sink, transport=httpx.MockTransport(handler)) as client:
            while not results or results[-1].tool_calls:
                if results:
                    messages += tool_turns(results[-1], messages)
                if stream:
                    results.append(await client.stream(messages, model=MODEL, tools=[WEATHER]).collect())
                else:
                    results.append(await client.chat(messages, model=MODEL, tools=[WEATHER]))
        return results

    check_loop(asyncio.run(main()), sink, sent, stream)


def test_tool_call_deltas_reach_the_callback_in_order() -> None:
    deltas: list[ToolCallDelta] = []
    progress: list[int] = []
    with OpenRouterClient(SETTINGS, transport=httpx.MockTransport(model)) as client:
        handle = client.stream("Weather?", model=MODEL, tools=[WEATHER], on_tool_call=deltas.append,
                               on_progress=lambda p: progress.append(p.tokens))
        assert list(handle) == []  # no text: the calls go to the callback and the result
    result = handle.result
    assert result is not None and len(result.tool_calls) == 2
    for position, call in enumerate(result.tool_calls):
        mine = [d for d in deltas if d.position == position]
        assert {(d.id, d.name) for d in mine} == {(call.id, call.name)}
        assert "".join(d.arguments for d in mine) == call.arguments
    assert [d.position for d in deltas[:4]] == [0, 1, 0, 1]  # interleaved on the wire, kept apart
    assert progress == list(range(1, len(deltas) + 1)) and handle.delivered == len(deltas)


def sse(*deltas: dict[str, Any]) -> bytes:
    chunks = [{"id": "gen-x", "model": MODEL, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
              for d in deltas]
    chunks.append({"id": "gen-x", "model": MODEL, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"


def test_parallel_calls_under_one_index_and_without_index_are_kept_apart() -> None:
    """Some providers number every parallel call 0, or leave ``index`` out: a new ``id`` is a new call."""
    body = sse(
        {"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
        {"tool_calls": [{"index": 0, "id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
        {"tool_calls": [{"id": "c", "type": "function", "function": {"name": "h", "arguments": '{"y"'}}]},
        {"tool_calls": [{"function": {"arguments": ":2}"}}]},
    )
    with OpenRouterClient(SETTINGS, transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body))) as c:
        result = c.stream("x", model=MODEL).collect()
    assert result.tool_calls == (ToolCall("a", "f", '{"x":1}'), ToolCall("b", "g", "{}"), ToolCall("c", "h", '{"y":2}'))
    assert result.outcome == "completed" and result.attempts == 1  # a tools-only stream is not "empty"


def test_tool_calling_recording_replayed_streamed(recordings_dir: Path) -> None:
    doc = json.loads((recordings_dir / "tool_calling-200.json").read_bytes())
    body = to_sse(doc, size=4)
    with OpenRouterClient(SETTINGS, transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body))) as c:
        result = c.stream("What is 123 / 456?", model=MODEL, tools=[WEATHER]).collect()
    assert [call.name for call in result.tool_calls] == ["divide"]
    assert result.tool_calls[0].parse_arguments() == {"numerator": 123, "denominator": 456, "on_inf": "infinity"}


# -- the same loop against the emulator (it answers tools since issue 13) ------------------------

CLOCK = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}},
                                       "required": ["zone"]}}}


def emulator_loop_checks(results: list[ChatResult], sink: ListSink, stream: bool) -> None:
    first, last = results
    assert first.finish_reason == "tool_calls" and [c.name for c in first.tool_calls] == ["get_weather", "get_time"]
    assert len({c.id for c in first.tool_calls}) == 2
    assert isinstance(first.tool_calls[0].parse_arguments()["city"], str)
    assert isinstance(first.tool_calls[1].parse_arguments()["zone"], str)
    assert last.finish_reason == "stop" and last.text and last.tool_calls == ()
    ids = [r.request_id for r in results]
    assert len(set(ids)) == 2
    assert [(c.request_id, c.status) for c in sink.of(ApiCall)] == [(i, "ok") for i in ids]
    assert [u.request_id for u in sink.of(Usage)] == ids and all(u.cost_source == "billed" for u in sink.of(Usage))
    assert [(o.request_id, o.finish_reason) for o in sink.of(StreamOutcome)] == (
        [(ids[0], "tool_calls"), (ids[1], "stop")] if stream else [])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_tool_loop_against_the_emulator_sync(emulator: Any, tmp_path: Path, stream: bool) -> None:
    settings = emu_settings(emulator, tmp_path)
    sink = ListSink()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather and time in Paris?"}]
    results: list[ChatResult] = []
    deltas: list[ToolCallDelta] = []
    with OpenRouterClient(settings, sink=sink) as client:
        while not results or results[-1].tool_calls:
            if results:
                messages += [results[-1].message] + [call.reply("fine") for call in results[-1].tool_calls]
            if stream:
                handle = client.stream(messages, model=EMU_MODEL, tools=[WEATHER, CLOCK], max_tokens=200,
                                       on_tool_call=deltas.append)
                results.append(handle.collect())
            else:
                results.append(client.chat(messages, model=EMU_MODEL, tools=[WEATHER, CLOCK], max_tokens=200))
    emulator_loop_checks(results, sink, stream)
    if stream:  # the callback saw every fragment of both calls
        for position, call in enumerate(results[0].tool_calls):
            assert "".join(d.arguments for d in deltas if d.position == position) == call.arguments


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_tool_loop_against_the_emulator_async(emulator: Any, tmp_path: Path, stream: bool) -> None:
    settings = emu_settings(emulator, tmp_path)
    sink = ListSink()

    async def main() -> list[ChatResult]:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather and time in Paris?"}]
        results: list[ChatResult] = []
        async with AsyncOpenRouterClient(settings, sink=sink) as client:
            while not results or results[-1].tool_calls:
                if results:
                    messages += [results[-1].message] + [call.reply("fine") for call in results[-1].tool_calls]
                if stream:
                    results.append(await client.stream(messages, model=EMU_MODEL, tools=[WEATHER, CLOCK],
                                                       max_tokens=200).collect())
                else:
                    results.append(await client.chat(messages, model=EMU_MODEL, tools=[WEATHER, CLOCK],
                                                     max_tokens=200))
        return results

    emulator_loop_checks(asyncio.run(main()), sink, stream)
