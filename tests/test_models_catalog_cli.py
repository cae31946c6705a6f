"""``hive models list/info/recommend`` through click's CliRunner (and one real process).

Test names match the library tests they mirror (test_catalog.py, test_selector.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from hive_cli.hive import cli
from hive_core.errors import CatalogMissing
from hive_core.selection.health import CircuitBreaker
from hive_core.settings import Settings
from tests.test_rankings import ranking_row, write_rankings

HIVE = str(Path(sys.executable).parent / "hive")


@pytest.fixture
def synced(data_dir: Path, catalog_path: Path) -> Path:
    """A data directory holding the real catalog where ``hive models sync`` puts it."""
    target = Settings(data_dir=data_dir).catalog_path
    target.parent.mkdir(parents=True)
    shutil.copy(catalog_path, target)
    return data_dir


def hive(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)


def hive_json(data_dir: Path, *args: str) -> Any:
    result = hive(data_dir, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_parse_real_snapshot(synced: Path) -> None:
    result = hive(synced, "models", "list")
    assert result.exit_code == 0 and result.output.strip().endswith("339 models")
    assert "openai/gpt-4o " in result.output
    rows = hive_json(synced, "models", "list")
    assert len(rows) == 339
    gpt4o = next(r for r in rows if r["id"] == "openai/gpt-4o")
    assert gpt4o["prices"]["prompt"] == "0.0000025" and gpt4o["prices"]["prompt_per_1m"] == "2.5"
    assert {"id", "name", "context_length", "prices", "tier", "capabilities"} <= gpt4o.keys()
    assert all("E" not in value for r in rows for value in r["prices"].values() if isinstance(value, str))


def test_list_models_filters(synced: Path) -> None:
    rows = hive_json(synced, "models", "list", "--tier", "Flagship", "--capability", "tools",
                     "--provider", "anthropic")
    assert rows and all(r["tier"] == "flagship" and "tools" in r["capabilities"] and r["provider"] == "anthropic"
                        for r in rows)


def test_load_catalog_missing_says_sync(data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "models", "list"])
    assert isinstance(result.exception, CatalogMissing)
    out = subprocess.run([HIVE, "--data-dir", str(data_dir), "models", "list"], capture_output=True, text=True)
    assert out.returncode == 1 and "hive models sync" in out.stderr and "Traceback" not in out.stderr


def test_unknown_model_suggests_close_ids(synced: Path) -> None:
    out = subprocess.run([HIVE, "--data-dir", str(synced), "models", "info",
                          "openai/gpt-4oo"], capture_output=True, text=True)
    assert out.returncode == 1 and "openai/gpt-4o" in out.stderr and out.stderr.count("\n") == 1


def test_model_info(synced: Path) -> None:
    write_rankings(synced, [ranking_row("openai/gpt-4o", samples=120, successes=114),
                            ranking_row("openai/gpt-4o", task="chat", samples=60)])
    result = hive(synced, "models", "info", "openai/gpt-4o")
    assert result.exit_code == 0
    assert "tier:" in result.output and "2.5 in, 10 out" in result.output and "120 calls" in result.output
    info = hive_json(synced, "models", "info", "openai/gpt-4o")
    assert info["measured"]["*"]["samples"] == 120 and info["measured"]["chat"]["samples"] == 60
    router = hive(synced, "models", "info", "openrouter/auto")
    assert "router" in router.output and "variable" in router.output


def test_simple_question_picks_an_economical_model(synced: Path) -> None:
    result = hive_json(synced, "models", "recommend", "--prompt", "Simple question")
    assert result["tier"] in ("economy", "standard") and result["complexity"] == "simple"


def test_complex_analysis_task_picks_a_high_capability_model(synced: Path) -> None:
    result = hive_json(synced, "models", "recommend", "--prompt", "Complex analysis task")
    assert result["tier"] in ("premium", "flagship")


def test_recommend_code_analysis(synced: Path) -> None:
    result = hive(synced, "models", "recommend", "--task", "code-analysis")
    assert result.exit_code == 0 and "primary:" in result.output and "fallbacks:" in result.output
    data = hive_json(synced, "models", "recommend", "--task", "code-analysis")
    assert {"primary", "fallbacks", "tier", "estimated_cost_usd", "reason", "scores"} <= data.keys()
    assert len(data["fallbacks"]) == 3 and data["primary"] in data["scores"]
    assert isinstance(data["estimated_cost_usd"], float)


def test_max_cost_is_per_1k_tokens_of_per_token_prices(synced: Path) -> None:
    ok = hive_json(synced, "models", "recommend", "--task", "chat", "--allow", "openai/gpt-4o", "--max-cost", "0.0125")
    assert ok["primary"] == "openai/gpt-4o"
    result = CliRunner().invoke(cli, ["--data-dir", str(synced), "models", "recommend", "--task", "chat",
                                      "--allow", "openai/gpt-4o", "--max-cost", "0.0124"])
    assert result.exit_code != 0 and "max-cost" in str(result.exception)


def test_no_candidates_names_the_constraint(synced: Path) -> None:
    out = subprocess.run([HIVE, "--data-dir", str(synced), "models",
                          "recommend", "--task", "chat", "--allow", "openai/gpt-4o", "--capability", "audio"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "capabilities audio" in out.stderr


def test_recommend_usage_errors(synced: Path) -> None:
    assert hive(synced, "models", "recommend").exit_code == 2
    assert CliRunner().invoke(cli, ["--data-dir", str(synced), "models", "recommend", "--task", "chat",
                                    "--max-cost", "cheap"]).exit_code == 2


def test_a_model_with_an_open_circuit_is_skipped(synced: Path) -> None:
    before = hive_json(synced, "models", "recommend", "--task", "code-analysis")
    breaker = CircuitBreaker(Settings(data_dir=synced).state_dir, failure_threshold=1)
    breaker.record_failure(before["primary"])
    after = hive_json(synced, "models", "recommend", "--task", "code-analysis")
    assert before["primary"] not in [after["primary"], *after["fallbacks"]]


def test_a_model_failing_half_its_calls_is_demoted(synced: Path) -> None:
    before = hive_json(synced, "models", "recommend", "--task", "code-analysis")
    chain = [before["primary"], *before["fallbacks"]]
    rows = [ranking_row(m, samples=400) for m in chain]
    rows[0] = ranking_row(before["primary"], samples=400, successes=200)
    write_rankings(synced, rows)
    after = hive_json(synced, "models", "recommend", "--task", "code-analysis")
    assert after["primary"] != before["primary"]


def test_allow_free(synced: Path) -> None:
    result = hive_json(synced, "models", "recommend", "--prompt", "hello", "--strategy", "cost-optimized",
                       "--allow-free")
    assert result["estimated_cost_usd"] == 0.0
