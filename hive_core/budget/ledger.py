"""The budget ledger: in-flight reservations and settled spend, in one small SQLite database.

    <data>/state/budget-ledger.sqlite3        (DataDir.ledger)
        reservations(id, request_id, app, model, key, amount_nusd, state, created, finished, cost_nusd,
                     pid, host,                          who holds it (a rebuild keeps live ones)
                     event_id, billed_model, day, in_events)     what settled it, and where
                     state: reserved -> settled | released | expired
        spend(scope, day, amount_nusd)    settled spend per scope and UTC day

Amounts are integer nano-dollars (1e-9 USD), so sums are exact and a cent is never lost to float
rounding. :meth:`Ledger.reserve` reads spend and in-flight reservations, checks every applicable
limit and inserts the reservation in ONE ``BEGIN IMMEDIATE`` transaction: no two processes can
both see the same headroom. (A gateway that checks in one step and records in another lets
concurrent traffic through on the same stale number.) Write transactions are also serialised by an
``flock`` on a side file, which wakes a blocked process the instant the lock is free
(:mod:`hive_core.store.sqlite_wal`).

WAL with ``synchronous=NORMAL``: a commit survives the process crashing, the last few may be lost
if the machine loses power. That is acceptable because the ledger is a projection of the events:
``hive-jobs rebuild-ledger`` recreates the spend from the ``usage`` events. A reservation left by a
crashed process stops counting after ``stale_after_s``, or at the next rebuild once its process is
gone.

**The rebuild never lowers spend that is real.** Each settlement records the ``event_id`` of the
usage event it came from (:class:`~hive_core.budget.SettlingSink` settles *before* it passes the
event on, so an event on disk always has its settlement in the ledger already) and that event's
UTC day. :meth:`Ledger.rebuild` holds the ledger's write lock while it reads the events, so no
settlement slips in between its read and its replace, and sets, for every scope and day::

    spend = the usage events on disk  +  settlements whose usage event is not on disk yet

(still in a writer's buffer, or in a spill file). A settlement whose event the rebuild found is
marked ``in_events`` and counted by the event from then on, so nothing counts twice. A settlement
without an event id (settled directly, not from a usage event) is matched by request id and billed
model; if its event reached the disk before a rebuild and it settled after, it counts twice (over,
never under - the settling sink has no such window). A settlement tried again after its first try
failed (the gateway's, :meth:`hive_core.ask.ChainRun.answered`) carries its usage event's id and
day: a rebuild that ran between the event reaching the disk and the second try leaves it counted
twice only until the next rebuild, which matches it by that id. Reservations still in flight are
kept while their process lives and they are not stale; the others are expired. The price:
reservations wait while a rebuild reads the events (about 3 s for 300k usage events on a busy
2-core machine).

**Virtual keys' scopes (``key:<key_id>``) are never lowered by a rebuild.** Usage events name the
gateway key a request came with since schema 3, so a rebuild counts a key's spend from them too,
and keeps the larger of that and what the ledger holds: the events of a period that began before
the upgrade hold less than was spent. A ledger moved aside as corrupt gets its keys' spend back from
the events (all of it, for periods that began after the upgrade).

The accounting itself (shared with the PostgreSQL ledger for several hosts,
:mod:`hive_core.budget.ledger_pg`) is :mod:`hive_core.budget.ledger_core`; this module supplies
SQLite's transactions and exclusion. The file itself - schema and upgrades, read-only opening,
SQLite errors as one line, a corrupt file moved aside - is :mod:`hive_core.budget.ledger_file`.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hive_core.budget.ledger_core import (
    Breach,
    LedgerCore,
    RebuildCounts,
    Settlement,
    from_nusd,
    request_scopes,
    to_nusd,
)
from hive_core.budget.ledger_file import (
    connect_readonly,
    create_or_upgrade,
    lock_path_of,
    sqlite_errors,
)
from hive_core.errors import DataError
from hive_core.store.sqlite_wal import WalDb

__all__ = [
    "Breach",
    "Ledger",
    "RebuildCounts",
    "Settlement",
    "from_nusd",
    "request_scopes",
    "to_nusd",
]

#: how long a process waits for the ledger before giving up (seconds)
DEFAULT_BUSY_TIMEOUT_S = 30.0


class Ledger(LedgerCore):
    """The ledger file of one data directory; one instance per process, thread-safe.

    ``readonly=True`` (``hive budget show``) never writes, never creates the file and works on a
    read-only data directory; a missing ledger then reads as empty. Every write transaction is the
    only one (thread mutex, ``flock``, ``BEGIN IMMEDIATE``), so :meth:`_hold` has nothing to add.
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._db: WalDb | None = None
        self._con: sqlite3.Connection | None = None
        try:
            if readonly:
                with sqlite_errors(self.path):
                    self._con = connect_readonly(self.path, busy_timeout_s)
            else:
                self._open(busy_timeout_s)
        except BaseException:
            self.close()
            raise

    def _open(self, busy_timeout_s: float) -> None:
        lock_path = lock_path_of(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_file = open(lock_path, "a+b")  # noqa: SIM115 - WalDb holds it for the ledger's life
        except OSError as exc:
            raise DataError(f"cannot open the budget ledger's lock {lock_path} ({exc.strerror}): "
                            f"make {lock_path.parent} writable") from exc
        self._db = WalDb(self.path, lock_file, busy_timeout_s=busy_timeout_s, synchronous="NORMAL",
                         errors=functools.partial(sqlite_errors, self.path))
        self._con = self._db.con
        with self._write() as con:
            create_or_upgrade(con)

    def close(self) -> None:
        """Close the database connection. Idempotent."""
        if self._db is not None:
            self._db.close()
        elif self._con is not None:
            with contextlib.suppress(sqlite3.Error):
                self._con.close()

    def __enter__(self) -> Ledger:
        return self

    def _write(self, *, alone: bool = False) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One write transaction: thread mutex, then the cross-process flock, then BEGIN IMMEDIATE
        (always alone)."""
        assert self._db is not None and not self.readonly, "a read-only ledger does not write"
        return self._db.write()

    def try_hold(self) -> bool:
        """:meth:`LedgerCore.try_hold`, on the file's :class:`~hive_core.store.sqlite_wal.WalDb`."""
        return self._db is not None and self._db.try_hold()

    def unhold(self) -> None:
        """Let go of what :meth:`try_hold` took."""
        assert self._db is not None
        self._db.unhold()

    def never_wait_on(self, thread: int | None) -> None:
        """:meth:`LedgerCore.never_wait_on`, on the file's :class:`~hive_core.store.sqlite_wal.WalDb`."""
        if self._db is not None:
            self._db.never_wait_on(thread)

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        if self._con is None:
            return []  # a read-only view of a ledger that does not exist yet
        with sqlite_errors(self.path):
            return self._con.execute(sql, params).fetchall()
