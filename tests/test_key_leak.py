"""Run the CLI's commands with a distinctive key; the key appears nowhere afterwards: not in any
file of the data directory, not in any output, not on the failure and Ctrl-C paths - nor when the
key itself is malformed (a line break, a control character), nor in an HTTP library's error."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from hive_core.openrouter.errors import translate_transport_error
from tests.plugins.cli import BIN, hive_env, run_cli
from tests.plugins.emulator import MODEL

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
    wrong = {**env, "OPENROUTER_BASE_URL": emu.base_url.replace("/api/v1", "/wrong/v1")}
    outputs += [run_cli("hive", ["ask", "hi", "--model", MODEL, "--fallback", "openai/gpt-4o"], wrong).stderr]
    stored = run_cli("hive", ["ask", "hi", "--model", MODEL, "--max-tokens", "8"], {**env, "HIVE_STORE_CONTENT": "1"})
    outputs += [stored.stdout, stored.stderr]
    slow = emulator_factory(api_key=KEY, latency_scale=0.3)
    proc = subprocess.Popen([str(BIN / "hive"), "ask", "story", "--model", MODEL, "--max-tokens", "2000"],
                            env=hive_env(slow, data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.read(1)  # streaming has started: the cancel path is what runs next
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    outputs += [first + out, err]
    assert any("error" in text for text in outputs)  # the failure paths really ran
    assert [text for text in outputs if any(p in text for p in pieces(KEY))] == []  # nor any 12-character piece
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.suffix == ".jsonl" for p in files)
    assert any(p.parent.name == "cache" for p in files)  # the parse caches, too
    assert [p for p in files if any(piece.encode() in p.read_bytes() for piece in pieces(KEY))] == []


BAD_KEYS = {"newline": KEY[:24] + "\n" + KEY[24:], "control": KEY[:24] + "\x01" + KEY[24:],
            "space": KEY[:24] + " " + KEY[24:], "non-ascii": KEY[:24] + "\u00e9" + KEY[24:]}


def pieces(key: str, width: int = 12) -> set[str]:
    """Every run of ``width`` characters of the key (apart from the sk-or-v1- prefix all keys share)."""
    return {key[i:i + width] for i in range(len("sk-or-v1-"), len(key) - width + 1)}


@pytest.mark.parametrize("name", list(BAD_KEYS))
def test_a_malformed_key_is_refused_and_never_echoed(emulator_factory: Any, tmp_path: Path, name: str) -> None:
    """A pasted line break or control character in the key once reached httpx, whose error printed
    ``Illegal header value b'Bearer sk-or-v1-...\\nabc'``. Now settings refuse it, naming neither
    the key nor any piece of it, on every command that sends and on the ones that do not."""
    emu = emulator_factory(api_key=KEY)
    env = {**hive_env(emu, tmp_path / "data"), "OPENROUTER_API_KEY": BAD_KEYS[name]}
    for tool, args in [("hive", ["ask", "hi", "--model", MODEL, "--max-tokens", "8"]), ("hive", ["key"]),
                       ("hive", ["models", "sync"]), ("hive", ["models", "test", MODEL]), ("hive-jobs", ["reconcile"])]:
        done = run_cli(tool, args, env)
        assert done.returncode != 0, (args, done.stdout, done.stderr)
        assert "OPENROUTER_API_KEY" in done.stderr and "Traceback" not in done.stderr, done.stderr
        leaked = [p for p in pieces(KEY) | pieces(BAD_KEYS[name]) if p in done.stdout + done.stderr]
        assert leaked == [], (args, done.stderr)


def test_a_header_error_from_httpx_is_scrubbed(emulator: Any) -> None:
    """The last guard, if a bad key ever reached the HTTP library again: its own error message
    (the header as a bytes repr, the newline escaped) is scrubbed of every piece of the key."""
    bad = BAD_KEYS["newline"]
    with httpx.Client() as client, pytest.raises(httpx.HTTPError) as info:
        client.get(f"{emulator.base_url}/key", headers={"Authorization": f"Bearer {bad}"})
    assert KEY[24:40] in str(info.value)  # what httpx says, unscrubbed
    error = translate_transport_error(info.value, secret=bad)
    assert [p for p in pieces(KEY) if p in str(error)] == [] and "(redacted)" in str(error)
