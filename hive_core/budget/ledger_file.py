"""The ledger's file: its schema and upgrades, read-only opening, SQLite failures as one line, and
moving a corrupt file aside. :class:`~hive_core.budget.ledger.Ledger` is the accounting on top.

Every SQLite error the ledger meets passes :func:`sqlite_errors`: an unreadable file is
:class:`~hive_core.errors.CorruptLedger` (the file, and ``hive-jobs rebuild-ledger``, which moves it aside with
:func:`move_aside` and rebuilds it from the events); a locked, read-only or full one says so.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from hive_core.errors import CorruptLedger, DataError, HiveError, LockHeld
from hive_core.store.lock import file_lock

__all__ = [
    "connect_readonly",
    "create_or_upgrade",
    "holder_alive",
    "lock_path_of",
    "move_aside",
    "sqlite_errors",
    "translate",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, request_id TEXT, app TEXT, model TEXT NOT NULL,
    amount_nusd INTEGER NOT NULL, state TEXT NOT NULL, created REAL NOT NULL,
    finished REAL, cost_nusd INTEGER
);
CREATE TABLE IF NOT EXISTS spend (
    scope TEXT NOT NULL, day TEXT NOT NULL, amount_nusd INTEGER NOT NULL, PRIMARY KEY (scope, day)
) WITHOUT ROWID;
"""
#: columns added since the first schema: (name, declaration). ``in_events`` defaults to 1 so that
#: settlements written before it existed are left to the events, as rebuilds always did.
ADDED_COLUMNS = (
    ("pid", "INTEGER"), ("host", "TEXT"), ("event_id", "TEXT"), ("billed_model", "TEXT"), ("day", "TEXT"),
    ("in_events", "INTEGER NOT NULL DEFAULT 1"), ("key", "TEXT"),
)
INDEXES = """
CREATE INDEX IF NOT EXISTS reservations_in_flight ON reservations(created) WHERE state = 'reserved';
CREATE INDEX IF NOT EXISTS reservations_not_in_events ON reservations(state) WHERE in_events = 0;
"""


def translate(path: Path, exc: sqlite3.Error) -> HiveError:
    """An SQLite failure as the one line a user reads: which file, and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    reason = str(exc)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return CorruptLedger(path, reason)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return LockHeld(f"the budget ledger {path} stayed locked by another process ({reason}); try again")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return DataError(f"cannot write the budget ledger {path} ({reason}): make {path.parent} writable")
    if name.startswith("SQLITE_FULL") or (name.startswith("SQLITE_IOERR") and _disk_full(path.parent)):
        # (a full disk often reaches SQLite as an I/O error: the WAL's shared memory cannot grow)
        return DataError(f"cannot write the budget ledger {path}: the disk is full; free space and retry")
    return DataError(f"the budget ledger {path} failed ({reason}): check the disk, or run "
                     "`hive-jobs rebuild-ledger`")


def _disk_full(directory: Path) -> bool:
    try:
        return os.statvfs(directory).f_bavail == 0
    except OSError:
        return False


@contextlib.contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """Turn an SQLite failure inside the block into the one-line error of :func:`translate`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(path, exc) from exc


def lock_path_of(path: Path) -> Path:
    """The side file whose ``flock`` serialises the ledger's writers."""
    return path.with_name(path.name + ".lock")


def create_or_upgrade(con: sqlite3.Connection) -> None:
    """Create the tables, add the columns a ledger written by an older Hive lacks, and the indexes
    (inside the caller's write transaction)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            con.execute(statement)
    have = {row[1] for row in con.execute("PRAGMA table_info(reservations)")}
    for name, declaration in ADDED_COLUMNS:
        if name not in have:
            con.execute(f"ALTER TABLE reservations ADD COLUMN {name} {declaration}")
    for statement in INDEXES.split(";"):
        if statement.strip():
            con.execute(statement)


def connect_readonly(path: Path, busy_timeout_s: float) -> sqlite3.Connection | None:
    """A connection that never writes (``None`` when there is no ledger yet)."""
    if not path.exists():
        return None
    try:
        return _connect(f"file:{path}?mode=ro", busy_timeout_s)
    except sqlite3.OperationalError as exc:
        if not (getattr(exc, "sqlite_errorname", "") or "").startswith("SQLITE_CANTOPEN"):
            raise
    # A WAL database on a read-only filesystem: its -shm cannot be created. Nobody can write it
    # either, so reading it as immutable is exact.
    return _connect(f"file:{path}?mode=ro&immutable=1", busy_timeout_s)


def _connect(uri: str, busy_timeout_s: float) -> sqlite3.Connection:
    con = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    try:
        con.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opening is lazy: fail here
    except BaseException:
        con.close()
        raise
    return con


def holder_alive(pid: int | None, host: str | None, here: str) -> bool:
    """Whether a reservation's process may still settle it (another host's: cannot tell, so yes)."""
    if pid is None:
        return False  # written before holders were recorded: only staleness can tell
    if host != here:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True


def move_aside(path: Path) -> Path:
    """Rename an unreadable ledger (with its ``-wal``/``-shm`` files) to ``<name>.corrupt-<n>``,
    the first free ``n``; returns the new path. Nothing is deleted."""
    n = 1
    while any(Path(f"{path}.corrupt-{n}{suffix}").exists() for suffix in ("", "-wal", "-shm")):
        n += 1
    target = Path(f"{path}.corrupt-{n}")
    with file_lock(lock_path_of(path)):  # no writer opens it half-moved
        for suffix in ("-wal", "-shm", ""):  # the main file last: a WAL never meets a new database
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{path}{suffix}", f"{target}{suffix}")
    return target
