"""The append-only event log: a buffered writer of Parquet event files.

``EventLog.record(event)`` appends the event's fields to an in-memory columnar buffer (one per
event type and UTC date) and returns; it costs a few microseconds. The buffer is flushed when it
holds ``max_events`` events, when its oldest event is ``max_age_s`` old (a background timer), on
``flush()``/``close()``, at interpreter exit and on SIGTERM. Each flush writes one file per
(type, date) with :func:`ingest.files.write_atomic`, so an event whose flush returned is on disk
exactly once, and a writer killed at any instant leaves only an ignorable temporary file.

File names are ``<writer-id>-<seq>.parquet``; the writer id is unique per process, so any number of
writers append to the same data directory without coordination.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from hive_core.errors import SchemaMismatch
from hive_core.events import Event, arrow_schema, event_class
from hive_core.ids import writer_id as new_writer_id
from hive_core.layout import EventFileName, partition_dir
from ingest.files import write_atomic

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DEFAULT_MAX_AGE_S", "DEFAULT_MAX_EVENTS", "EventLog"]

DEFAULT_MAX_EVENTS = 50_000
DEFAULT_MAX_AGE_S = 5.0


class _Buffer:
    """Columns of buffered events of one type and date."""

    __slots__ = ("cls", "columns", "names")

    def __init__(self, cls: type[Event]) -> None:
        self.cls = cls
        self.names = tuple(cls.model_fields)
        self.columns: list[list[Any]] = [[] for _ in self.names]

    def append(self, values: dict[str, Any]) -> None:
        for name, column in zip(self.names, self.columns, strict=True):
            column.append(values[name])

    def to_table(self) -> pa.Table:
        import pyarrow as pa

        schema = arrow_schema(self.cls)
        arrays = [pa.array(col, type=field.type) for col, field in zip(self.columns, schema, strict=True)]
        return pa.Table.from_arrays(arrays, schema=schema)


class EventLog:
    """A buffered, crash-safe writer of events into ``<data_dir>/events``.

    Use as a context manager, or call :meth:`close`. Thread-safe.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        writer: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.writer = writer or new_writer_id()
        self.max_events = max_events
        self.max_age_s = max_age_s
        self._seq = 0
        self._lock = threading.RLock()
        self._buffers: dict[tuple[str, date], _Buffer] = {}
        self._pending = 0
        self._oldest: float | None = None
        self._closed = False
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._age_loop, name="hive-eventlog-flush", daemon=True)
        self._timer.start()
        _OPEN_LOGS.add(self)
        _install_exit_hooks()

    # -- recording -------------------------------------------------------------------------------

    def record(self, event: Event) -> None:
        """Buffer one event; flushes when the buffer is full.

        Never raises once the event is buffered: a failed size-triggered flush keeps the events,
        warns on stderr, and is retried (and raised) by the next :meth:`flush` or :meth:`close` - a
        caller retrying ``record`` after an exception would otherwise write the event twice.
        """
        values = event.__dict__
        key = (values["type"], values["ts"].date())
        with self._lock:
            if self._closed:
                raise RuntimeError("EventLog is closed")
            buffer = self._buffers.get(key)
            if buffer is None:
                buffer = self._buffers[key] = _Buffer(type(event))
            buffer.append(values)
            self._pending += 1
            if self._oldest is None:
                self._oldest = time.monotonic()
            if self._pending >= self.max_events:
                try:
                    self._flush_locked()
                except Exception as exc:  # the events stay buffered; flush()/close() retry and raise
                    print(f"warning: event log flush failed, events kept in memory: {exc}", file=sys.stderr)
        if _pending_signal is not None:
            _deliver_pending_signal(self)

    def record_many(self, events: Iterable[Event]) -> None:
        for event in events:
            self.record(event)

    def write_table(self, event_type: str, table: pa.Table) -> int:
        """Write a whole Arrow table of one event type at once (bulk producers such as the simulator).

        The table must carry every column of the type's schema (extra columns are an error); it is
        cast to the schema and split by UTC date. Returns the number of events written.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        cls = event_class(event_type)
        schema = arrow_schema(cls)
        if set(table.column_names) != set(schema.names):
            missing = sorted(set(schema.names) - set(table.column_names))
            extra = sorted(set(table.column_names) - set(schema.names))
            raise SchemaMismatch(f"{event_type} table: missing columns {missing}, unexpected {extra}")
        try:
            table = table.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaMismatch(f"{event_type} table does not fit the schema: {exc}") from exc
        if table.num_rows and pc.any(pc.not_equal(table["type"], event_type)).as_py():
            raise SchemaMismatch(f"{event_type} table has rows of another type")
        days = pc.cast(table["ts"], pa.date32())
        with self._lock:
            for day in pc.unique(days).to_pylist():
                part = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
                self._write(event_type, day, part)
        return int(table.num_rows)

    # -- flushing --------------------------------------------------------------------------------

    def flush(self) -> int:
        """Write every buffered event to disk; returns how many were written."""
        try:
            with self._lock:
                return self._flush_locked()
        finally:
            if _pending_signal is not None:
                _deliver_pending_signal(self)

    def _flush_locked(self) -> int:
        written = 0
        # A failed write keeps that buffer (and the ones after it) for the next flush: nothing is lost.
        for key in list(self._buffers):
            buffer = self._buffers[key]
            table = buffer.to_table()
            self._write(key[0], key[1], table)
            del self._buffers[key]
            written += table.num_rows
            self._pending -= table.num_rows
        self._oldest = None if not self._buffers else self._oldest
        return written

    def _write(self, event_type: str, day: date, table: pa.Table) -> None:
        self._seq += 1
        name = EventFileName(self.writer, self._seq).format()
        write_atomic(table, partition_dir(self.data_dir, event_type, day) / name)

    def _age_loop(self) -> None:
        interval = min(max(self.max_age_s / 4, 0.05), 1.0)
        while not self._stop.wait(interval):
            oldest = self._oldest
            if oldest is not None and time.monotonic() - oldest >= self.max_age_s:
                with contextlib.suppress(Exception):  # the next record()/close() reports it
                    self.flush()

    @property
    def pending(self) -> int:
        """Events buffered and not yet on disk."""
        return self._pending

    def close(self) -> None:
        """Flush and stop. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._flush_locked()
            self._closed = True
        self._stop.set()
        _OPEN_LOGS.discard(self)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- process exit: atexit and SIGTERM flush every open log ---------------------------------------

