"""The whole ``usage`` object, from the wire to the event on disk, and the budget's estimate against
what the emulator bills.

Every real recording is replayed through the client (``httpx.MockTransport``: pure wire format)
into a real EventLog; the stored ``usage`` event must equal the recording's ``usage`` object field
by field, to the last digit (the recorded JSON numbers are the oracle).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from hive_core.budget.estimate import IMAGE_TOKENS, max_cost
from hive_core.catalog.catalog import Catalog
from hive_core.errors import MidStreamError
from hive_core.openrouter import OpenRouterClient
from hive_core.openrouter.usage import UsageInfo
from hive_core.settings import Settings
from hive_core.store.events import Usage
from ingest.log import EventLog
from tests.plugins.emulator import MODEL, emu_settings, function_tool
from tests.plugins.store import events

KEY = "sk-or-v1-usage"
#: recordings that carry a usage object (the 429 has none)
RECORDINGS = ["google_nested_schema-200.json", "thinking_high_emits_effort_high-200.json", "tool_calling-200.json",
              "usage-200.json", "usage-b-200.json", "with_preset-200.json", "with_reasoning-200.json",
              "stream_error-200.sse", "stream_with_native_options-200.sse", "stream_with_reasoning-200.sse"]
#: event column -> path in the usage object (absent -> 0 for counts, null for costs)
COUNTS = {
    "prompt_tokens": ("prompt_tokens",), "completion_tokens": ("completion_tokens",),
    "cached_tokens": ("prompt_tokens_details", "cached_tokens"),
    "cache_write_tokens": ("prompt_tokens_details", "cache_write_tokens"),
    "prompt_audio_tokens": ("prompt_tokens_details", "audio_tokens"),
    "prompt_image_tokens": ("prompt_tokens_details", "image_tokens"),
    "prompt_video_tokens": ("prompt_tokens_details", "video_tokens"),
    "completion_audio_tokens": ("completion_tokens_details", "audio_tokens"),
    "completion_image_tokens": ("completion_tokens_details", "image_tokens"),
    "web_search_requests": ("server_tool_use_details", "web_search_requests"),
}
COSTS = {
    "cost_usd": ("cost",), "upstream_cost_usd": ("cost_details", "upstream_inference_cost"),
    "upstream_prompt_cost_usd": ("cost_details", "upstream_inference_prompt_cost"),
    "upstream_completion_cost_usd": ("cost_details", "upstream_inference_completions_cost"),
}


def dig(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        doc = doc.get(key) if isinstance(doc, dict) else None  # type: ignore[assignment]
    return doc


def recorded_usage(raw: bytes, name: str) -> dict[str, Any]:
    if name.endswith(".sse"):  # the stream's usage chunk
        return next(json.loads(line[6:]) for line in raw.decode().splitlines() if '"usage"' in line)["usage"]
    return dict(json.loads(raw)["usage"])


def replay(raw: bytes, name: str, data_dir: Path) -> None:
    settings = Settings(api_key=KEY, base_url="https://openrouter.test/api/v1", max_attempts=1)
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=raw))
    with EventLog(data_dir) as log, OpenRouterClient(settings, sink=log, transport=transport) as client:
        if name.endswith(".sse"):
            with contextlib.suppress(MidStreamError):  # stream_error: its error chunk carries usage
                client.stream("hi", model="requested/model").collect()
        else:
            client.chat("hi", model="requested/model")


@pytest.mark.parametrize("name", RECORDINGS)
def test_the_stored_usage_event_is_the_recorded_usage_object(recordings_dir: Path, data_dir: Path, name: str) -> None:
    raw = (recordings_dir / name).read_bytes()
    usage = recorded_usage(raw, name)
    replay(raw, name, data_dir)
    columns = [*COUNTS, "reasoning_tokens", *COSTS, "cost_source", "is_byok", "schema_version"]
    (row,) = events(data_dir, "usage", ", ".join(columns))
    stored = dict(zip(columns, row, strict=True))
    for column, path in COUNTS.items():
        assert stored[column] == (dig(usage, path) or 0), column
    # reasoning is part of completion: clamped to it (stream_error reports 11 of 10)
    assert stored["reasoning_tokens"] == min(dig(usage, ("completion_tokens_details", "reasoning_tokens")) or 0,
                                             usage["completion_tokens"])
    for column, path in COSTS.items():
        if column == "cost_usd" and "cost" not in usage:  # an old answer without cost: estimated or unknown
            assert stored["cost_source"] in ("estimated", "unknown")
            continue
        assert stored[column] == dig(usage, path), column  # the JSON number itself, every digit
    assert stored["is_byok"] is (usage.get("is_byok") is True)
    assert stored["schema_version"] == Usage.SCHEMA_VERSION


def test_a_byok_call_records_the_fee_apart_from_the_providers_price(recordings_dir: Path, data_dir: Path) -> None:
    """The real BYOK recording: OpenRouter charged 0, the provider 0.0003253 on the user's key."""
    replay((recordings_dir / "google_nested_schema-200.json").read_bytes(), "x.json", data_dir)
    assert events(data_dir, "usage", "is_byok, cost_usd, cost_source, upstream_cost_usd, upstream_prompt_cost_usd, "
                                     "upstream_completion_cost_usd") == [
        (True, 0.0, "billed", 0.0003253, 9.78e-05, 0.0002275)]


