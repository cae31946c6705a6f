"""Opt-in storage of prompt and response text (``HIVE_STORE_CONTENT=true``), apart from the events.

Events never carry text. When a user opts in, ``hive ask`` appends one JSON line per request to
``<data>/content/YYYY-MM-DD.jsonl`` (``DataDir.content_day``; the UTC date on the settings' clock), keyed by ``request_id`` so it
joins the events. Deleting that directory removes every stored text and nothing else.

The text is private: the directory is ``0700`` and each file ``0600`` from the moment it is
created (not ``0644`` in a ``0755`` directory, readable by every user of the machine). A folder or
file left wider by an older Hive is narrowed on the next append.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from hive_core.clock import Clock, system_clock
from hive_core.store.datadir import DataDir
from hive_core.store.lock import file_lock

__all__ = ["ContentStore"]

DIR_MODE, FILE_MODE = 0o700, 0o600


class ContentStore:
    """Appends prompt/response pairs; safe across processes (one locked append per line)."""

    def __init__(self, data_dir: Path, *, clock: Clock = system_clock) -> None:
        self.datadir = DataDir(Path(data_dir))
        self.clock = clock

    def append(self, request_id: str, model: str, prompt: str, response: str) -> Path:
        """Append one request's text to today's file; returns the file."""
        now = self.clock()
        folder = self.datadir.content
        folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if stat.S_IMODE(folder.stat().st_mode) != DIR_MODE:
            os.chmod(folder, DIR_MODE)
        path = self.datadir.content_day(now.date())
        line = json.dumps({"request_id": request_id, "ts": now.isoformat(), "model": model,
                           "prompt": prompt, "response": response}, ensure_ascii=False) + "\n"
        # Created 0600 here, before file_lock opens it (which would create it 0644).
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        with open(fd, "a", encoding="utf-8") as handle, file_lock(path):
            if stat.S_IMODE(os.fstat(fd).st_mode) & ~FILE_MODE:
                os.fchmod(fd, FILE_MODE)  # a file an older Hive created 0644
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return path
