from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hive_core.content import ContentStore
from tests.test_ask import hive_env, run_cli
from tests.test_client import MODEL


def test_content_store_appends_one_line_per_request(data_dir: Path) -> None:
    store = ContentStore(data_dir)
    path = store.append("r1", "m", "prompt one", "answer one")
    store.append("r2", "m", "prompt two", "answer two")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["request_id"], r["prompt"], r["response"]) for r in rows] == [
        ("r1", "prompt one", "answer one"), ("r2", "prompt two", "answer two")]


def test_prompt_text_is_kept_only_when_the_user_opts_in(emulator: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_cli("hive", ["ask", "a very particular prompt", "--model", MODEL, "--max-tokens", "8"], hive_env(emulator, data))
    assert done.returncode == 0, done.stderr
    assert not (data / "content").exists()
    assert not any(b"very particular" in p.read_bytes() for p in data.rglob("*") if p.is_file())
    env = {**hive_env(emulator, data), "HIVE_STORE_CONTENT": "true"}
    done = run_cli("hive", ["ask", "a very particular prompt", "--model", MODEL, "--max-tokens", "8"], env)
    assert done.returncode == 0, done.stderr
    (path,) = (data / "content").glob("*.jsonl")
    assert json.loads(path.read_text())["prompt"] == "a very particular prompt"
