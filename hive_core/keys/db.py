"""A small private SQLite file that several processes share: the virtual keys and their counters.

Why SQLite: every gateway worker and the CLI open the same file, a revocation committed by one is
seen by the next read of every other (no cache to invalidate), and a write transaction
(``BEGIN IMMEDIATE``, behind an ``flock`` as in the budget ledger: :mod:`hive_core.store.sqlite_wal`)
is the cross-process mutual exclusion the rate limiter needs.

Private: the folder is ``0700`` and the file ``0600``, created so before SQLite opens it (SQLite
gives its ``-wal`` and ``-shm`` side files the database's mode). A file found with a wider mode is
tightened. An SQLite failure is one line naming the file (:func:`sqlite_errors`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hive_core.errors import DataError, HiveError, LockHeld
from hive_core.store.atomic import PRIVATE_MODE
from hive_core.store.sqlite_wal import WalDb

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
        self._db: WalDb | None = None
        _private_file(self.path)
        lock = self.path.with_name(self.path.name + ".lock")
        _private_file(lock)
        self._db = WalDb(self.path, open(lock, "r+b"),  # noqa: SIM115 - WalDb holds it, then closes it
                         busy_timeout_s=BUSY_TIMEOUT_S, synchronous="NORMAL" if durable else "OFF",
                         errors=functools.partial(sqlite_errors, self.path))
        try:
            with self.write() as con:
                for statement in schema.split(";"):
                    if statement.strip():
                        con.execute(statement)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection and the lock file. Idempotent."""
        if self._db is not None:
            self._db.close()

    def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One write transaction: thread mutex, then the cross-process flock, then BEGIN IMMEDIATE."""
        assert self._db is not None, "closed"
        return self._db.write()

    def try_hold(self) -> bool:
        """The writers' locks, taken only if free now (:meth:`~hive_core.store.sqlite_wal.WalDb.try_hold`)."""
        assert self._db is not None, "closed"
        return self._db.try_hold()

    def unhold(self) -> None:
        """Let go of what :meth:`try_hold` took."""
        assert self._db is not None, "closed"
        self._db.unhold()

    def never_wait_on(self, thread: int | None) -> None:
        """:meth:`~hive_core.store.sqlite_wal.WalDb.never_wait_on`."""
        assert self._db is not None, "closed"
        self._db.never_wait_on(thread)

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """The rows of one query, read from the last committed state of every process."""
        db = self._db
        assert db is not None and db.con is not None, "closed"
        with db.mutex, sqlite_errors(self.path):
            return db.con.execute(sql, params).fetchall()

    def read_one(self, sql: str, params: Sequence[object] = ()) -> Any:
        """The first row of one query, or ``None``. (On every gateway request: no generator-based
        context manager, which costs more than the read itself on a loaded machine.)"""
        db = self._db
        assert db is not None and db.con is not None, "closed"
        with db.mutex:
            try:
                return db.con.execute(sql, params).fetchone()
            except sqlite3.Error as exc:
                raise translate(self.path, exc) from exc
