"""Tracking: one api_call per attempt, usage and stream_outcome per request, one request_id,
written through a real EventLog and read back; no key in any event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hive_core.errors import RateLimited
from hive_core.openrouter import OpenRouterClient
from hive_core.openrouter.results import UsageInfo
from hive_core.openrouter.tracking import Tracker
from ingest.log import EventLog
from tests.plugins.emulator import MODEL, emu_settings, fast_policy, seed_failing_first
from tests.plugins.store import events


def test_record_emits_one_event_each_with_the_envelope(data_dir: Path) -> None:
    with EventLog(data_dir) as log:
        tracker = Tracker(log, app="svc", user="ana", tags=["team:search"])
        record = tracker.request("a/model", request_type="test", task_category="qa", fallback_index=1, streamed=True)
        record.attempt(1, latency_ms=12.5, error=RateLimited("slow"), http_status=429)
        record.attempt(2, latency_ms=30.0, http_status=200, ttft_ms=5.0, generation_id="gen-1",
                       served_model="a/model-v2", provider="P")
        record.usage(UsageInfo(prompt_tokens=3, completion_tokens=4), served_model="a/model-v2", generation_id="gen-1")
        record.outcome("completed", chunks=5, completion_tokens=4, ttft_ms=5.0, duration_ms=40.0,
                       tokens_per_s=100.0, finish_reason="stop")
    calls = events(data_dir, "api_call", "attempt, status, http_status, request_type, task_category, fallback_index, "
                                        "streamed, served_model, app, \"user\", tags, request_id")
    assert [c[:8] for c in calls] == [
        (1, "rate_limited", 429, "test", "qa", 1, True, None),
        (2, "ok", 200, "test", "qa", 1, True, "a/model-v2"),
    ]
    assert calls[0][8:11] == ("svc", "ana", ["team:search"])
    usage = events(data_dir, "usage", "model, cost_usd, cost_source, request_id")
    outcome = events(data_dir, "stream_outcome", "outcome, chunks, finish_reason, request_id")
    assert usage == [("a/model-v2", None, "unknown", record.request_id)]
    assert outcome == [("completed", 5, "stop", record.request_id)]
    assert {c[11] for c in calls} == {record.request_id}


def test_a_retried_stream_through_the_event_log(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(faults=["*:503:0.5"], seed=seed_failing_first("503"))
    settings = emu_settings(emu, tmp_path)
    with EventLog(settings.data_dir) as log, OpenRouterClient(settings, sink=log,
                                                              policy=fast_policy(settings)) as client:
        result = client.stream("hello", model=MODEL, max_tokens=15).collect()
    calls = events(settings.data_dir, "api_call",
                  "attempt, status, http_status, streamed, generation_id, request_id, max_tokens, schema_version")
    assert [c[:4] for c in calls] == [(1, "server_error", 503, True), (2, "ok", 200, True)]
    assert [c[6:] for c in calls] == [(15, 2), (15, 2)]  # every attempt records the request's cap
    assert calls[1][4] == result.generation_id and {c[5] for c in calls} == {result.request_id}
    assert events(settings.data_dir, "usage", "cost_source, generation_id") == [("billed", result.generation_id)]
    (row,) = events(settings.data_dir, "stream_outcome", "outcome, completion_tokens, ttft_ms, tokens_per_s")
    assert row[0] == "completed" and row[1] == result.usage.completion_tokens and row[2] > 0
    # the result's rate, null when the stream came in one read (nothing to time: issue 13 item 8)
    assert row[3] == result.tokens_per_s and (row[3] is None or row[3] > 0)
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            assert emu.api_key.encode() not in path.read_bytes()
