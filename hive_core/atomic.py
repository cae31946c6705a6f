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
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_file", "fsync_dir", "write_bytes_atomic", "write_json_atomic"]


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, *, overwrite: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write that appears at ``path`` complete, or not at all.

    The caller writes into the yielded temporary file (same directory); on a clean exit it is
    fsynced and renamed over ``path``, and the rename made durable. On any exception the temporary
    file is removed and ``path`` is untouched. Without ``overwrite`` an existing ``path`` is an error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per process and thread: concurrent writers never share a temporary file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident():x}.tmp")
    try:
        with open(tmp, "wb") as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        if not overwrite and path.exists():
            raise FileExistsError(f"refusing to replace {path}")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (creating its directory)."""
    with atomic_file(path) as sink:
        sink.write(data)


def write_json_atomic(path: Path, document: Any, *, indent: int | None = 2, sort_keys: bool = True) -> None:
    """:func:`write_bytes_atomic` of ``document`` as JSON with a final newline."""
    text = json.dumps(document, indent=indent, sort_keys=sort_keys, default=str) + "\n"
    write_bytes_atomic(path, text.encode())
