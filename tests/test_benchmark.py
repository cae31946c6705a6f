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


def test_benchmark_reserves_budget_and_stops_when_it_runs_out(emulator_factory: Any, data_dir: Path) -> None:
    """Benchmark requests cost money like any other: each reserves first, a refusal stops the run."""
    import pytest

    from hive_core.budget import Budget, BudgetConfig, Limit, save_budget_config
    from hive_core.catalog import load_catalog
    from hive_core.errors import BudgetExceeded
    from tests.plugins.env import shared_path

    emu = emulator_factory()
    settings = emu_settings(emu, data_dir.parent, data_dir=data_dir, max_attempts=1, read_timeout_s=10)
    settings.catalog_path.parent.mkdir(parents=True)
    settings.catalog_path.write_bytes(shared_path("models-2026-06.json").read_bytes())
    prices = load_catalog(settings.catalog_path)
    # about three requests' maximum cost of gpt-4o-mini at 16 output tokens
    save_budget_config(settings.config_path, BudgetConfig(limits={"global": Limit(scope="global", daily_usd=0.00003)}))
    with EventLog(data_dir) as log, Budget(data_dir, prices=prices, sink=log) as budget, \
            pytest.raises(BudgetExceeded):
        benchmark(settings, MODELS[:1], ["Say hi"], requests=20, concurrency=1, sink=budget.settling_sink(log),
                  max_tokens=16, prices=prices, budget=budget)
    sent = events(data_dir, "usage", "cost_usd")
    assert 1 <= len(sent) < 20 and sum(c for (c,) in sent) <= 0.00003
