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
``flock`` on a side file: a blocked process is woken the instant the lock is free, where SQLite's
own busy handler sleeps in steps of milliseconds; the busy timeout stays as a backstop.

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
never under - the settling sink has no such window). Reservations still in flight are kept while
their process lives and they are not stale; the others are expired. The price: reservations wait
while a rebuild reads the events (about 3 s for 300k usage events on a busy 2-core machine).

**Virtual keys' scopes (``key:<key_id>``) are the ledger's own count.** The events name a request's
app and model but not the gateway key it came with, so a rebuild cannot recompute them: it keeps
their spend as settled here (never lowered) and ignores any ``key:`` row a reader returns. A ledger
moved aside as corrupt starts the keys' periods from zero.

The file itself - schema and upgrades, read-only opening, SQLite errors as one line, a corrupt
file moved aside - is :mod:`hive_core.budget.ledger_file`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from hive_core.budget.config import Limit
from hive_core.budget.ledger_file import (
    connect_readonly,
    create_or_upgrade,
    holder_alive,
    lock_path_of,
    sqlite_errors,
)
from hive_core.errors import DataError
from hive_core.period import BudgetWindow, Period

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
NUSD_PER_USD = 1_000_000_000


def to_nusd(usd: float) -> int:
    """USD as integer nano-dollars."""
    return round(usd * NUSD_PER_USD)


def from_nusd(nusd: int) -> float:
    """Nano-dollars as USD."""
    return nusd / NUSD_PER_USD


def request_scopes(app: str | None, model: str, key: str | None = None) -> tuple[str, ...]:
    """Every scope a request counts against (``key``: the id of the gateway's virtual key it came
    with, whose limits are the scope ``key:<key_id>``)."""
    scopes = ("global", f"app:{app}", f"model:{model}") if app else ("global", f"model:{model}")
    return (*scopes, f"key:{key}") if key else scopes


@dataclass(frozen=True, slots=True)
class Breach:
    """A limit this request would exceed: what ``BudgetExceeded`` and ``BudgetOverride`` report."""

    scope: str
    #: which of the scope's limits: its ``daily`` or its ``monthly`` one
    window: BudgetWindow
    period: Period
    limit_usd: float
    spent_usd: float
    reserved_usd: float
    needed_usd: float


@dataclass(frozen=True, slots=True)
class Settlement:
    """Settled spend whose usage event no rebuild has found on disk yet: what a rebuild looks for."""

    reservation_id: str
    request_id: str | None
    #: the usage event that settled it (``None``: settled directly, matched by request and model)
    event_id: str | None
    app: str | None
    model: str
    day: str
    cost_nusd: int


@dataclass(frozen=True, slots=True)
class RebuildCounts:
    """What :meth:`Ledger.rebuild` kept and expired."""

    #: settlements counted from the ledger because their usage event is not on disk yet
    kept_settlements: int
    kept_usd: float
    #: reservations in flight, kept: their process is alive and they are not stale
    live_reservations: int
    #: reservations in flight expired: their process is gone, or they are stale
    expired_reservations: int


#: what is in flight, grouped by what decides its scopes (:func:`request_scopes`)
_IN_FLIGHT = ("SELECT app, model, key, SUM(amount_nusd) FROM reservations "
              "WHERE state = 'reserved' GROUP BY app, model, key")

#: ``(settlements) -> (spend rows (scope, ISO day, usd) from the events, ids of the settlements the
#: events hold)``: the rebuild's read of the events, run while the ledger is locked
EventReader = Callable[[Sequence[Settlement]], tuple[Iterable[tuple[str, str, float]], set[str]]]


