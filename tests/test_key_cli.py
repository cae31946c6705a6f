"""``hive key``: status and usage of the key, never the key; a bad key says what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hive_cli.hive.key import key_status
from hive_core.errors import AuthError
from hive_core.openrouter import OpenRouterClient
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import emu_settings


def test_key(emulator: Any, tmp_path: Path) -> None:
    with OpenRouterClient(emu_settings(emulator, tmp_path)) as client:
        info = client.key_info()
    status = key_status(info, emulator.api_key)
    assert status["valid"] is True and "usage" in status
    assert emulator.api_key not in json.dumps(status)
    assert "label" not in key_status({"label": emulator.api_key}, emulator.api_key)


def test_key_cli(emulator: Any, tmp_path: Path) -> None:
    done = run_cli("hive", ["key", "--json"], hive_env(emulator, tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["valid"] is True
    assert emulator.api_key not in done.stdout + done.stderr


def test_bad_key(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(api_key="sk-or-v1-the-only-valid-key")
    with OpenRouterClient(emu_settings(emu, tmp_path, api_key="sk-or-v1-wrong-key")) as client, \
            pytest.raises(AuthError, match="OPENROUTER_API_KEY"):
        client.key_info()


def test_bad_key_cli(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(api_key="sk-or-v1-the-only-valid-key")
    done = run_cli("hive", ["key"], hive_env(emu, tmp_path / "data", key="sk-or-v1-wrong-key"))
    assert done.returncode == 1 and "OPENROUTER_API_KEY" in done.stderr and "wrong-key" not in done.stderr
    missing = run_cli("hive", ["key"], {**hive_env(emu, tmp_path / "data"), "OPENROUTER_API_KEY": ""})
    assert missing.returncode == 1 and "OPENROUTER_API_KEY" in missing.stderr
