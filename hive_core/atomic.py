"""Whole-file writes that a crash cannot tear: temporary file beside the target, fsync, rename.

Every small state or config file Hive writes (budgets, experiments, circuit state, rollup state,
job state, reports, caches) goes through :func:`write_bytes_atomic`; the Parquet event files use
the same steps in ``ingest.files``. Readers see the old file or the new one, never a mix, and a
failed write leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["fsync_dir", "write_bytes_atomic", "write_json_atomic"]


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (creating its directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per process and thread: concurrent writers never share a temporary file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident():x}.tmp")
    try:
        with open(tmp, "wb") as sink:
            sink.write(data)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, document: Any, *, indent: int | None = 2, sort_keys: bool = True) -> None:
    """:func:`write_bytes_atomic` of ``document`` as JSON with a final newline."""
    text = json.dumps(document, indent=indent, sort_keys=sort_keys, default=str) + "\n"
    write_bytes_atomic(path, text.encode())
