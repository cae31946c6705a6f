"""The shared SQLite connection's write locks: taken only when free (``try_hold``), reused by the
holder's writes, and refused rather than waited for on a thread that must never wait."""

from __future__ import annotations

import contextlib
import fcntl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hive_core.errors import LockHeld, TransientError, WouldWait
from hive_core.store.sqlite_wal import WalDb
from tests.plugins.processes import flock_held_elsewhere


@pytest.fixture
def db(tmp_path: Path) -> Iterator[WalDb]:
    opened = WalDb(tmp_path / "shared.sqlite3", (tmp_path / "shared.lock").open("a+b"), busy_timeout_s=10.0,
                   synchronous="NORMAL", errors=contextlib.nullcontext)
    with opened.write() as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    yield opened
    opened.close()


def _in_another_thread(fn: Callable[[], object]) -> object:
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join(timeout=10)
    return out[0]


def _free_for_another_process(lock: Path) -> bool:
    with lock.open("a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return True


def test_try_hold_takes_the_locks_only_when_free_and_the_holder_writes_under_them(db: WalDb, tmp_path: Path) -> None:
    lock = tmp_path / "shared.lock"
    assert db.try_hold()
    try:
        assert not _in_another_thread(db.try_hold)  # another thread of the process
        assert not _free_for_another_process(lock)  # another process
        with db.write() as con:  # the holder's writes reuse the hold
            con.execute("INSERT INTO t VALUES (1)")
        with db.write() as con:
            con.execute("INSERT INTO t VALUES (2)")
        assert not _free_for_another_process(lock)  # a write inside the hold does not let go of it
    finally:
        db.unhold()
    assert _free_for_another_process(lock)
    assert _in_another_thread(lambda: _held_and_let_go(db))
    with flock_held_elsewhere(lock):
        assert not db.try_hold()  # held by another process: refused at once
    assert db.try_hold()
    db.unhold()
    assert db.con is not None and db.con.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]


def test_a_thread_that_may_never_wait_is_refused_where_it_would_have_waited(db: WalDb, tmp_path: Path) -> None:
    db.never_wait_on(threading.get_ident())
    with db.write() as con:  # free: written as before
        con.execute("INSERT INTO t VALUES (1)")
    assert _free_for_another_process(tmp_path / "shared.lock")  # and let go of
    with flock_held_elsewhere(tmp_path / "shared.lock"):
        started = time.monotonic()
        with pytest.raises(WouldWait) as refused, db.write() as con:
            con.execute("INSERT INTO t VALUES (2)")
        assert time.monotonic() - started < db_busy_timeout(db) / 2  # refused, not waited for
        assert isinstance(refused.value, LockHeld) and isinstance(refused.value, TransientError)
        assert "shared.sqlite3 is locked by another writer" in str(refused.value)
        # any other thread still waits for the lock, as before, and writes once it is free
        waiting = threading.Thread(target=lambda: _insert(db, 3))
        waiting.start()
        time.sleep(0.2)
        assert waiting.is_alive()
    waiting.join(timeout=10)
    assert not waiting.is_alive()
    with db.write() as con:
        con.execute("INSERT INTO t VALUES (4)")
    assert db.con is not None and db.con.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (3,), (4,)]


def _held_and_let_go(db: WalDb) -> bool:
    if not db.try_hold():
        return False
    db.unhold()
    return True


def db_busy_timeout(db: WalDb) -> float:
    assert db.con is not None
    return float(db.con.execute("PRAGMA busy_timeout").fetchone()[0]) / 1000


def _insert(db: WalDb, x: int) -> None:
    with db.write() as con:
        con.execute("INSERT INTO t VALUES (?)", (x,))
