"""Run the CLI's commands with a distinctive key; the key appears nowhere afterwards: not in any
file of the data directory, not in any output, not on the failure and Ctrl-C paths."""

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
        ("hive", ["ask", "Explain recursion", "--show-models", "--max-tokens", "20"]),
        ("hive", ["ask", "hi", "--primary-model", "fake-model", "--max-tokens", "20"]),
        ("hive", ["budget", "set", "--daily", "5", "--monthly", "50"]),
        ("hive", ["budget", "show", "--json"]),
        ("hive", ["ab", "create", "leak", "--model-a", MODEL, "--model-b", "openai/gpt-4o"]),
        ("hive", ["ask", "hi", "--experiment", "leak", "--max-tokens", "20"]),
        ("hive", ["models", "list", "--json"]),
        ("hive", ["models", "info", MODEL]),
        ("hive", ["models", "recommend", "--task", "chat", "--json"]),
        ("hive", ["models", "benchmark", "--models", MODEL, "--requests", "2"]),
        ("hive-jobs", ["rollup", "--daily"]),
        ("hive-jobs", ["alerts"]),
        ("hive", ["analytics", "cost", "--period", "7d", "--json"]),
        ("hive", ["analytics", "suggest"]),
        ("hive", ["models", "performance", "--json"]),
        ("hive-jobs", ["report", "--period", "day", "--format", "html", "--out", str(tmp_path / "reports")]),
        ("hive-jobs", ["sql", "select * from api_calls", "--format", "csv"]),
        ("hive-jobs", ["verify"]),
    ]
    for tool, args in commands:
        done = run_cli(tool, args, env)
        outputs += [done.stdout, done.stderr]
    # failures print their errors: a wrong key, an unreachable server, a bad model
    outputs += [run_cli("hive", ["key"], {**env, "OPENROUTER_API_KEY": KEY + "x"}).stderr]
    outputs += [run_cli("hive", ["ask", "hi", "--max-tokens", "20"], {**env, "OPENROUTER_API_KEY": KEY + "x"}).stderr]
    outputs += [run_cli("hive", ["ask", "hi", "--model", "no/such-model"], env).stderr]
    down = {**env, "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1", "HIVE_CONNECT_TIMEOUT": "0.2"}
    outputs += [run_cli("hive", ["ask", "hi", "--model", MODEL, "--no-fallback"], down).stderr]
    slow = emulator_factory(api_key=KEY, latency_scale=0.3)
    proc = subprocess.Popen([str(BIN / "hive"), "ask", "story", "--model", MODEL, "--max-tokens", "2000"],
                            env=hive_env(slow, data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.read(1)  # streaming has started: the cancel path is what runs next
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    outputs += [first + out, err]
    assert any("error" in text for text in outputs)  # the failure paths really ran
    assert [text for text in outputs if KEY in text] == []
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    assert [p for p in files if KEY.encode() in p.read_bytes()] == []