_OPEN_LOGS: weakref.WeakSet[EventLog] = weakref.WeakSet()
_hooks_installed = False


def _flush_all() -> None:
    for log in list(_OPEN_LOGS):
        with contextlib.suppress(Exception):
            log.close()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _pending_signal
    # Signal handlers run on the main thread between bytecodes: if it was interrupted inside a
    # log's critical section (half-appended columns, a buffer written but not yet dropped),
    # flushing now would lose or duplicate events. Finish that section first.
    if any(log._lock._is_owned() for log in list(_OPEN_LOGS)):  # type: ignore[attr-defined]
        _pending_signal = signum
        return
    _flush_all()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    raise SystemExit(128 + signum)


_previous_sigterm: Any = None
#: a SIGTERM that arrived while the main thread was inside record()/flush(): delivered on the way out
_pending_signal: int | None = None


def _deliver_pending_signal(log: EventLog) -> None:
    global _pending_signal
    if _pending_signal is None or log._lock._is_owned():  # type: ignore[attr-defined]
        return  # still inside a (nested) critical section
    signum, _pending_signal = _pending_signal, None
    _on_sigterm(signum, None)


def _install_exit_hooks() -> None:
    global _hooks_installed, _previous_sigterm
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_flush_all)
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None) or callable(previous):
            _previous_sigterm = previous if callable(previous) else None
            signal.signal(signal.SIGTERM, _on_sigterm)
