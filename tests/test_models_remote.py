"""``hive models sync`` and ``hive models test`` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hive_core.catalog.catalog import load_catalog
from hive_core.openrouter import OpenRouterClient
from hive_core.store.atomic import write_json_atomic
from hive_core.store.datadir import DataDir
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL, emu_settings
from tests.plugins.store import events, ledger_spend


def test_sync(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    settings = emu_settings(emulator, tmp_path)
    with OpenRouterClient(settings) as client:
        document = client.models_document()
    catalog_file = settings.datadir.catalog_file
    write_json_atomic(catalog_file, document)
    served = json.loads(catalog_path.read_bytes())
    assert json.loads(catalog_file.read_bytes()) == document
    assert len(document["data"]) == len(served["data"])
    assert [p.name for p in catalog_file.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_sync_cli(emulator: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_cli("hive", ["models", "sync"], hive_env(emulator, data))
    assert done.returncode == 0, done.stderr
    catalog = load_catalog(DataDir(data).catalog_file)
    assert MODEL in catalog and "synced" in done.stdout


def test_test_cli_records_request_type_test(emulator: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_cli("hive", ["models", "test", MODEL, "--json"], hive_env(emulator, data))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ttft_ms"] > 0 and doc["completion_tokens"] > 0 and doc["cost_source"] == "billed"
    assert events(data, "api_call", "request_type, status") == [("test", "ok")]
    assert events(data, "usage", "request_type") == [("test",)]
    plain = run_cli("hive", ["models", "test", MODEL], hive_env(emulator, data))
    assert plain.returncode == 0 and MODEL in plain.stdout and "TTFT" in plain.stdout


def test_budget_refuses_models_test(emulator: Any, tmp_path: Path) -> None:
    """``hive models test`` sends a billed request: a budget that does not fit it refuses it (one line,
    exit 1, nothing sent), and one that does counts its spend. It used to open a client with no
    budget, so its spend bypassed the limits."""
    data = tmp_path / "data"
    env = hive_env(emulator, data)
    assert run_cli("hive", ["models", "sync"], env).returncode == 0
    assert run_cli("hive", ["budget", "set", "--daily", "0.000001"], env).returncode == 0
    done = run_cli("hive", ["models", "test", MODEL], env)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: daily budget of global exceeded"), done.stderr
    assert events(data, "api_call", "status") == []
    assert run_cli("hive", ["budget", "set", "--daily", "100"], env).returncode == 0
    allowed = run_cli("hive", ["models", "test", MODEL, "--json"], env)
    assert allowed.returncode == 0, allowed.stderr
    ((cost,),) = events(data, "usage", "cost_usd")
    assert ledger_spend(data) == pytest.approx(cost, abs=1e-12) and cost > 0  # its spend counts
