"""The append-only event log: a buffered writer of Parquet event files.

``EventLog.record(event)`` appends the event's fields to an in-memory columnar buffer (one per
event type and UTC date) and returns; it costs a few microseconds, and ``record_many`` takes the
lock once for several events (the gateway's per-turn batch). The buffer is flushed when it
holds ``max_events`` events, when its oldest event is ``max_age_s`` old, on ``flush()``/``close()``
and at interpreter exit. Each flush writes one file per (type, date) with
:func:`ingest.files.write_atomic`, so an event whose flush returned is on disk exactly once, and a
writer killed at any instant leaves only an ignorable temporary file.

The size and age flushes run in the log's own thread, and a flush writes outside the buffers'
lock: it takes the buffers as they are, leaves empty ones to record into, and writes those it took
(one writer at a time, in the order they were taken). Recording never waits for a write, so an
application's event loop no longer stalls on one (measured on a loop recording 4,400 events/s, a
gateway worker's full speed: 7-41 ms at each flush while the recording thread wrote them itself).
Only a recorder that outruns the writer by another ``max_events`` writes itself, and waits for the
write before it: memory stays bounded. A write that fails puts what it took back in front of what
was recorded meanwhile.

File names are ``<writer-id>-<seq>.parquet``; the writer id is unique per process, so any number of
writers append to the same data directory without coordination. A process forked while a log is
open (``multiprocessing``'s default on Linux) gets a log of its own: the child starts with an empty
buffer (what the parent had buffered is the parent's to write), a writer id, locks and a flush
thread of its own; the parent is not touched and its fork never waits. A child that ends with
``os._exit`` (as ``multiprocessing`` children do) must close or flush the log first, like any
process. (The usual caveat of forking a threaded process holds for the libraries the child then
uses: the log's own state is safe.)

Faults:

* **SIGTERM** takes Ctrl-C's path: the handler raises :class:`hive_core.shutdown.Terminated` (a
  ``KeyboardInterrupt`` that exits 143) in the main thread, so a stream being read is cancelled and
  recorded, and ``with`` blocks close the log, which writes the buffer. It is raised only outside
  the log's record/flush critical section (a signal that lands inside is delivered on the way out),
  and only once: a second SIGTERM during that unwinding is ignored (SIGKILL still stops a stuck
  process).
* **A full disk or a read-only directory**: a failed write keeps the buffer and is retried (by the
  timer, at most every ``max_age_s``); :meth:`close` spills what still cannot be written to a file
  outside the data directory (:mod:`ingest.spill`) and raises :class:`ingest.spill.EventsSpilled`,
  whose one line says how many, where and what takes them back.
* **A record after close** (cleanup code that runs after the log was closed) is written at once,
  and spilled if that fails: it is never dropped and never raises - raising there would break the
  caller's cleanup, e.g. a stream's usage recorded but not its outcome.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from hive_core.errors import DataError, EventsLost, EventsSpilled, SchemaMismatch
from hive_core.ids import writer_id as new_writer_id
from hive_core.settings import Settings
from hive_core.shutdown import Terminated
from hive_core.store.datadir import DataDir
from hive_core.store.events import Event, arrow_schema, event_class
from hive_core.store.layout import EventFileName, parse_file_name
from ingest.files import write_atomic
from ingest.spill import spill_events

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EventLog"]


class _Buffer:
    """Columns of buffered events of one type and date.

    Appended per event, not built from rows at flush: the flush then hands pyarrow ready columns
    (measured: building 25 columns from buffered rows at flush cost more than it saved per record,
    and halved flush throughput).
    """

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
        max_events: int = Settings.flush_max_events,  # the defaults of HIVE_FLUSH_EVENTS / HIVE_FLUSH_AGE
        max_age_s: float = Settings.flush_max_age_s,
        writer: str | None = None,
        spill_roots: Sequence[Path] | None = None,
    ) -> None:
        self._datadir = DataDir(data_dir)  # a local Path, or an s3:// ObjectPath (hive_core.store.objects)
        self.data_dir = self._datadir.root
        self.writer = writer or new_writer_id()
        self._writer_given = writer is not None
        if parse_file_name(EventFileName(self.writer, 1).format()) is None:
            # its files would be strays that no reader reads (the file-name rule, hive_core.store.layout)
            raise ValueError(f"writer id {self.writer!r}: letters, digits, '_' and '-', starting with a "
                             "letter or digit")
        self.max_events = max_events
        self.max_age_s = max_age_s
        #: where unwritable events go at close (default: :func:`ingest.spill.spill_roots`)
        self.spill_roots = spill_roots
        self._seq = 0
        #: the buffers (held for microseconds: recording, taking them for a write, putting them back)
        self._lock = threading.RLock()
        #: one write at a time, in order; taken before ``_lock``, never while holding it
        self._write_lock = threading.RLock()
        self._buffers: dict[tuple[str, date], _Buffer] = {}
        #: events in ``_buffers``; ``_pending`` adds those a write took and has not written yet
        self._buffered = 0
        self._pending = 0
        self._oldest: float | None = None
        #: monotonic time of the last failed flush while events wait (retries back off from it)
        self._failed_at: float | None = None
        self._closed = False
        #: the flush thread was asked for a size flush it has not started yet
        self._size_due = False
        self._start_thread()
        with _REGISTRY_LOCK:
            _LOGS.add(self)
        _install_exit_hooks()

    def _start_thread(self) -> None:
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._timer = threading.Thread(target=self._flush_loop, name="hive-eventlog-flush", daemon=True)
        self._timer.start()

    def _forked(self) -> None:
        """In a child forked while this log existed. The buffered events are the parent's, which
        writes them: dropped here, never written twice (so a record or a write another thread of the
        parent was halfway through does not matter). The child writes its own under a writer id of
        its own (file names never collide with the parent's), with locks - the parent's may be held
        by a thread the child does not have - and a flush thread of its own."""
        self._lock = threading.RLock()
        self._write_lock = threading.RLock()
        self._buffers = {}
        self._buffered = self._pending = 0
        self._oldest = self._failed_at = None
        self._size_due = False
        self._seq = 0
        # a given id keeps its prefix; a pid alone would repeat in a later child that reuses it
        self.writer = f"{self.writer}-{new_writer_id()}" if self._writer_given else new_writer_id()
        if not self._closed:
            self._start_thread()

    # -- recording -------------------------------------------------------------------------------

    def record(self, event: Event) -> None:
        """Buffer one event; a full buffer is flushed by the log's thread, not this one.

        Never raises once the event is buffered: a failed size-triggered flush keeps the events,
        warns on stderr (once per outage), and is retried - a caller retrying ``record`` after an
        exception would otherwise write the event twice. After :meth:`close` the event is written
        at once (spilled, with a line on stderr, if that fails).
        """
        if self._closed:  # written at once, under both locks: a signal waits until it is on disk
            self._record_late((event,))
        else:
            with self._lock:
                self._append_locked(event)
                action = self._after_append_locked()
            if action is not None:
                action()
        if _pending_signal is not None:
            _deliver_pending_signal()

    def record_many(self, events: Iterable[Event]) -> None:
        """:meth:`record` for several events, taking the lock once (a flush due on size runs after
        all of them are buffered; the same guarantees hold)."""
        if self._closed:
            self._record_late(events)
            if _pending_signal is not None:
                _deliver_pending_signal()
            return
        action = None
        try:
            with self._lock:
                before = self._pending
                try:
                    for event in events:
                        self._append_locked(event)
                finally:  # also when an item failed: what was buffered gets its age clock and flush
                    if self._pending != before:
                        action = self._after_append_locked()
        finally:
            if action is not None:
                action()
        if _pending_signal is not None:
            _deliver_pending_signal()

    def _append_locked(self, event: Event) -> None:
        values = event.__dict__
        key = (values["type"], values["ts"].date())
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = _Buffer(type(event))
        buffer.append(values)
        self._buffered += 1
        self._pending += 1

    def _after_append_locked(self) -> Callable[[], None] | None:
        """After buffering: start the age clock; when full, wake the flush thread. Returns what the
        recording thread still has to do once it released the lock: write at once after close, or
        flush itself when it outran the flush thread by another ``max_events`` (or that thread is
        gone: a process forked after the log opened)."""
        if self._oldest is None:
            self._oldest = time.monotonic()
        if self._closed:
            return self._write_late
        if self._buffered >= self.max_events and self._retry_due():
            if self._buffered >= 2 * self.max_events or not self._timer.is_alive():
                return self._flush_now
            if not self._size_due:
                self._size_due = True
                self._wake.set()
        return None

    def _flush_now(self) -> None:
        """A size flush in the recording thread: never raises (the events stay buffered, warned
        about once per outage, retried)."""
        with contextlib.suppress(Exception):
            self._flush(background=True)

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
        try:
            with self._write_lock:
                for day in pc.unique(days).to_pylist():
                    part = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
                    self._write(event_type, day, part)
        finally:
            if _pending_signal is not None:
                _deliver_pending_signal()
        return int(table.num_rows)

    # -- flushing --------------------------------------------------------------------------------

    def flush(self) -> int:
        """Write every event recorded before the call to disk (after a write the flush thread had
        started); returns how many this call wrote."""
        try:
            return self._flush()
        finally:
            if _pending_signal is not None:
                _deliver_pending_signal()

    def _flush(self, *, background: bool = False) -> int:
        """Take the buffers, then write them outside ``_lock``: recording goes on meanwhile. A
        failed write puts back what it did not write, ahead of what was recorded meanwhile
        (``background``: a size or age flush, whose failure is warned about once per outage and
        delays the next attempt; noted while the write lock is held, so no other flush races it)."""
        with self._write_lock:
            with self._lock:
                taken, oldest = list(self._buffers.items()), self._oldest
                self._buffers, self._buffered, self._oldest, self._size_due = {}, 0, None, False
            written = 0
            try:
                while taken:
                    (event_type, day), buffer = taken[0]
                    table = buffer.to_table()
                    self._write(event_type, day, table)
                    del taken[0]
                    written += table.num_rows
                    with self._lock:
                        self._pending -= table.num_rows
            except BaseException as exc:
                with self._lock:
                    self._put_back_locked(taken, oldest)
                if background and isinstance(exc, Exception):
                    if self._failed_at is None:
                        print(f"warning: event log flush failed, events kept in memory: {exc}", file=sys.stderr)
                    self._failed_at = time.monotonic()
                raise
            if written:
                self._failed_at = None
            return written

    def _put_back_locked(self, taken: list[tuple[tuple[str, date], _Buffer]], oldest: float | None) -> None:
        """Buffers a write took and did not write: back in front of what was recorded since."""
        if not taken:
            return
        buffers = dict(taken)
        self._buffered += sum(len(buffer.columns[0]) for buffer in buffers.values())
        for key, newer in self._buffers.items():
            older = buffers.get(key)
            if older is None:
                buffers[key] = newer
            else:
                for column, more in zip(older.columns, newer.columns, strict=True):
                    column.extend(more)
        self._buffers = buffers
        self._oldest = oldest if self._oldest is None or oldest is None else min(oldest, self._oldest)

    def _flush_locked(self) -> int:
        """Write every buffer, holding both locks (close, a late record): nothing is being written."""
        written = 0
        # A failed write keeps that buffer (and the ones after it) for the next flush: nothing is lost.
        for key in list(self._buffers):
            buffer = self._buffers[key]
            table = buffer.to_table()
            self._write(key[0], key[1], table)
            del self._buffers[key]
            written += table.num_rows
            self._buffered -= table.num_rows
            self._pending -= table.num_rows
        self._oldest = None if not self._buffers else self._oldest
        self._failed_at = None
        return written

    def _retry_due(self) -> bool:
        """After a failed flush, the next attempt waits ``max_age_s``: a full disk is not retried
        (and warned about) on every record."""
        failed = self._failed_at
        return failed is None or time.monotonic() - failed >= self.max_age_s

    def _spill_locked(self, error: Exception) -> NoReturn:
        """Move every buffered event to a spill file outside the data directory; raise the report."""
        parts = []
        for (event_type, day), buffer in self._buffers.items():
            self._seq += 1  # the name this writer would have used: importing it back is idempotent
            parts.append((event_type, day, EventFileName(self.writer, self._seq).format(), buffer.to_table()))
        count, reason = self._pending, _reason(error)
        self._buffers.clear()
        self._buffered, self._pending, self._oldest, self._failed_at = 0, 0, None, None
        try:
            where = spill_events(self.data_dir, self.writer, parts, roots=self.spill_roots)
        except OSError as spill_error:
            raise EventsLost(count, self.data_dir, reason, _reason(spill_error)) from error
        raise EventsSpilled(count, self.data_dir, reason, where) from error

    def _record_late(self, events: Iterable[Event]) -> None:
        """Events recorded after close: buffered and written under both locks."""
        with self._write_lock, self._lock:
            for event in events:
                self._append_locked(event)
            self._write_late_locked()

    def _write_late(self) -> None:
        """Events recorded while the log closed: written now (see :meth:`_write_late_locked`)."""
        with self._write_lock, self._lock:
            self._write_late_locked()

    def _write_late_locked(self) -> None:
        """Write what is buffered after close; spilled and reported on stderr if that fails."""
        try:
            self._flush_locked()
        except Exception as exc:
            try:
                self._spill_locked(exc)
            except DataError as report:
                print(f"error: {report}", file=sys.stderr)

    def _write(self, event_type: str, day: date, table: pa.Table) -> None:
        self._seq += 1
        name = EventFileName(self.writer, self._seq).format()
        write_atomic(table, self._datadir.partition(event_type, day) / name)

    def _flush_loop(self) -> None:
        """The flush thread: a size flush as soon as it is asked for, an age flush when one is due."""
        interval = min(max(self.max_age_s / 4, 0.05), 1.0)
        while True:
            self._wake.wait(interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            oldest = self._oldest
            aged = oldest is not None and time.monotonic() - oldest >= self.max_age_s
            if (self._size_due or aged) and self._retry_due():
                with contextlib.suppress(Exception):  # kept buffered; retried after max_age_s, spilled by close()
                    self._flush(background=True)

    @property
    def pending(self) -> int:
        """Events buffered and not yet on disk."""
        return self._pending

    def close(self) -> None:
        """Flush and stop. Idempotent.

        Events that still cannot be written (full disk, read-only or missing directory) are spilled
        outside the data directory and :class:`~ingest.spill.EventsSpilled` is raised (or
        :class:`~ingest.spill.EventsLost` when no spill directory could take them either).
        """
        try:
            with self._write_lock, self._lock:  # after a write in progress: every event is in _buffers
                if self._closed:
                    return
                failure: Exception | None = None
                try:
                    self._flush_locked()
                except Exception as exc:
                    failure = exc
                self._closed = True
                self._stop.set()
                self._wake.set()
                if failure is not None:
                    self._spill_locked(failure)
        finally:
            if _pending_signal is not None:
                _deliver_pending_signal()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(error: BaseException) -> str:
    """What went wrong, in a few words (``No space left on device``, ``Read-only file system``)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


# -- process exit: atexit flushes every open log; SIGTERM unwinds like Ctrl-C ---------------------

#: every log of the process, closed ones too (a record after close still takes the locks): what
#: exit flushes (the open ones), SIGTERM's critical section and a forked child look at
_LOGS: weakref.WeakSet[EventLog] = weakref.WeakSet()
#: guards the registry: a log opened in another thread must not change it while it is read.
#: Re-entrant: the SIGTERM handler reads it in the main thread, which may be holding it at that
#: instant (opening a log)
_REGISTRY_LOCK = threading.RLock()
_hooks_installed = False


def _all_logs() -> list[EventLog]:
    with _REGISTRY_LOCK:
        return list(_LOGS)


def _flush_all() -> None:
    for log in _all_logs():
        if log._closed:
            continue
        try:
            log.close()
        except DataError as report:  # spilled (or lost): the one line says where and what to do
            print(f"error: {report}", file=sys.stderr)
        except Exception as exc:  # never a traceback at exit
            print(f"error: event log {log.data_dir}: {_reason(exc)}", file=sys.stderr)


def _inside_critical_section() -> bool:
    # Handlers run on the main thread between bytecodes: only its own lock ownership matters.
    return any(log._lock._is_owned() or log._write_lock._is_owned()  # type: ignore[attr-defined]
               for log in _all_logs())  # closed ones too: a record after close writes under both locks


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _pending_signal, _terminating
    if _terminating or not threading.main_thread().is_alive():
        # Already unwinding (a second cancellation inside the first one's cleanup could record a
        # stream's end twice; SIGKILL remains for a stuck process), or the interpreter is exiting
        # and atexit is about to flush: nothing left to cancel, and no traceback at exit.
        return
    if _inside_critical_section():
        # Interrupted inside record()/flush() (half-appended columns or batch, a buffer written but
        # not yet dropped): unwinding from here would lose or duplicate events. Finish that section first.
        _pending_signal = signum
        return
    _terminating = True
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    raise Terminated()


_previous_sigterm: Any = None
#: a SIGTERM that arrived while the main thread was inside record()/flush(): delivered on the way out
_pending_signal: int | None = None
#: Terminated was raised: later SIGTERMs are ignored
_terminating = False


def _deliver_pending_signal() -> None:
    global _pending_signal
    if threading.current_thread() is not threading.main_thread():
        return  # the timer thread's flush: the signal belongs to the main thread
    if _pending_signal is None or _inside_critical_section():
        return  # still inside a (nested) critical section
    signum, _pending_signal = _pending_signal, None
    _on_sigterm(signum, None)


def _install_exit_hooks() -> None:
    global _hooks_installed, _previous_sigterm
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_flush_all)
    os.register_at_fork(after_in_child=_after_fork_in_child)
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None) or callable(previous):
            _previous_sigterm = previous if callable(previous) else None
            signal.signal(signal.SIGTERM, _on_sigterm)


def _after_fork_in_child() -> None:
    """In a forked child: every log starts afresh (:meth:`EventLog._forked`). Nothing is taken before
    the fork, so a fork never waits and no signal is held: whatever another thread of the parent was
    doing (a record, a write, the registry) it does not do here, and its locks are replaced."""
    global _REGISTRY_LOCK, _pending_signal
    _REGISTRY_LOCK = threading.RLock()
    _pending_signal = None  # a signal the parent got is the parent's
    for log in list(_LOGS):
        log._forked()
