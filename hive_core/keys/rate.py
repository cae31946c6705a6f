"""Requests per minute per virtual key, exact across every gateway worker and the CLI.

    <data>/state/keys/rate.sqlite3      (DataDir.keys_rate, 0600)
        ring(key_id, slot, ts)          the key's last ``rpm`` admissions, oldest at ``head.next``
        head(key_id, size, next)

A sliding log, kept as a ring of ``rpm`` slots per key: a request is admitted when the oldest of the
last ``rpm`` admissions is at least a window (60 s) old; it then takes that slot. Reading and
writing happen in one ``BEGIN IMMEDIATE`` transaction, so N workers never see the same free slot.
It is exact - no 60-second interval, wherever it starts, holds more than ``rpm`` admissions (a fixed
per-minute window lets twice that through across a minute boundary, a token bucket up to
``2 * rpm - 1``) - and costs O(1) per request whatever ``rpm`` is (a log of timestamps would be
counted, O(rpm)).

Times from several processes may arrive a little out of order (a worker reads its clock, then waits
for the lock); an admission is stored at ``max(now, the previous admission)``, never earlier, so the
ring stays in order and the check can only be stricter than the true times, never looser.
A refused request learns when the oldest admission leaves the window: its ``Retry-After``.

The counters are not worth a disk sync (``synchronous=OFF``): a power cut forgets only recent
admissions. A key whose ``rpm`` changed starts a new ring.
"""

from __future__ import annotations

from datetime import datetime

from hive_core.keys.db import SharedDb
from hive_core.keys.key import VirtualKey
from hive_core.store.datadir import DataDir

__all__ = ["WINDOW_S", "RateLimiter"]

#: the window a key's ``rpm`` counts over, seconds
WINDOW_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS head (key_id TEXT PRIMARY KEY, size INTEGER NOT NULL, next INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ring (
    key_id TEXT NOT NULL, slot INTEGER NOT NULL, ts REAL NOT NULL, PRIMARY KEY (key_id, slot)
) WITHOUT ROWID
"""


class RateLimiter:
    """Admits or refuses a key's requests by its ``rpm``; one per process, thread-safe.
    ``window_s``: the window ``rpm`` counts over (60; shorter only in tests)."""

    def __init__(self, data: DataDir, *, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._db = SharedDb(data.keys_rate, SCHEMA, durable=False)

    def close(self) -> None:
        """Close the database. Idempotent."""
        self._db.close()

    def __enter__(self) -> RateLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def try_hold(self) -> bool:
        """The counters' write locks, taken only if free now (a gateway's event loop never waits:
        :mod:`hive_gateway.lane`); held until :meth:`unhold`."""
        return self._db.try_hold()

    def unhold(self) -> None:
        """Let go of what :meth:`try_hold` took."""
        self._db.unhold()

    def never_wait_on(self, thread: int | None) -> None:
        """A count on ``thread`` that would wait raises :class:`~hive_core.errors.WouldWait` instead."""
        self._db.never_wait_on(thread)

    def acquire(self, key: VirtualKey, *, now: datetime) -> float | None:
        """Count one request of ``key`` at ``now``: ``None`` when it is admitted, else the seconds
        until one would be (``Retry-After``); a refused request is not counted. A key without an
        ``rpm`` is always admitted, without touching the file."""
        if key.rpm is None:
            return None
        stamp = now.timestamp()
        with self._db.write() as con:
            head = con.execute("SELECT size, next FROM head WHERE key_id = ?", (key.key_id,)).fetchone()
            if head is None or head[0] != key.rpm:  # new key, or a new rpm: a new ring
                con.execute("DELETE FROM ring WHERE key_id = ?", (key.key_id,))
                head = (key.rpm, 0)
            size, slot = head
            oldest = con.execute("SELECT ts FROM ring WHERE key_id = ? AND slot = ?", (key.key_id, slot)).fetchone()
            if oldest is not None and stamp - oldest[0] < self.window_s:
                return float(oldest[0]) + self.window_s - stamp
            newest = con.execute("SELECT ts FROM ring WHERE key_id = ? AND slot = ?",
                                 (key.key_id, (slot - 1) % size)).fetchone()
            stored = max(stamp, newest[0]) if newest is not None else stamp
            con.execute("INSERT OR REPLACE INTO ring (key_id, slot, ts) VALUES (?, ?, ?)", (key.key_id, slot, stored))
            con.execute("INSERT OR REPLACE INTO head (key_id, size, next) VALUES (?, ?, ?)",
                        (key.key_id, size, (slot + 1) % size))
        return None
