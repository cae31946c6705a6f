"""A small private SQLite file that several processes share: the virtual keys and their counters.

Why SQLite: every gateway worker and the CLI open the same file, a revocation committed by one is
seen by the next read of every other (no cache to invalidate), and a write transaction
(``BEGIN IMMEDIATE``) is the cross-process mutual exclusion the rate limiter needs. As in the budget
ledger (:mod:`hive_core.budget.ledger`), writers also take an ``flock`` on a side file first: a
blocked process is woken the instant the lock is free, where SQLite's busy handler sleeps in steps
of milliseconds; the busy timeout stays as the backstop.

Private: the folder is ``0700`` and the file ``0600``, created so before SQLite opens it (SQLite
gives its ``-wal`` and ``-shm`` side files the database's mode). A file found with a wider mode is
tightened. An SQLite failure is one line naming the file (:func:`sqlite_errors`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from hive_core.errors import DataError, HiveError, LockHeld
from hive_core.store.atomic import PRIVATE_MODE

__all__ = ["PRIVATE_DIR_MODE", "SharedDb", "sqlite_errors", "translate"]

#: the mode of the folder holding the keys: only the user may list or enter it
PRIVATE_DIR_MODE = 0o700
#: how long a process waits for another's write transaction before giving up (seconds)
BUSY_TIMEOUT_S = 30.0


def translate(path: Path, exc: sqlite3.Error) -> HiveError:
    """An SQLite failure as one line: which file, and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return LockHeld(f"{path} stayed locked by another process ({exc}); try again")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return DataError(f"{path} is not a readable database ({exc}): move it aside; its keys must be created again")
    return DataError(f"{path} failed ({exc}): check that {path.parent} is writable and the disk has room")


@contextlib.contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """An SQLite failure inside the block as :func:`translate`'s one line."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(path, exc) from exc


def _private_file(path: Path) -> None:
    """Create ``path`` ``0600`` (or tighten it), in a ``0700`` folder."""
    try:
        path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        os.chmod(path.parent, PRIVATE_DIR_MODE)  # mkdir's mode passes the umask; an old folder is tightened
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE))
        os.chmod(path, PRIVATE_MODE)
    except OSError as exc:
        raise DataError(f"cannot create {path} ({exc.strerror}): make {path.parent.parent} writable") from exc


class SharedDb:
    """One open connection to a private SQLite file in WAL mode; thread-safe, one per process.

    ``schema``: statements run once at opening (``CREATE TABLE IF NOT EXISTS ...``).
    ``durable=False`` commits without waiting for the disk (``synchronous=OFF``): for counters whose
    loss in a power cut only forgets who was admitted in the last seconds.
    """

    def __init__(self, path: Path, schema: str, *, durable: bool = True) -> None:
        self.path = Path(path)
        self._mutex = threading.Lock()
        self._lock_file: BinaryIO | None = None
        self._con: sqlite3.Connection | None = None
        try:
            _private_file(self.path)
            lock = self.path.with_name(self.path.name + ".lock")
            _private_file(lock)
            self._lock_file = open(lock, "r+b")  # noqa: SIM115 - held for the connection's life
            with sqlite_errors(self.path):
                self._con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                            check_same_thread=False)
                self._con.execute(f"PRAGMA synchronous = {'NORMAL' if durable else 'OFF'}")
                with self._mutex, self._flocked():  # journal_mode needs the file to itself
                    self._con.execute("PRAGMA journal_mode = WAL")
            with self.write() as con:
                for statement in schema.split(";"):
                    if statement.strip():
                        con.execute(statement)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection and the lock file. Idempotent."""
        if self._con is not None:
            with contextlib.suppress(sqlite3.Error):
                self._con.close()
            self._con = None
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
        """One write transaction: thread mutex, then the cross-process flock, then BEGIN IMMEDIATE."""
        con = self._con
        assert con is not None, "closed"
        with self._mutex, self._flocked(), sqlite_errors(self.path):
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """The rows of one query, read from the last committed state of every process."""
        con = self._con
        assert con is not None, "closed"
        with self._mutex, sqlite_errors(self.path):
            return con.execute(sql, params).fetchall()

    def read_one(self, sql: str, params: Sequence[object] = ()) -> Any:
        """The first row of one query, or ``None``. (On every gateway request: no generator-based
        context manager, which costs more than the read itself on a loaded machine.)"""
        con = self._con
        assert con is not None, "closed"
        with self._mutex:
            try:
                return con.execute(sql, params).fetchone()
            except sqlite3.Error as exc:
                raise translate(self.path, exc) from exc
