"""Which event files a reader may read: the store's file rules, and a listing that a concurrent
compaction cannot make inconsistent.

The rules every reader (views, jobs, verify, compaction) applies, in one place:

* **Names.** A partition's data is exactly the names :func:`hive_core.layout.parse_file_name`
  accepts (``<writer>-<seq>.parquet``). Any other entry - ``x.parquet.bak``, ``x~``, ``backup``,
  ``copy of x.parquet``, a subdirectory, a hidden ``.x.parquet`` (plain DuckDB globs would read it)
  - is a *stray*: skipped with a reason, never read, never compacted. Other hidden names are the
  protocol's own (temporary files, compaction journals) or a desktop's (``.DS_Store``): ignored.
* **Contents.** A data file that is empty, not Parquet, unreadable, without the envelope columns, or
  with a column whose type cannot be cast losslessly to the schema's is skipped with a reason (never
  deleted; ``hive-jobs verify`` reports it and exits 1). Lossless casts are accepted: any timestamp
  unit or zone (naive means UTC; a nanosecond that is not a whole microsecond is quarantined row by
  row, :mod:`hive_core.quarantine`), ``large_string``/``string_view``, narrower integers, ``float32``,
  large lists, dictionaries and all-null columns - what pandas and Polars write.
* **Rows.** A file whose ``ts`` is not ``timestamp[us, UTC]`` or whose footer statistics do not prove
  every ``ts`` inside its partition's UTC day and inside ``TS_MIN..TS_MAX`` is *checked*: readers
  filter its rows through :mod:`hive_core.quarantine`. Hive's own files are never checked (their
  statistics prove them sound), so the rule costs them nothing but a footer read, cached.
* **Compactions.** The inputs of a committed compaction (its journal names an output that is listed)
  are superseded by that output and skipped, so a compaction killed before it removed them double
  counts nothing.

**Consistency against a concurrent compaction, without the store lock.** A compaction
(``ingest.compact``) writes its journal, renames its output into place, deletes its inputs, then its
journal; a directory listing is not atomic, so a reader could list the output and inputs that are
still there (a double count), or miss an output renamed in behind its read position and inputs
deleted ahead of it (a loss). Each partition is therefore listed twice, with its journals read in
between, and the snapshot is taken only when both listings agree (temporary files aside): every name
of the snapshot then existed during the whole interval between them, when the journals were read, so
an input still listed beside its listed output always has its journal read and is skipped. A
compaction that slips a whole commit (rename, deletions) into one listing and its follow-up into the
next would escape this, but that needs two compactions, each reading and fsyncing a Parquet file,
inside two directory reads. A file that vanishes before it is checked restarts the partition; after
:data:`LIST_ATTEMPTS` unstable listings the reader gives up with a one-line error. Files that
vanish after the listing (a DuckDB query opens them later) are the reader's to retry:
:meth:`queries.connect.Store.execute` re-lists and runs the query again.

Checks are cached per (path, size, mtime), so listing a large store twice costs one ``stat`` a file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hive_core.errors import DataError
from hive_core.layout import event_dir, is_compact_journal, is_temporary, parse_file_name, partition_date
from hive_core.schema_cache import event_schemas, ts_range

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "LIST_ATTEMPTS",
    "FileSet",
    "check_file",
    "list_event_files",
    "read_journal",
]

PARQUET_MAGIC = b"PAR1"
_ENVELOPE = ("event_id", "ts", "type", "request_id")
#: listings of one partition before a reader gives up (with backoff: about 2 s in all)
LIST_ATTEMPTS = 50


@dataclass
class FileSet:
    """The readable files of one event type (sorted by partition, then name), and the ones skipped
    with their reasons."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    #: files of ``files`` whose rows readers check one by one, with their ``ts`` column's Arrow type
    #: (files of one ``ts`` type are read together)
    checked: dict[Path, str] = field(default_factory=dict)
    #: ``(size, mtime_ns)`` of each file of ``files`` as listed: fingerprints need no second ``stat``
    stats: dict[Path, tuple[int, int]] = field(default_factory=dict)
    #: open descriptors of the files, when listed with ``pin`` (see :func:`list_event_files`)
    pinned: dict[Path, int] = field(default_factory=dict)

    def readable(self, path: Path) -> str:
        """The name to open ``path`` by: its pinned descriptor's (``/proc/self/fd/N``), which stays
        readable after a compaction deletes the file, else the path itself."""
        fd = self.pinned.get(path)
        return str(path) if fd is None else f"{_FD_DIR}/{fd}"

    def close(self) -> None:
        """Release the pinned descriptors (the names of :meth:`readable` then stop working)."""
        for fd in self.pinned.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.pinned.clear()


@dataclass(frozen=True)
class _Verdict:
    reason: str | None  # why the file is not data; None: it is
    checked: str | None = None  # the ts type when its rows must be checked one by one


