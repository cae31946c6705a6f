"""A third-party client proves the emulator speaks OpenRouter's protocol: the openai Python SDK (a test
extra) runs tool loops, structured output and typed errors against it over 127.0.0.1.

The SDK does its own parsing and stream assembly (``chat.completions.stream`` accumulates tool-call
deltas per index; ``parse`` validates JSON into pydantic models), so nothing here re-implements the
protocol: if the emulator's wire format drifted from OpenAI's, these calls would fail in the SDK.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from hive_emulator import Emulator
from tests.plugins.emulator import MODEL, NO_TOOLS_MODEL, SMALL_CONTEXT_MODEL
from tests.plugins.sdk_cases import QUESTION, TOOLS, Divide, GetWeather, MathAnswer, answer_calls


@pytest.fixture
def client(emulator: Emulator) -> Iterator[OpenAI]:
    with OpenAI(base_url=emulator.base_url, api_key=emulator.api_key, max_retries=0, timeout=10) as sdk:
        yield sdk


def test_tool_loop(client: OpenAI) -> None:
    messages = list(QUESTION)
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls or []] == ["GetWeather", "Divide"]
    answer_calls(messages, choice.message)
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, max_tokens=60)
    assert final.choices[0].finish_reason in ("stop", "length")
    assert final.choices[0].message.content and not final.choices[0].message.tool_calls
    assert final.usage is not None and first.usage is not None
    assert final.usage.prompt_tokens > first.usage.prompt_tokens


def test_streamed_tool_loop_assembled_by_the_sdk(client: OpenAI) -> None:
    messages = list(QUESTION)
    whole = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    argument_deltas: list[tuple[int, str]] = []
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=TOOLS) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                argument_deltas.append((event.index, event.arguments_delta))
        streamed = stream.get_final_completion()
    choice = streamed.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    expected = whole.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        (c.id, c.function.name, c.function.arguments) for c in expected]
    # strict pydantic tools: the SDK parsed the assembled arguments into the models itself
    assert isinstance(calls[0].function.parsed_arguments, GetWeather)
    assert isinstance(calls[1].function.parsed_arguments, Divide)
    assert {index for index, _ in argument_deltas} == {0, 1} and len(argument_deltas) > 2
    assert streamed.usage is not None and whole.usage is not None
    assert streamed.usage.completion_tokens == whole.usage.completion_tokens

    answer_calls(messages, choice.message)
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=TOOLS, max_tokens=60) as stream:
        text = "".join(e.delta for e in stream if e.type == "content.delta")
        final = stream.get_final_completion()
    assert text and final.choices[0].message.content == text and not final.choices[0].message.tool_calls


def test_structured_output(client: OpenAI) -> None:
    parsed = client.chat.completions.parse(model=MODEL, messages=[{"role": "user", "content": "Solve 8x + 7 = -23"}],
                                           response_format=MathAnswer)
    answer = parsed.choices[0].message.parsed
    assert isinstance(answer, MathAnswer) and answer.steps and 0 <= answer.confidence <= 1
    raw = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Solve it"}],
        response_format={"type": "json_schema", "json_schema": {"name": "math", "strict": True,
                                                                "schema": MathAnswer.model_json_schema()}})
    MathAnswer.model_validate_json(raw.choices[0].message.content or "")
    obj = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Reply in JSON"}],
                                         response_format={"type": "json_object"})
    assert isinstance(json.loads(obj.choices[0].message.content or ""), dict)


def test_errors_surface_as_the_sdks_typed_errors(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model=SMALL_CONTEXT_MODEL, max_tokens=200,
                                       messages=[{"role": "user", "content": "word " * 5000}])
    assert too_long.value.status_code == 400
    assert "maximum context length is 4096 tokens" in too_long.value.message
    with pytest.raises(openai.NotFoundError) as no_tools:
        client.chat.completions.create(model=NO_TOOLS_MODEL, messages=QUESTION, tools=TOOLS)
    assert "No endpoints found that support tool use" in no_tools.value.message
    with (pytest.raises(openai.NotFoundError),
          client.chat.completions.stream(model=NO_TOOLS_MODEL, messages=QUESTION, tools=TOOLS) as stream):
        stream.get_final_completion()


def test_async_tool_loop_and_structured_output(emulator: Emulator) -> None:
    async def run() -> None:
        async with AsyncOpenAI(base_url=emulator.base_url, api_key=emulator.api_key, max_retries=0,
                               timeout=10) as sdk:
            messages = list(QUESTION)
            async with sdk.chat.completions.stream(model=MODEL, messages=messages, tools=TOOLS,
                                                   parallel_tool_calls=False) as stream:
                first = await stream.get_final_completion()
            assert [c.function.name for c in first.choices[0].message.tool_calls or []] == ["GetWeather"]
            answer_calls(messages, first.choices[0].message)
            final = await sdk.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, max_tokens=40)
            assert final.choices[0].message.content
            parsed = await sdk.chat.completions.parse(model=MODEL, response_format=MathAnswer,
                                                      messages=[{"role": "user", "content": "Solve 2x = 4"}])
            assert isinstance(parsed.choices[0].message.parsed, MathAnswer)

    asyncio.run(run())
