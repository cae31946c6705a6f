"""Run every command this client owns with a distinctive key; the key appears nowhere afterwards."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.test_ask import BIN, hive_env, run_cli
from tests.test_client import MODEL

KEY = "sk-or-v1-LEAKCANARY0123456789abcdefLEAKCANARY"


def test_no_command_leaks_the_key(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(api_key=KEY, faults=["*:429:0.3", "*:midstream-error:0.2"], seed=3)
    data = tmp_path / "data"
    env = hive_env(emu, data)
    outputs: list[str] = []
    commands = [
        ("hive", ["models", "sync"]),
        ("hive", ["key"]),
        ("hive", ["key", "--json"]),
        ("hive", ["ask", "hi", "--model", MODEL, "--max-tokens", "20"]),
        ("hive", ["ask", "hi", "--model", MODEL, "--no-stream", "--json"]),
        ("hive", ["ask", "hi", "--model", MODEL, "--fallback", "openai/gpt-4o", "--max-tokens", "20"]),
        ("hive", ["models", "test", MODEL]),
        ("hive", ["models", "test", MODEL, "--json", "--no-stream"]),
        ("hive-jobs", ["reconcile"]),
    ]
    for tool, args in commands:
        done = run_cli(tool, args, env)
        outputs += [done.stdout, done.stderr]
    # failures print their errors: a wrong key, an unreachable server, a bad model
    outputs += [run_cli("hive", ["key"], {**env, "OPENROUTER_API_KEY": KEY + "x"}).stderr]
    outputs += [run_cli("hive", ["ask", "hi", "--model", "no/such-model"], env).stderr]
    down = {**env, "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1", "HIVE_CONNECT_TIMEOUT": "0.2"}
    outputs += [run_cli("hive", ["ask", "hi", "--model", MODEL, "--no-fallback"], down).stderr]
    proc = subprocess.Popen([str(BIN / "hive"), "ask", "story", "--model", MODEL, "--max-tokens", "500"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGINT)
    outputs += list(proc.communicate(timeout=30))
    assert any("error" in text for text in outputs)  # the failure paths really ran
    assert [text for text in outputs if KEY in text] == []
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    assert [p for p in files if KEY.encode() in p.read_bytes()] == []
