"""``hive models benchmark`` against the emulator: real async calls, recorded as benchmark requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest.log import EventLog
from jobs.benchmark import benchmark, format_table
from tests.test_ask import events, hive_env, run_cli
from tests.test_client import emu_settings

MODELS = ["openai/gpt-4o-mini", "anthropic/claude-3-haiku"]


def test_benchmark(emulator_factory: Any, data_dir: Path) -> None:
    emu = emulator_factory(faults=[{"model": MODELS[1], "kind": "500", "rate": 1.0}], seed=2)
    # A generous read timeout: a loaded test machine must not turn variant A's answers into failures.
    settings = emu_settings(emu, data_dir.parent, data_dir=data_dir, max_attempts=1, read_timeout_s=10)
    done: list[int] = []
    with EventLog(data_dir) as log:
        rows = benchmark(settings, MODELS, ["Say hi", "Count to 3"], requests=6, concurrency=3, sink=log,
                         max_tokens=16, on_done=lambda: done.append(1))
    assert len(done) == 12
    good, bad = rows
    assert (good["requests"], good["success_rate"], bad["success_rate"]) == (6, 1.0, 0.0)
    assert good["ttft_p50_ms"] <= good["latency_p50_ms"] and good["latency_p50_ms"] <= good["latency_p95_ms"]
    assert good["tokens_per_s"] and good["cost_per_request_usd"] and bad["errors"] == {"server_error": 6}
    assert {r[0] for r in events(data_dir, "api_call", "request_type")} == {"benchmark"}
    assert "anthropic/claude-3-haiku" in format_table(rows)


def test_benchmark_cli(emulator: Any, data_dir: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Say hi\nName a colour\n")
    env = hive_env(emulator, data_dir)
    out = run_cli("hive", ["models", "benchmark", "--models", ",".join(MODELS), "--prompts", str(prompts),
                           "--requests", "3", "--concurrency", "2", "--max-tokens", "8", "--json"], env)
    assert out.returncode == 0, out.stderr
    assert [r["model"] for r in json.loads(out.stdout)] == MODELS
    assert "benchmark" in out.stderr  # the progress bar label, on stderr
    text = run_cli("hive", ["models", "benchmark", "--models", MODELS[0], "--requests", "2"], env)
    assert text.returncode == 0 and "TTFT p50" in text.stdout
    both = run_cli("hive", ["models", "benchmark", "--models", MODELS[0], "--top", "2"], env)
    assert both.returncode == 2