class _Vanished(Exception):
    """A listed file disappeared (a compaction deleted it): list the partition again."""


class _OutOfDescriptors(Exception):
    """Too many files to hold open at once."""


#: where an open descriptor has a name that opens the same file (Linux, macOS); None: no pinning
_FD_DIR = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd" if sys.platform == "darwin" else None


_cache: dict[tuple[str, int, int], _Verdict] = {}
_cache_lock = threading.Lock()


def check_file(path: Path, event_type: str) -> str | None:
    """``None`` when ``path`` is a readable event file of ``event_type``, else why not (one phrase)."""
    try:
        stat = path.stat()
        return _verdict(path, str(path), stat.st_size, stat.st_mtime_ns, event_type).reason
    except (_Vanished, FileNotFoundError):
        return "vanished while being checked (a compaction replaced it)"
    except OSError as exc:
        return f"cannot stat: {exc.strerror}"


def _verdict(path: Path, readable: str, size: int, mtime_ns: int, event_type: str) -> _Verdict:
    """The cached verdict on the file ``path`` (its partition matters), read through ``readable``."""
    key = (str(path), size, mtime_ns)
    with _cache_lock:
        found = _cache.get(key)
    if found is None:
        try:
            found = _check_uncached(path, readable, size, event_type)
        except FileNotFoundError as exc:
            raise _Vanished(str(path)) from exc
        with _cache_lock:
            _cache[key] = found
    return found


def _check_uncached(path: Path, readable: str, size: int, event_type: str) -> _Verdict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if size == 0:
        return _Verdict("empty file")
    if size < 12:
        return _Verdict("too short to be Parquet")
    with open(readable, "rb") as handle:
        head = handle.read(4)
        handle.seek(-4, 2)
        tail = handle.read(4)
    if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
        return _Verdict("not a Parquet file")
    try:
        metadata = pq.read_metadata(readable)
        schema = metadata.schema.to_arrow_schema()
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        return _Verdict(f"unreadable Parquet footer: {exc}")
    missing = [name for name in _ENVELOPE if name not in schema.names]
    if missing:
        return _Verdict(f"not a Hive event file (missing columns {', '.join(missing)})")
    expected = event_schemas()[event_type]
    for name in schema.names:
        if name in expected.names:
            got, want = schema.field(name).type, expected.field(name).type
            if not _castable(got, want):
                return _Verdict(f"column {name} is {got}, expected {want} (no lossless cast)")
    ts = schema.field("ts").type
    day = partition_date(path.parent)
    if day is not None and _sound(metadata, ts, day):
        return _Verdict(None)
    return _Verdict(None, checked=str(ts))


def _castable(got: pa.DataType, want: pa.DataType) -> bool:
    """Whether every value of type ``got`` converts to ``want`` without loss (timestamps: but for
    sub-microsecond values, which the row rules quarantine)."""
    import pyarrow as pa

    t = pa.types
    if got == want or t.is_null(got):
        return True
    if t.is_dictionary(got):
        return _castable(got.value_type, want)
    if t.is_timestamp(want):
        return bool(t.is_timestamp(got))
    if t.is_string(want):
        return bool(t.is_large_string(got) or t.is_string_view(got))
    if t.is_int64(want):
        return bool(t.is_integer(got) and got.bit_width < 64)
    if t.is_float64(want):
        return bool(t.is_float32(got) or t.is_float16(got))
    if t.is_list(want):
        lists = t.is_list(got) or t.is_large_list(got) or t.is_list_view(got) or t.is_large_list_view(got)
        return lists and _castable(got.value_type, want.value_type)
    return False


