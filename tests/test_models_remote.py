"""``hive models sync`` and ``hive models test`` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hive_core.catalog.catalog import load_catalog
from hive_core.openrouter import OpenRouterClient
from hive_core.store.atomic import write_json_atomic
from tests.test_ask import events, hive_env, run_cli
from tests.test_client import MODEL, emu_settings


def test_sync(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    settings = emu_settings(emulator, tmp_path)
    with OpenRouterClient(settings) as client:
        document = client.models_document()
    write_json_atomic(settings.catalog_path, document)
    served = json.loads(catalog_path.read_bytes())
    assert json.loads(settings.catalog_path.read_bytes()) == document
    assert len(document["data"]) == len(served["data"])
    assert [p.name for p in settings.catalog_path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_sync_cli(emulator: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_cli("hive", ["models", "sync"], hive_env(emulator, data))
    assert done.returncode == 0, done.stderr
    catalog = load_catalog(data / "catalog" / "models.json")
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
