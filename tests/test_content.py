"""The opt-in content store: one line per request, private files, the settings' clock."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hive_core.store.content import ContentStore
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL


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


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_stored_text_is_private(data_dir: Path) -> None:
    """Prompts and answers are private: 0600 files in a 0700 folder, whatever the umask allows."""
    old = os.umask(0o022)
    try:
        path = ContentStore(data_dir).append("r1", "m", "my secret prompt", "answer")
    finally:
        os.umask(old)
    assert mode(path.parent) == 0o700 and mode(path) == 0o600


def test_files_an_older_hive_left_open_are_narrowed(data_dir: Path) -> None:
    root = data_dir / "content"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    clock = lambda: datetime(2028, 2, 29, 23, 59, tzinfo=UTC)  # noqa: E731
    old = root / "2028-02-29.jsonl"
    old.write_text('{"request_id": "r0"}\n')
    os.chmod(old, 0o644)
    path = ContentStore(data_dir, clock=clock).append("r1", "m", "p", "a")
    assert path == old and mode(root) == 0o700 and mode(path) == 0o600
    assert [json.loads(line)["request_id"] for line in path.read_text().splitlines()] == ["r0", "r1"]
    assert json.loads(path.read_text().splitlines()[1])["ts"] == "2028-02-29T23:59:00+00:00"  # the clock given
