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

__all__ = ["WalDb"]


class WalDb:
    """``path`` open in WAL mode, with ``lock_file`` (open, owned from now on) as the writers' flock.

    ``synchronous``: ``NORMAL`` (a commit survives a crash of the process; the last few may be lost
    in a power cut) or ``OFF`` (counters whose loss costs nothing that matters).
    """

    def __init__(self, path: Path, lock_file: BinaryIO, *, busy_timeout_s: float, synchronous: str,
                 errors: Callable[[], AbstractContextManager[None]]) -> None:
        self.path = path
        #: the process's threads take turns on the one connection
        self.mutex = threading.Lock()
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

    @contextlib.contextmanager
    def _flocked(self) -> Iterator[None]:
        assert self._lock_file is not None, "closed"
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, the only one anywhere: rolled back if the block raises."""
        con = self.con
        assert con is not None, "closed"
        with self.mutex, self._flocked(), self._errors():
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
