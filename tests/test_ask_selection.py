"""``hive ask`` without --model: the selector's choice, --show-models, --primary-model, the circuit breaker.

The original acceptance commands, run as real processes against the emulator serving the real catalog.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hive_core.selection.health import CircuitBreaker
from hive_core.store.datadir import DataDir
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.store import events


def _synced(emu: Any, data: Path) -> dict[str, str]:
    env = hive_env(emu, data)
    done = run_cli("hive", ["models", "sync"], env)
    assert done.returncode == 0, done.stderr
    return env


def test_acceptance_commands(emulator: Any, tmp_path: Path) -> None:
    env = _synced(emulator, tmp_path / "data")
    listed = run_cli("hive", ["models", "list", "--json"], env)
    assert len(json.loads(listed.stdout)) >= 300
    simple = run_cli("hive", ["ask", "Simple question", "--show-models", "--max-tokens", "20"], env)
    assert simple.returncode == 0, simple.stderr
    assert "(economy)" in simple.stderr.splitlines()[0], simple.stderr
    hard = run_cli("hive", ["ask", "Complex analysis task", "--show-models", "--max-tokens", "20"], env)
    assert hard.returncode == 0, hard.stderr
    assert any(t in hard.stderr.splitlines()[0] for t in ("(flagship)", "(premium)")), hard.stderr
    # a typo is refused before anything is sent (it would otherwise become a "model" in every table)
    fake = run_cli("hive", ["ask", "test", "--primary-model", "fake-model", "--max-tokens", "20"], env)
    assert fake.returncode == 2 and not fake.stdout.strip(), fake.stderr
    assert "fake-model" in fake.stderr and len(fake.stderr.strip().splitlines()) == 1, fake.stderr
    rec = run_cli("hive", ["models", "recommend", "--task", "code-analysis", "--json"], env)
    assert rec.returncode == 0 and json.loads(rec.stdout)["primary"]


def test_selection_is_recorded_with_the_request(emulator: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _synced(emulator, data)
    done = run_cli("hive", ["ask", "Write a haiku about rain", "--task", "creative", "--json", "--max-tokens", "30"], env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    (selection,) = events(data, "selection", "request_id, model, strategy, task_category")
    calls = events(data, "api_call", "request_id, model, task_category")
    assert selection[0] == doc["request_id"] == calls[-1][0]
    assert selection[1] == doc["model"] == doc["selection"]["primary"] and selection[3] == "creative"
    assert calls[-1][2] == "creative"


def test_ask_walks_the_chain_and_opens_the_circuit(emulator_factory: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    emu = emulator_factory()
    env = _synced(emu, data)
    first = json.loads(run_cli("hive", ["models", "recommend", "--prompt", "hello there", "--json"], env).stdout)
    primary = first["primary"]
    emu.set_faults([f"{primary}:503:1"])
    for _ in range(5):  # the breaker opens after 5 consecutive failed requests
        done = run_cli("hive", ["ask", "hello there", "--max-tokens", "10", "--json"], env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["fallback_index"] >= 1 and f"{primary} failed" in done.stderr
    assert CircuitBreaker(DataDir(data)).state(primary) == "open"
    again = json.loads(run_cli("hive", ["ask", "hello there", "--max-tokens", "10", "--json"], env).stdout)
    assert again["selection"]["primary"] != primary and again["fallback_index"] == 0