def test_server_tool_use_is_read_under_both_names() -> None:
    newer = UsageInfo.from_openrouter({"prompt_tokens": 5, "server_tool_use_details": {"web_search_requests": 2}})
    documented = UsageInfo.from_openrouter({"prompt_tokens": 5, "server_tool_use": {"web_search_requests": 3}})
    assert (newer.web_search_requests, documented.web_search_requests) == (2, 3)


def test_missing_null_and_odd_parts_of_the_usage_object() -> None:
    bare = UsageInfo.from_openrouter({"prompt_tokens": 3, "completion_tokens": 4, "prompt_tokens_details": None,
                                      "completion_tokens_details": None, "cost_details": None,
                                      "cost": True, "is_byok": "yes"})
    assert (bare.prompt_tokens, bare.completion_tokens, bare.cache_write_tokens, bare.web_search_requests) == (3, 4, 0, 0)
    assert (bare.cost, bare.upstream_cost, bare.is_byok, bare.reported) == (None, None, False, True)
    assert UsageInfo.from_openrouter(None) == UsageInfo(reported=False)
    assert UsageInfo.from_openrouter({"cost": "NaN", "prompt_tokens": 1}).cost is None


# -- the budget's estimate against what the emulator bills ---------------------------------------

PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="


def agent_turn() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A second agent turn: a question with two images, the model's tool call and the tool's answer,
    and three tools offered (their JSON is billed as prompt)."""
    weather = function_tool("get_weather", {"type": "object", "properties": {
        "city": {"type": "string", "description": "the city, e.g. Lisbon, with its country when ambiguous"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]},
        "Current weather of a city, from the national service")
    search = function_tool("search_docs", {"type": "object", "properties": {
        "query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 50}}},
        "Full-text search over the team's documentation")
    fetch = function_tool("fetch_url", {"type": "object", "properties": {"url": {"type": "string"}}}, "Fetch a page")
    messages = [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": [{"type": "text", "text": "Compare these two charts and the weather"},
                                     {"type": "image_url", "image_url": {"url": PIXEL}},
                                     {"type": "image_url", "image_url": {"url": PIXEL}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": json.dumps({"city": "Lisbon, Portugal", "unit": "celsius"})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"temp": 21, "sky": "clear"})},
    ]
    return messages, [weather, search, fetch]


def test_the_reservation_covers_what_the_emulator_bills_for_agent_traffic(emulator: Any, catalog: Catalog,
                                                                          tmp_path: Path) -> None:
    """Tools' JSON and image parts are billed as prompt; the estimate counts them the same way, so
    the reservation (max_tokens caps the output) is never under the billed cost."""
    messages, tools = agent_turn()
    with OpenRouterClient(emu_settings(emulator, tmp_path)) as client:  # MODEL takes images and tools
        result = client.chat(messages, model=MODEL, tools=tools, tool_choice="none", max_tokens=40)
    bound = max_cost(catalog, MODEL, messages, tools=tools, max_tokens=40, default_max_tokens=4096)
    assert result.cost_source == "billed" and result.cost_usd is not None
    assert bound.prompt_tokens >= result.usage.prompt_tokens > 2 * IMAGE_TOKENS
    assert bound.max_usd >= result.cost_usd
    # counting the text alone, as the estimate did, reserves less than the prompt's bill
    text_only = max_cost(catalog, MODEL, [{"role": "user", "content": "Compare these two charts and the weather"}],
                         max_tokens=40, default_max_tokens=4096)
    assert text_only.prompt_usd < float(result.usage.upstream_prompt_cost or 0)


def test_the_prompt_estimate_counts_tools_images_and_tool_calls() -> None:
    from hive_core.budget.estimate import estimate_prompt_tokens

    messages, tools = agent_turn()
    plain, images = estimate_prompt_tokens(messages)
    with_tools, _ = estimate_prompt_tokens(messages, tools)
    tools_json = json.dumps(tools, separators=(",", ":"), ensure_ascii=False)
    assert images == 2 and with_tools - plain == -(-len(tools_json) // 4)
    arguments = messages[2]["tool_calls"][0]["function"]
    without_call = estimate_prompt_tokens([*messages[:2], {"role": "assistant", "content": None}, messages[3]])[0]
    assert plain - without_call == -(-(len(arguments["name"]) + len(arguments["arguments"])) // 4)
    assert estimate_prompt_tokens([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PIXEL}}]}]
                                  )[0] == IMAGE_TOKENS + 4


def test_usage_events_carry_the_whole_object_from_the_emulator(emulator: Any, tmp_path: Path) -> None:
    """Streamed and not, the emulator's usage objects land whole in the events."""
    settings = emu_settings(emulator, tmp_path)
    with EventLog(settings.data_dir) as log, OpenRouterClient(settings, sink=log) as client:
        whole = client.chat("hello", model=MODEL, max_tokens=20)
        streamed = client.stream("hello there", model=MODEL, max_tokens=20).collect()
    rows = events(settings.data_dir, "usage", "request_id, cost_usd, upstream_cost_usd, cache_write_tokens, is_byok")
    by_request = {r[0]: r[1:] for r in rows}
    for result in (whole, streamed):
        cost, upstream, cache_write, byok = by_request[result.request_id]
        assert cost == result.cost_usd and upstream == float(result.usage.upstream_cost or 0) and cache_write == 0
        assert byok is False