class Ledger:
    """The ledger file of one data directory; one instance per process, thread-safe.

    ``readonly=True`` (``hive budget show``) never writes, never creates the file and works on a
    read-only data directory; a missing ledger then reads as empty.
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._host = socket.gethostname()
        self._mutex = threading.Lock()
        self._lock_file: BinaryIO | None = None
        self._con: sqlite3.Connection | None = None
        try:
            if readonly:
                self._con = self._open_readonly(busy_timeout_s)
            else:
                self._open(busy_timeout_s)
        except BaseException:
            self.close()
            raise

    def _open(self, busy_timeout_s: float) -> None:
        lock_path = lock_path_of(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(lock_path, "a+b")  # noqa: SIM115 - held for the ledger's life
        except OSError as exc:
            raise DataError(f"cannot open the budget ledger's lock {lock_path} ({exc.strerror}): "
                            f"make {lock_path.parent} writable") from exc
        with sqlite_errors(self.path):
            self._con = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                        check_same_thread=False)
            self._con.execute("PRAGMA synchronous = NORMAL")
            with self._mutex, self._flocked():
                # journal_mode needs the database to itself; the flock keeps first openers in line.
                self._con.execute("PRAGMA journal_mode = WAL")
        with self._write() as con:
            create_or_upgrade(con)

    def _open_readonly(self, busy_timeout_s: float) -> sqlite3.Connection | None:
        with sqlite_errors(self.path):
            return connect_readonly(self.path, busy_timeout_s)

    def close(self) -> None:
        """Close the database connection. Idempotent."""
        if self._con is not None:
            with contextlib.suppress(sqlite3.Error):
                self._con.close()
        if self._lock_file is not None:
            self._lock_file.close()

    # (the context-manager pair every closable of ours has: alike by shape, nothing to share)
    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _flocked(self) -> Iterator[None]:
        # Not hive_core.store.lock.file_lock: that opens and closes the lock file around each hold,
        # ~30 us, twice per request (reserve, settle) on the request path. The ledger opens its lock
        # file once, when it opens (a lock directory it cannot write is then one clear error), and
        # only flocks the open file per write transaction (~3 us). The exclusion is the same.
        assert self._lock_file is not None, "a read-only ledger does not write"
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: thread mutex, then the cross-process flock, then BEGIN IMMEDIATE."""
        con = self._con
        assert con is not None and not self.readonly, "a read-only ledger does not write"
        with self._mutex, self._flocked(), sqlite_errors(self.path):
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        if self._con is None:
            return []  # a read-only view of a ledger that does not exist yet
        with sqlite_errors(self.path):
            return self._con.execute(sql, params).fetchall()

    # -- the request path ------------------------------------------------------------------------

    def reserve(
        self,
        reservation_id: str,
        *,
        request_id: str | None,
        app: str | None,
        model: str,
        amount_usd: float,
        limits: Sequence[Limit],
        now: datetime,
        stale_after_s: float,
        force: bool = False,
        key: str | None = None,
    ) -> list[Breach]:
        """Check every limit and record the reservation, atomically (``key``: the virtual key's id,
        whose in-flight and settled amounts then count against ``key:<key_id>`` too).

        Returns the limits it breaches. With breaches and not ``force`` nothing is recorded (the
        caller refuses); with ``force`` the reservation is recorded anyway (``--over-budget``).
        A zero-cost request never breaches: it cannot push spend past a limit.
        """
        amount = to_nusd(amount_usd)
        stamp = now.timestamp()
        with self._write() as con:
            con.execute("UPDATE reservations SET state = 'expired', finished = ? "
                        "WHERE state = 'reserved' AND created < ?", (stamp, stamp - stale_after_s))
            breaches = self._breaches(con, amount, limits, now) if amount and limits else []
            if not breaches or force:
                con.execute(
                    "INSERT INTO reservations (id, request_id, app, model, key, amount_nusd, state, created, pid, host) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?)",
                    (reservation_id, request_id, app, model, key, amount, stamp, os.getpid(), self._host),
                )
        return breaches

    def _breaches(self, con: sqlite3.Connection, amount: int, limits: Sequence[Limit], now: datetime) -> list[Breach]:
        periods = [(lim, window, Period.budget(window, now, lim.reset_day), cap)
                   for lim in limits for window, cap in lim.caps()]
        scopes = sorted({lim.scope for lim in limits})
        earliest = min(p.first_day for _, _, p, _ in periods).isoformat()
        marks = ",".join("?" * len(scopes))
        rows = con.execute(f"SELECT scope, day, amount_nusd FROM spend WHERE scope IN ({marks}) AND day >= ?",
                           (*scopes, earliest)).fetchall()
        flying = con.execute(_IN_FLIGHT).fetchall()
        breaches = []
        for lim, window, period, cap in periods:
            first, last = period.first_day.isoformat(), period.last_day.isoformat()  # ISO days sort as days
            spent = sum(n for scope, day, n in rows if scope == lim.scope and first <= day <= last)
            reserved = sum(n for a, m, k, n in flying if lim.scope in request_scopes(a, m, k))
            if spent + reserved + amount > to_nusd(cap):
                breaches.append(Breach(lim.scope, window, period, cap, from_nusd(spent), from_nusd(reserved), from_nusd(amount)))
        return breaches

    def settle(self, reservation_id: str, cost_usd: float, *, now: datetime, model: str | None = None,
               event_id: str | None = None, spent_at: datetime | None = None) -> bool:
        """Turn a reservation into spend of ``cost_usd`` (on ``model``'s scope when the billed model
        differs). ``event_id``: the usage event it comes from; ``spent_at``: that event's time, whose
        UTC day the spend is counted on (default ``now``), so the ledger and the events agree even
        for a request that straddles midnight. Idempotent: returns False when it was already
        settled or released."""
        cost = to_nusd(cost_usd)
        day = (spent_at or now).astimezone(UTC).date().isoformat()
        with self._write() as con:
            row = con.execute("SELECT app, model, state, key FROM reservations WHERE id = ?",
                              (reservation_id,)).fetchone()
            # An expired reservation still settles: the request did happen and was billed.
            if row is None or row[2] not in ("reserved", "expired"):
                return False
            billed = model or row[1]
            con.execute("UPDATE reservations SET state = 'settled', finished = ?, cost_nusd = ?, event_id = ?, "
                        "billed_model = ?, day = ?, in_events = ? WHERE id = ?",
                        (now.timestamp(), cost, event_id, billed, day, 0 if cost else 1, reservation_id))
            if cost:
                self._add_spend(con, request_scopes(row[0], billed, row[3]), day, cost)
        return True

    def release(self, reservation_id: str, *, now: datetime) -> bool:
        """Drop a reservation without spend (the request failed unbilled). Idempotent."""
        with self._write() as con:
            cursor = con.execute("UPDATE reservations SET state = 'released', finished = ? "
                                 "WHERE id = ? AND state IN ('reserved', 'expired')", (now.timestamp(), reservation_id))
            return cursor.rowcount == 1

    @staticmethod
    def _add_spend(con: sqlite3.Connection, scopes: Iterable[str], day: str, amount: int) -> None:
        con.executemany(
            "INSERT INTO spend (scope, day, amount_nusd) VALUES (?, ?, ?) "
            "ON CONFLICT (scope, day) DO UPDATE SET amount_nusd = amount_nusd + excluded.amount_nusd",
            [(scope, day, amount) for scope in scopes],
        )

    # -- reading and rebuilding ------------------------------------------------------------------

    def spend(self, scope: str, period: Period) -> float:
        """Settled spend of ``scope`` in ``period``, USD."""
        rows = self._read("SELECT COALESCE(SUM(amount_nusd), 0) FROM spend WHERE scope = ? AND day >= ? AND day <= ?",
                          (scope, period.first_day.isoformat(), period.last_day.isoformat()))
        return from_nusd(int(rows[0][0])) if rows else 0.0

    def spend_by_day(self) -> dict[tuple[str, str], float]:
        """Every (scope, day) -> settled USD (for comparing with the events)."""
        return {(s, d): from_nusd(n) for s, d, n in self._read("SELECT scope, day, amount_nusd FROM spend")}

    def reserved(self, scope: str) -> float:
        """USD reserved in flight (not settled, released or expired) that counts against ``scope``."""
        rows = self._read(_IN_FLIGHT)
        return from_nusd(sum(n for a, m, k, n in rows if scope in request_scopes(a, m, k)))

    def states(self) -> dict[str, int]:
        """Reservations per state."""
        return dict(self._read("SELECT state, COUNT(*) FROM reservations GROUP BY state"))

    def rebuild(self, read_events: EventReader, *, now: datetime, stale_after_s: float) -> RebuildCounts:
        """Replace the spend with the events' plus the settlements the events do not hold yet.

        ``read_events`` runs while this ledger is locked (no settlement can land between the read
        and the replace); it gets the settlements no rebuild has found yet and returns the events'
        spend rows and which of those settlements it found. In-flight reservations of dead
        processes, and stale ones, are expired; live ones are kept. See the module docstring.
        """
        with self._write() as con:
            pending = [Settlement(*row) for row in con.execute(
                "SELECT id, request_id, event_id, app, COALESCE(billed_model, model), day, cost_nusd "
                "FROM reservations WHERE state = 'settled' AND in_events = 0 ORDER BY finished")]
            rows, found = read_events(pending)
            con.execute("DELETE FROM spend WHERE scope NOT LIKE 'key:%'")  # keys: see the module docstring
            for scope, day, usd in rows:
                if not scope.startswith("key:"):
                    self._add_spend(con, (scope,), day, to_nusd(usd))
            kept = [s for s in pending if s.reservation_id not in found]
            for s in kept:
                self._add_spend(con, request_scopes(s.app, s.model), s.day, s.cost_nusd)
            con.executemany("UPDATE reservations SET in_events = 1 WHERE id = ?", [(i,) for i in sorted(found)])
            flying = con.execute("SELECT id, created, pid, host FROM reservations WHERE state = 'reserved'").fetchall()
            dead = [(rid,) for rid, created, pid, host in flying
                    if created < now.timestamp() - stale_after_s or not holder_alive(pid, host, self._host)]
            con.executemany("UPDATE reservations SET state = 'expired', finished = ? WHERE id = ?",
                            [(now.timestamp(), rid) for (rid,) in dead])
        return RebuildCounts(len(kept), from_nusd(sum(s.cost_nusd for s in kept)), len(flying) - len(dead), len(dead))

    def prune(self, *, before: datetime) -> int:
        """Delete finished reservations older than ``before`` whose spend the events hold (they only
        matter while in flight, or until a rebuild finds their usage event)."""
        with self._write() as con:
            cursor = con.execute("DELETE FROM reservations WHERE state != 'reserved' AND in_events = 1 "
                                 "AND created < ?", (before.timestamp(),))
            return cursor.rowcount
