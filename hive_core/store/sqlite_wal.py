"""One SQLite connection in WAL mode, shared by a process's threads, whose write transactions exclude
every other writer - thread or process: what the budget ledger (:mod:`hive_core.budget.ledger`) and
the virtual keys (:mod:`hive_core.keys.db`) each keep open for the life of the process.

A write transaction is the thread mutex, then an ``flock`` on a side file, then ``BEGIN IMMEDIATE``.
The ``flock`` is there for speed: a process blocked on it is woken the instant the lock is free,
where SQLite's own busy handler sleeps in steps of milliseconds (the busy timeout stays as the
backstop). The side file is opened once, by the owner, so that a lock it cannot create is that
owner's one clear error, and each hold is one ``flock`` call (~3 us), not an open and a close
(~30 us, :func:`hive_core.store.lock.file_lock`), on every request.

``errors`` is the owner's translation of an SQLite failure into its one-line error (the file and
what to do differ between a ledger and a key store).

**A thread that must never wait** (a gateway's event loop: every stream it relays stalls with it)
takes the locks with :meth:`WalDb.try_hold` - at once, or not at all, when another thread or process
holds them - and its writes until :meth:`WalDb.unhold` reuse them; held elsewhere, its caller does
the work in a thread that may wait (:mod:`hive_gateway.lane`). Named with :meth:`WalDb.never_wait_on`,
that thread never waits even for a write it did not hold for: the write is refused with
:class:`~hive_core.errors.WouldWait` instead, a loud error where a forgotten hold would have stalled
the loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from hive_core.errors import WouldWait

__all__ = ["WalDb"]


class WalDb:
    """``path`` open in WAL mode, with ``lock_file`` (open, owned from now on) as the writers' flock.

    ``synchronous``: ``NORMAL`` (a commit survives a crash of the process; the last few may be lost
    in a power cut) or ``OFF`` (counters whose loss costs nothing that matters).
    """

    def __init__(self, path: Path, lock_file: BinaryIO, *, busy_timeout_s: float, synchronous: str,
                 errors: Callable[[], AbstractContextManager[None]]) -> None:
        self.path = path
        #: the process's threads take turns on the one connection (re-entrant: a thread holding the
        #: locks, :meth:`try_hold`, writes under them)
        self.mutex = threading.RLock()
        #: how many holds and writes of the mutex's owner are inside the flock (it is taken at the
        #: first, released at the last)
        self._flocks = 0
        #: the thread that must never wait (:meth:`never_wait_on`)
        self._never_waits: int | None = None
        self._lock_file: BinaryIO | None = lock_file
        self._errors = errors
        self.con: sqlite3.Connection | None = None
        try:
            with errors():
                self.con = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None,
                                           check_same_thread=False)
                self.con.execute(f"PRAGMA synchronous = {synchronous}")
                with self.mutex, self._flocked():  # journal_mode needs the file to itself
                    self.con.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection and the lock file. Idempotent."""
        if self.con is not None:
            with contextlib.suppress(sqlite3.Error):
                self.con.close()
            self.con = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def never_wait_on(self, thread: int | None) -> None:
        """From now on, a write on ``thread`` (a :func:`threading.get_ident`; ``None``: none) that
        would wait for a lock held elsewhere raises :class:`~hive_core.errors.WouldWait` instead."""
        self._never_waits = thread

    def try_hold(self) -> bool:
        """Take the writers' locks if no other thread or process holds them, without waiting: True
        when this thread now holds them until :meth:`unhold` (its writes meanwhile reuse them)."""
        assert self._lock_file is not None, "closed"
        if not self.mutex.acquire(blocking=False):
            return False
        try:
            if self._flocks == 0:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.mutex.release()
            return False
        except BaseException:
            self.mutex.release()
            raise
        self._flocks += 1
        return True

    def unhold(self) -> None:
        """Let go of what :meth:`try_hold` took."""
        self._unflock()
        self.mutex.release()

    def _unflock(self) -> None:
        self._flocks -= 1
        if self._flocks == 0 and self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _flocked(self) -> Iterator[None]:
        assert self._lock_file is not None, "closed"
        if self._flocks == 0:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        self._flocks += 1
        try:
            yield
        finally:
            self._unflock()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, the only one anywhere: rolled back if the block raises."""
        con = self.con
        assert con is not None, "closed"
        never_waits = self._never_waits is not None and threading.get_ident() == self._never_waits
        if never_waits and not self.try_hold():
            raise WouldWait(f"{self.path} is locked by another writer and this thread may not wait for it: "
                            "retry shortly")
        try:
            with self.mutex, self._flocked(), self._errors():
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
        finally:
            if never_waits:
                self.unhold()
