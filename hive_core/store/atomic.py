"""Whole-file writes that a crash cannot tear: temporary file beside the target, fsync, rename.

Every small state or config file Hive writes (budgets, experiments, circuit state, rollup state,
job state, reports, caches) goes through :func:`write_bytes_atomic`; the Parquet event files use
the same steps in ``ingest.files``. Readers see the old file or the new one, never a mix, and a
failed write leaves no temporary file behind - unless the process is killed mid-write: then
:func:`remove_stale_temporaries` deletes the leftover once it is older than :data:`TEMP_GRACE_S`
(a writer that has not renamed its file by then is dead), as the event log's compaction does.

In object storage (an ``s3://`` data directory, :mod:`hive_core.store.objects`) a whole-file write is
one PUT, which the server applies whole or not at all: no temporary, no rename, nothing left by a
killed writer. (``mode`` has no meaning there: who may read an object is the bucket's policy.)
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from hive_core.clock import filesystem_now
from hive_core.store.datadir import is_remote
from hive_core.store.layout import is_temporary

__all__ = ["PRIVATE_MODE", "TEMP_GRACE_S", "atomic_file", "fsync_dir", "remove_stale_temporaries", "write_bytes_atomic",
           "write_json_atomic"]

#: seconds after which a temporary file's writer is taken for dead (the event log's compaction,
#: ``ingest.compact``, uses the same grace): no whole-file write takes a minute between its first
#: byte and its rename
TEMP_GRACE_S = 60.0
#: the mode of files that hold secrets or private text (config.json with its webhook URL, the alert
#: outbox, stored prompts): readable by the user alone
PRIVATE_MODE = 0o600


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, *, overwrite: bool = True, mode: int | None = None,
                durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write that appears at ``path`` complete, or not at all.

    The caller writes into the yielded temporary file (same directory); on a clean exit it is
    fsynced and renamed over ``path``, and the rename made durable. On any exception the temporary
    file is removed and ``path`` is untouched. Without ``overwrite`` an existing ``path`` is an error.
    ``mode`` (e.g. :data:`PRIVATE_MODE` for files holding secrets or private text) is set before the
    first byte is written, so the content is never readable by others, not even for an instant.
    ``durable=False`` skips both fsyncs: still whole or absent to every reader, but a power cut may
    leave the old content or an empty file - for soft state only (the circuit breaker's, which
    recovers from either), where two fsyncs cost ~1.3 ms.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per process and thread: concurrent writers never share a temporary file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident():x}.tmp")
    try:
        with open(tmp, "wb") as sink:
            if mode is not None:
                os.fchmod(sink.fileno(), mode)
            yield sink
            sink.flush()
            if durable:
                os.fsync(sink.fileno())
        if not overwrite and path.exists():
            raise FileExistsError(f"refusing to replace {path}")
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            # a failed write names no file (ENOSPC from a buffer): name the one being written
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    if durable:
        fsync_dir(path.parent)


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and durably (creating its directory); in object
    storage, one PUT. ``durable``: see :func:`atomic_file`."""
    if is_remote(path):
        path.write_bytes(data)
        return
    with atomic_file(path, mode=mode, durable=durable) as sink:
        sink.write(data)


def write_json_atomic(path: Path, document: Any, *, indent: int | None = 2, sort_keys: bool = True,
                      mode: int | None = None, durable: bool = True) -> None:
    """:func:`write_bytes_atomic` of ``document`` as JSON with a final newline."""
    text = json.dumps(document, indent=indent, sort_keys=sort_keys, default=str) + "\n"
    write_bytes_atomic(path, text.encode(), mode=mode, durable=durable)


def remove_stale_temporaries(directory: Path, *, prefix: str = ".", grace_s: float = TEMP_GRACE_S) -> list[Path]:
    """Delete the temporary files in ``directory`` (names starting with ``prefix``) that a killed
    writer left: those at least ``grace_s`` old. Returns what was removed.

    Ages are measured on the filesystem's clock (:func:`hive_core.clock.filesystem_now`), never
    Hive's: a moved clock or a skewed file server must not make a live writer's file look dead. A
    directory that is missing or read-only is left alone (ages unknown, nothing removed). Object
    storage has no temporaries (a write is one PUT): nothing to remove, nothing listed.
    """
    if is_remote(directory):
        return []
    try:
        candidates = [p for p in directory.iterdir() if is_temporary(p.name) and p.name.startswith(prefix)]
    except OSError:  # missing, not a directory, unreadable
        return []
    fs_now = filesystem_now(directory) if candidates else None
    if fs_now is None:
        return []
    removed: list[Path] = []
    for path in candidates:
        try:
            if fs_now - path.stat().st_mtime >= grace_s and path.is_file():
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # its writer renamed it meanwhile: not ours to touch
            continue
    return removed
