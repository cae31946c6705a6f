"""Which event files a reader may read: committed, Parquet, Hive's schema, not superseded.

The rules every reader (views, jobs, verify) applies, in one place:

* only names ending in ``.parquet`` that do not start with ``.`` (temporary files are never data);
* a file that is empty, not Parquet, unreadable or without the envelope columns is *skipped* with a
  reason (never deleted; ``hive-jobs verify`` reports it and exits 1);
* the inputs of a committed compaction (its journal names an output that exists) are superseded by
  that output and skipped, so a compaction killed before it removed them double counts nothing.

Checks are cached per (path, size, mtime), so listing a large store twice costs one ``stat`` a file.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from hive_core.layout import compact_journal_glob, event_dir, partition_date
from hive_core.schema_cache import event_schemas

__all__ = ["FileSet", "check_file", "list_event_files", "read_journal", "superseded_inputs"]

PARQUET_MAGIC = b"PAR1"
_ENVELOPE = ("event_id", "ts", "type", "request_id")


@dataclass
class FileSet:
    """Readable files of one event type, and the ones skipped with their reasons."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


_cache: dict[tuple[str, int, int], str | None] = {}
_cache_lock = threading.Lock()


def check_file(path: Path, event_type: str) -> str | None:
    """``None`` when ``path`` is a readable event file of ``event_type``, else why not (one phrase)."""
    try:
        stat = path.stat()
    except OSError as exc:
        return f"cannot stat: {exc.strerror}"
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    reason = _check_uncached(path, stat.st_size, event_type)
    with _cache_lock:
        _cache[key] = reason
    return reason


def _check_uncached(path: Path, size: int, event_type: str) -> str | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if size == 0:
        return "empty file"
    if size < 12:
        return "too short to be Parquet"
    with open(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(-4, 2)
        tail = handle.read(4)
    if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
        return "not a Parquet file"
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        return f"unreadable Parquet footer: {exc}"
    missing = [name for name in _ENVELOPE if name not in schema.names]
    if missing:
        return f"not a Hive event file (missing columns {', '.join(missing)})"
    expected = event_schemas()[event_type]
    for name in schema.names:
        if name in expected.names:
            want = expected.field(name).type
            got = schema.field(name).type
            if got != want and not (pa.types.is_timestamp(got) and pa.types.is_timestamp(want)):
                return f"column {name} is {got}, expected {want}"
    return None


def read_journal(journal: Path) -> tuple[str, list[str]] | None:
    """A compaction journal's (output name, input names); ``None`` for a torn or foreign file."""
    try:
        entry = json.loads(journal.read_text())
        return str(entry["output"]), [str(name) for name in entry["inputs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def superseded_inputs(partition: Path) -> set[str]:
    """Names in ``partition`` replaced by a committed compaction (journal present, output present)."""
    names: set[str] = set()
    for journal in partition.glob(compact_journal_glob()):
        entry = read_journal(journal)
        if entry is not None and (partition / entry[0]).exists():  # a torn journal never committed
            names.update(entry[1])
    return names


def list_event_files(data_dir: Path, event_type: str, *, check: bool = True) -> FileSet:
    """The files a reader of ``event_type`` should read, sorted by partition then name."""
    result = FileSet()
    root = event_dir(data_dir, event_type)
    if not root.is_dir():
        return result
    for partition in sorted(p for p in root.iterdir() if p.is_dir()):
        if partition_date(partition) is None:
            continue
        superseded = superseded_inputs(partition)
        for path in sorted(partition.iterdir()):
            name = path.name
            if name.startswith(".") or not path.is_file() or name in superseded:
                continue
            reason = check_file(path, event_type) if check else None
            if reason is None:
                result.files.append(path)
            else:
                result.skipped.append((path, reason))
    return result
