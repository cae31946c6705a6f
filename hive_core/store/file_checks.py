"""Whether one event file is data, and whether its rows need checking: the content rules.

A file (already named like data, :mod:`hive_core.store.event_files`) is *skipped*, with a one-phrase
reason, when it is empty, not Parquet, has an unreadable footer, lacks an envelope column, or has a
column whose type cannot be cast losslessly to the schema's. Lossless casts are accepted - what
pandas and Polars write: any timestamp unit or zone (naive means UTC; a nanosecond that is not a
whole microsecond is quarantined row by row, :mod:`hive_core.store.quarantine`), ``large_string`` and
``string_view``, narrower integers, ``float32``, large lists, dictionaries, all-null columns.

A data file is *checked* (its rows filtered through the row rules by every reader) unless its
footer proves every row sound: ``ts`` is ``timestamp[us]`` with a zone, and the statistics of every
row group show no null and a min and max inside the partition's UTC day and ``TS_MIN..TS_MAX``.
Hive's own writers always produce such files, so the row rules cost them nothing. Verdicts are
cached per (path, size, mtime): event files are immutable.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.store.datadir import is_remote
from hive_core.store.layout import TS_MAX, TS_MIN, partition_date
from hive_core.store.schema_cache import event_schemas

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = ["SOUND", "Verdict", "check_file", "file_verdict"]

PARQUET_MAGIC = b"PAR1"
_ENVELOPE = ("event_id", "ts", "type", "request_id")
_EPOCH = date(1970, 1, 1)
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Verdict:
    """What a reader does with one file."""

    #: why the file is not data; None: it is
    reason: str | None
    #: the ``ts`` column's Arrow type when the file's rows must be checked one by one, else None
    checked: str | None = None


#: a data file whose rows need no checking
SOUND = Verdict(None)

_cache: dict[tuple[str, int, int], Verdict] = {}
_cache_lock = threading.Lock()


def check_file(path: Path, event_type: str) -> str | None:
    """``None`` when ``path`` is a readable event file of ``event_type``, else why not (one phrase)."""
    try:
        stat = path.stat()
        return file_verdict(path, str(path), stat.st_size, stat.st_mtime_ns, event_type).reason
    except FileNotFoundError:
        return "vanished while being checked (a compaction replaced it)"
    except OSError as exc:
        return f"cannot stat: {exc.strerror}"


def file_verdict(path: Path, readable: str, size: int, mtime_ns: int, event_type: str) -> Verdict:
    """The verdict on ``path`` (its partition matters), read through ``readable`` (a pinned
    descriptor's name, or the path). Raises ``FileNotFoundError`` when the file is gone."""
    key = (str(path), size, mtime_ns)
    with _cache_lock:
        found = _cache.get(key)
    if found is None:
        found = _check(path, readable, size, event_type)
        with _cache_lock:
            _cache[key] = found
    return found


def _check(path: Path, readable: str, size: int, event_type: str) -> Verdict:

    if size == 0:
        return Verdict("empty file")
    if size < 12:
        return Verdict("too short to be Parquet")
    if is_remote(path):  # an object: ranged reads of one open object (hive_core.store.objects)
        from hive_core.store.objects import as_object, translated

        # A read cut short is not a damaged file: taken for one, its events would be left out of
        # this read (and a whole file out of every read, by the cache). A deleted object (a
        # compaction's cleanup) is FileNotFoundError: the caller lists again.
        with translated(as_object(path)):
            return _check_handle(path, as_object(path).open_input(), size, event_type)
    return _check_handle(path, readable, size, event_type)


def _check_handle(path: Path, source: Any, size: int, event_type: str) -> Verdict:
    """The checks of :func:`_check` on ``source``: a local path's name, or an open object."""
    with open(source, "rb") if isinstance(source, str) else source as handle:
        head = handle.read(4)
        handle.seek(size - 4)
        tail = handle.read(4)
        if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
            return Verdict("not a Parquet file")
        if not isinstance(source, str):
            handle.seek(0)
            source = handle
        return _check_footer(path, source, event_type)


def _check_footer(path: Path, source: Any, event_type: str) -> Verdict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_metadata(source)
        schema = metadata.schema.to_arrow_schema()
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        if is_remote(path) and isinstance(exc, OSError):  # the read failed, not the format: see _check
            raise
        return Verdict(f"unreadable Parquet footer: {exc}")
    missing = [name for name in _ENVELOPE if name not in schema.names]
    if missing:
        return Verdict(f"not a Hive event file (missing columns {', '.join(missing)})")
    expected = event_schemas()[event_type]
    for name in schema.names:
        if name in expected.names:
            got, want = schema.field(name).type, expected.field(name).type
            if not _castable(got, want):
                return Verdict(f"column {name} is {got}, expected {want} (no lossless cast)")
    ts = schema.field("ts").type
    day = partition_date(path.parent)
    if day is not None and _sound(metadata, ts, day):
        return SOUND
    return Verdict(None, checked=str(ts))


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


def _sound(metadata: pq.FileMetaData, ts: pa.DataType, day: date) -> bool:
    """Whether the footer proves every row's ``ts`` present, a whole microsecond (the unit), UTC,
    inside ``day`` and inside ``TS_MIN..TS_MAX``: the file's rows need no checking."""
    import pyarrow as pa

    if not (isinstance(ts, pa.TimestampType) and ts.unit == "us" and ts.tz is not None):
        return False
    ts_min, ts_max = TS_MIN, TS_MAX
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


def _micros(instant: datetime) -> int:
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