def _sound(metadata: object, ts: pa.DataType, day: date) -> bool:
    """Whether the footer proves every row's ``ts`` present, a whole microsecond (the unit), UTC,
    inside ``day`` and inside ``TS_MIN..TS_MAX``: the file's rows need no checking."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert isinstance(metadata, pq.FileMetaData)
    if not (isinstance(ts, pa.TimestampType) and ts.unit == "us" and ts.tz is not None):
        return False
    ts_min, ts_max = ts_range()
    start = (day.toordinal() - _EPOCH.toordinal()) * _DAY_US  # in integers: date=9999-12-31 is a valid name
    low, high = max(start, _micros(ts_min)), min(start + _DAY_US, _micros(ts_max))
    column = next((j for j in range(metadata.num_columns) if metadata.schema.column(j).path == "ts"), None)
    if column is None:
        return False
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(column).statistics
        if stats is None or not stats.has_min_max or not stats.has_null_count or stats.null_count:
            return False
        if not (isinstance(stats.min_raw, int) and isinstance(stats.max_raw, int)):
            return False
        if stats.min_raw < low or stats.max_raw >= high:
            return False
    return True


_EPOCH = date(1970, 1, 1)
_DAY_US = 86_400_000_000


def _micros(instant: datetime) -> int:
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def read_journal(journal: Path) -> tuple[str, list[str]] | None:
    """A compaction journal's (output name, input names); ``None`` for a vanished, torn or foreign file."""
    try:
        entry = json.loads(journal.read_text())
        return str(entry["output"]), [str(name) for name in entry["inputs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def list_event_files(data_dir: Path, event_type: str, *, check: bool = True, pin: bool = False) -> FileSet:
    """The files a reader of ``event_type`` should read, as one consistent snapshot per partition
    (see the module docstring); ``check=False`` applies the name and compaction rules only (no file
    is opened). With ``pin``, each file is held open (:attr:`FileSet.pinned`; :meth:`FileSet.close`
    releases them). Raises :class:`~hive_core.errors.DataError` when a partition keeps changing."""
    result = FileSet()
    root = event_dir(data_dir, event_type)
    try:
        partitions = sorted(p for p in root.iterdir() if p.is_dir() and partition_date(p) is not None)
    except (FileNotFoundError, NotADirectoryError):
        return result
    pin = pin and _FD_DIR is not None
    for partition in partitions:
        for attempt in range(LIST_ATTEMPTS):
            part = FileSet()
            try:
                _snapshot(partition, event_type, part, check=check, pin=pin)
                break
            except _Vanished:
                part.close()
                time.sleep(min(0.001 * 2**attempt, 0.05))
            except _OutOfDescriptors:  # too many files to hold open: read by path (module docstring)
                part.close()
                result.close()
                return list_event_files(data_dir, event_type, check=check, pin=False)
        else:
            result.close()
            raise DataError(f"{partition} kept changing while it was listed ({LIST_ATTEMPTS} attempts): "
                            "something other than Hive's writers and compaction is rewriting it; try again")
        result.files.extend(part.files)
        result.skipped.extend(part.skipped)
        result.checked.update(part.checked)
        result.stats.update(part.stats)
        result.pinned.update(part.pinned)
    return result


def _names(partition: Path) -> dict[str, bool] | None:
    """Every name in ``partition`` but temporaries, mapped to whether it is a directory; ``None`` when
    the partition itself is gone."""
    try:
        with os.scandir(partition) as entries:
            return {e.name: e.is_dir() for e in entries if not is_temporary(e.name)}
    except FileNotFoundError:
        return None


def _snapshot(partition: Path, event_type: str, result: FileSet, *, check: bool, pin: bool) -> None:
    """One partition into ``result``, listed twice around its journals; raises :class:`_Vanished`
    when the listings differ or a listed file is gone before it is opened."""
    first = _names(partition)
    journals = [entry for name in sorted(first or ()) if is_compact_journal(name)
                if (entry := read_journal(partition / name)) is not None]
    if _names(partition) != first:
        raise _Vanished(str(partition))
    if first is None:
        return
    superseded = {name for output, inputs in journals if output in first for name in inputs}
    for name, is_dir in sorted(first.items()):
        path = partition / name
        hidden = name.startswith(".")
        if parse_file_name(name) is None or is_dir:
            if not hidden or name.endswith(".parquet"):
                kind = "a directory" if is_dir else "not an event file name (<writer>-<seq>.parquet)"
                result.skipped.append((path, f"stray: {kind}; never read"))
            continue
        if name in superseded:
            continue
        readable = str(path)
        try:
            if pin:
                result.pinned[path] = _open(path)
                readable = f"{_FD_DIR}/{result.pinned[path]}"
                stat = os.fstat(result.pinned[path])
            else:
                stat = path.stat()
        except FileNotFoundError as exc:
            raise _Vanished(str(path)) from exc
        verdict = _verdict(path, readable, stat.st_size, stat.st_mtime_ns, event_type) if check else _Verdict(None)
        if verdict.reason is not None:
            result.skipped.append((path, verdict.reason))
            if path in result.pinned:
                os.close(result.pinned.pop(path))
            continue
        result.files.append(path)
        result.stats[path] = (stat.st_size, stat.st_mtime_ns)
        if verdict.checked is not None:
            result.checked[path] = verdict.checked


def _open(path: Path) -> int:
    """A read-only descriptor of ``path`` (raising the soft limit on descriptors once, if need be)."""
    try:
        return os.open(path, os.O_RDONLY)
    except OSError as exc:
        if exc.errno != errno.EMFILE or not _raise_descriptor_limit():
            if exc.errno == errno.EMFILE:
                raise _OutOfDescriptors from exc
            raise
    try:
        return os.open(path, os.O_RDONLY)
    except OSError as exc:
        if exc.errno == errno.EMFILE:
            raise _OutOfDescriptors from exc
        raise


def _raise_descriptor_limit() -> bool:
    """Raise this process's soft limit on open files to its hard limit; whether it went up."""
    try:
        import resource
    except ImportError:
        return False
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft >= hard:
        return False
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return True
