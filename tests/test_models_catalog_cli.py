"""``hive models list/info/recommend`` in-process (and as a real process), as a user sees them.

Test names match the library tests they mirror (test_catalog.py, test_selector.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hive_core.selection.health import CircuitBreaker
from hive_core.store.datadir import DataDir
from tests.cases import ranking_row, write_rankings
from tests.plugins.cli import run_cli, run_hive
from tests.test_catalog_fetch import closed_url


@pytest.fixture
def synced(data_dir: Path, catalog_path: Path) -> Path:
    """A data directory holding the real catalog where ``hive models sync`` puts it."""
    target = DataDir(data_dir).catalog_file
    target.parent.mkdir(parents=True)
    shutil.copy(catalog_path, target)
    return data_dir


def hive(data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``hive --data-dir DATA_DIR ARGS`` in-process: (exit status, stdout, stderr)."""
    return run_hive(["--data-dir", str(data_dir), *args], capsys)


def hive_json(data_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = hive(data_dir, capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def hive_process(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``hive --data-dir DATA_DIR ARGS`` as a real process (the test's clean environment)."""
    return run_cli("hive", ["--data-dir", str(data_dir), *args], dict(os.environ))


def test_parse_real_snapshot(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = hive(synced, capsys, "models", "list")
    assert code == 0 and out.strip().endswith("339 models")
    assert "openai/gpt-4o " in out
    rows = hive_json(synced, capsys, "models", "list")
    assert len(rows) == 339
    gpt4o = next(r for r in rows if r["id"] == "openai/gpt-4o")
    assert gpt4o["prices"]["prompt"] == "0.0000025" and gpt4o["prices"]["prompt_per_1m"] == "2.5"
    assert {"id", "name", "context_length", "prices", "tier", "capabilities"} <= gpt4o.keys()
    assert all("E" not in value for r in rows for value in r["prices"].values() if isinstance(value, str))
    assert gpt4o["specialty"] is None and gpt4o["output_modalities"] == ["text"]
    audio = next(r for r in rows if r["id"] == "openai/gpt-audio-mini")
    assert audio["specialty"] == "media-output" and audio["output_modalities"] == ["text", "audio"]
    code, out, _ = hive(synced, capsys, "models", "info", "openai/gpt-audio-mini")
    assert code == 0 and "specialty:     media-output (chosen implicitly only when a request asks for it)" in out


def test_list_models_filters(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = hive_json(synced, capsys, "models", "list", "--tier", "Flagship", "--capability", "tools",
                     "--provider", "anthropic")
    assert rows and all(r["tier"] == "flagship" and "tools" in r["capabilities"] and r["provider"] == "anthropic"
                        for r in rows)


def test_load_catalog_missing_says_sync(data_dir: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """No catalog and no network (a closed local port: nothing reaches the internet): the fetch on
    first use fails and one line says what to do (tests/test_catalog_fetch.py has the rest)."""
    monkeypatch.setenv("OPENROUTER_BASE_URL", closed_url())
    code, _, err = hive(data_dir, capsys, "models", "list")
    assert code == 1 and err.startswith("error: no model catalog") and "hive models sync" in err
    out = hive_process(data_dir, "models", "list")
    assert out.returncode == 1 and "hive models sync" in out.stderr and "Traceback" not in out.stderr


def test_unknown_model_suggests_close_ids(synced: Path) -> None:
    out = hive_process(synced, "models", "info", "openai/gpt-4oo")
    assert out.returncode == 1 and "openai/gpt-4o" in out.stderr and out.stderr.count("\n") == 1


def test_model_info(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_rankings(synced, [ranking_row("openai/gpt-4o", samples=120, successes=114),
                            ranking_row("openai/gpt-4o", task="chat", samples=60)])
    code, out, _ = hive(synced, capsys, "models", "info", "openai/gpt-4o")
    assert code == 0
    assert "tier:" in out and "2.5 in, 10 out" in out and "120 calls" in out and "success 95.0%" in out
    info = hive_json(synced, capsys, "models", "info", "openai/gpt-4o")
    assert info["measured"]["*"]["samples"] == 120 and info["measured"]["chat"]["samples"] == 60
    _, router, _ = hive(synced, capsys, "models", "info", "openrouter/auto")
    assert "router" in router and "variable" in router


def test_simple_question_picks_an_economical_model(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = hive_json(synced, capsys, "models", "recommend", "--prompt", "Simple question")
    assert result["tier"] in ("economy", "standard") and result["complexity"] == "simple"


def test_complex_analysis_task_picks_a_high_capability_model(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = hive_json(synced, capsys, "models", "recommend", "--prompt", "Complex analysis task")
    assert result["tier"] in ("premium", "flagship")


def test_recommend_code_analysis(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = hive(synced, capsys, "models", "recommend", "--task", "code-analysis")
    assert code == 0 and "primary:" in out and "fallbacks:" in out
    data = hive_json(synced, capsys, "models", "recommend", "--task", "code-analysis")
    assert {"primary", "fallbacks", "tier", "estimated_cost_usd", "reason", "scores"} <= data.keys()
    assert len(data["fallbacks"]) == 3 and data["primary"] in data["scores"]
    assert isinstance(data["estimated_cost_usd"], float)


def test_max_cost_is_per_1k_tokens_of_per_token_prices(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = hive_json(synced, capsys, "models", "recommend", "--task", "chat", "--allow", "openai/gpt-4o",
                   "--max-cost", "0.0125")
    assert ok["primary"] == "openai/gpt-4o"
    code, _, err = hive(synced, capsys, "models", "recommend", "--task", "chat", "--allow", "openai/gpt-4o",
                        "--max-cost", "0.0124")
    assert code == 1 and "max-cost" in err and err.count("\n") == 1


def test_no_candidates_names_the_constraint(synced: Path) -> None:
    out = hive_process(synced, "models", "recommend", "--task", "chat", "--allow", "openai/gpt-4o",
                       "--capability", "audio")
    assert out.returncode == 1 and "capabilities audio" in out.stderr


def test_recommend_usage_errors(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["models", "recommend"], ["models", "recommend", "--task", "chat", "--max-cost", "cheap"]):
        code, out, err = hive(synced, capsys, *args)
        assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1


def test_a_model_with_an_open_circuit_is_skipped(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = hive_json(synced, capsys, "models", "recommend", "--task", "code-analysis")
    breaker = CircuitBreaker(DataDir(synced), failure_threshold=1)
    breaker.record_failure(before["primary"])
    after = hive_json(synced, capsys, "models", "recommend", "--task", "code-analysis")
    assert before["primary"] not in [after["primary"], *after["fallbacks"]]


def test_a_model_failing_half_its_calls_is_demoted(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = hive_json(synced, capsys, "models", "recommend", "--task", "code-analysis")
    chain = [before["primary"], *before["fallbacks"]]
    rows = [ranking_row(m, samples=400) for m in chain]
    rows[0] = ranking_row(before["primary"], samples=400, successes=200)
    write_rankings(synced, rows)
    after = hive_json(synced, capsys, "models", "recommend", "--task", "code-analysis")
    assert after["primary"] != before["primary"]


def test_allow_free(synced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = hive_json(synced, capsys, "models", "recommend", "--prompt", "hello", "--strategy", "cost-optimized",
                       "--allow-free")
    assert result["estimated_cost_usd"] == 0.0
