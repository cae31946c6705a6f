"""Opt-in storage of prompt and response text (``HIVE_STORE_CONTENT=true``), apart from the events.

Events never carry text. When a user opts in, ``hive ask`` appends one JSON line per request to
``<data>/content/YYYY-MM-DD.jsonl`` (UTC date), keyed by ``request_id`` so it joins the events.
Deleting that directory removes every stored text and nothing else.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["ContentStore"]


class ContentStore:
    """Appends prompt/response pairs; safe across processes (one locked append per line)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "content"

    def append(self, request_id: str, model: str, prompt: str, response: str) -> Path:
        now = datetime.now(UTC)
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{now.date().isoformat()}.jsonl"
        line = json.dumps({"request_id": request_id, "ts": now.isoformat(), "model": model,
                           "prompt": prompt, "response": response}, ensure_ascii=False) + "\n"
        with open(path, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return path
