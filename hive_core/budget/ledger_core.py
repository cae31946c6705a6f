"""The ledger's accounting, once for both databases: reserve, settle, release, the reads, rebuild and
prune, written against a transaction (:class:`Tx`) that either backend hands out.

    LedgerCore                 the protocol's rules, in SQL both dialects agree on
    ├── Ledger                 SQLite in the data directory (:mod:`hive_core.budget.ledger`)
    └── PgLedger               PostgreSQL shared by several hosts (:mod:`hive_core.budget.ledger_pg`)

A backend supplies the transactions and the exclusion: :meth:`LedgerCore._write` (one write
transaction; ``alone``: with no other write at the same time, for a rebuild), :meth:`LedgerCore._read`
(one statement), :meth:`LedgerCore._hold` (make the transaction the only one deciding about these
scopes: SQLite's write transactions are already serialised whole, PostgreSQL takes a lock per scope)
and :attr:`LedgerCore.EXPIRE_STALE`.

The SQL is written with ``?`` placeholders; the PostgreSQL backend rewrites them to ``%s``. Sums are
cast to ``BIGINT`` where they leave the database: PostgreSQL's ``SUM`` of a ``bigint`` is a
``numeric`` (a ``Decimal`` in Python), SQLite's an integer either way.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from hive_core.budget.config import Limit
from hive_core.budget.ledger_file import holder_alive
from hive_core.catalog.variants import split_shortcut
from hive_core.period import BudgetWindow, Period

__all__ = [
    "Breach",
    "EventReader",
    "LedgerCore",
    "RebuildCounts",
    "Settlement",
    "Tx",
    "from_nusd",
    "request_scopes",
    "to_nusd",
]

NUSD_PER_USD = 1_000_000_000


def to_nusd(usd: float) -> int:
    """USD as integer nano-dollars."""
    return round(usd * NUSD_PER_USD)


def from_nusd(nusd: int) -> float:
    """Nano-dollars as USD."""
    return nusd / NUSD_PER_USD


def request_scopes(app: str | None, model: str, key: str | None = None) -> tuple[str, ...]:
    """Every scope a request counts against (``key``: the id of the gateway's virtual key it came
    with, whose limits are the scope ``key:<key_id>``). A routing shortcut (``...:nitro``) counts
    as its model: reserved, settled (billed as the model) and rebuilt under the same scope."""
    shortcut = split_shortcut(model)
    if shortcut is not None:
        model = shortcut[0]
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
    #: the gateway's virtual key it came with, if any
    key: str | None = None


@dataclass(frozen=True, slots=True)
class RebuildCounts:
    """What :meth:`LedgerCore.rebuild` kept and expired."""

    #: settlements counted from the ledger because their usage event is not on disk yet
    kept_settlements: int
    kept_usd: float
    #: reservations in flight, kept: their process is alive and they are not stale
    live_reservations: int
    #: reservations in flight expired: their process is gone, or they are stale
    expired_reservations: int


#: ``(settlements) -> (spend rows (scope, ISO day, usd) from the events, ids of the settlements the
#: events hold)``: the rebuild's read of the events, run while the ledger is locked
EventReader = Callable[[Sequence[Settlement]], tuple[Iterable[tuple[str, str, float]], set[str]]]


class Cursor(Protocol):
    """What the accounting reads back from a statement (sqlite3's and psycopg's cursors both are)."""

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


class Tx(Protocol):
    """One open write transaction: statements with ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any: ...


#: what is in flight, grouped by what decides its scopes (:func:`request_scopes`)
IN_FLIGHT = ("SELECT app, model, key, CAST(SUM(amount_nusd) AS BIGINT) FROM reservations "
             "WHERE state = 'reserved' GROUP BY app, model, key")


#: a request no limit applied to, written settled (:meth:`LedgerCore.record_spend`)
RECORD_SPEND = ("INSERT INTO reservations (id, request_id, app, model, key, amount_nusd, state, created, pid, host, "
                "finished, cost_nusd, event_id, billed_model, day, in_events) "
                "VALUES (?, ?, ?, ?, ?, 0, 'settled', ?, ?, ?, ?, ?, ?, ?, ?, ?)")
#: spend added to a scope's day
ADD_SPEND = ("INSERT INTO spend (scope, day, amount_nusd) VALUES (?, ?, ?) "
             "ON CONFLICT (scope, day) DO UPDATE SET amount_nusd = spend.amount_nusd + excluded.amount_nusd")


class _Deferred:
    """What a :meth:`LedgerCore.batch` writes when it ends: unreserved spend's rows, and the spend of
    every settlement summed per (scope, day)."""

    __slots__ = ("added", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.added: dict[tuple[str, str], int] = {}

    def spend(self, scopes: Iterable[str], day: str, amount: int) -> None:
        added = self.added
        for scope in scopes:
            added[scope, day] = added.get((scope, day), 0) + amount

    def write(self, tx: Tx) -> None:
        if self.rows:
            tx.executemany(RECORD_SPEND, self.rows)
        if self.added:
            # in key order: two batches that both span a UTC midnight lock the same rows in the same
            # order (PostgreSQL would abort one of two that met in opposite orders)
            tx.executemany(ADD_SPEND, [(scope, day, amount) for (scope, day), amount in sorted(self.added.items())])


class LedgerCore:
    """The reservation protocol over any backend; see the module docstring for what one supplies.

    Amounts are integer nano-dollars (1e-9 USD), so sums are exact and a cent is never lost to
    float rounding. Each reservation records the host and pid that holds it: a rebuild expires one
    whose process is gone only on its own host (another host's process cannot be asked, so there
    only staleness expires it; see :func:`~hive_core.budget.ledger_file.holder_alive`).
    """

    #: expires in-flight reservations created before the second parameter, at the first
    EXPIRE_STALE: ClassVar[str] = ("UPDATE reservations SET state = 'expired', finished = ? "
                                   "WHERE state = 'reserved' AND created < ?")
    readonly: bool
    _host: str = socket.gethostname()
    #: the thread inside :meth:`batch`, its open transaction and what it writes when the block ends
    _batch: tuple[int, Tx, _Deferred] | None = None

    def _write(self, *, alone: bool = False) -> contextlib.AbstractContextManager[Tx]:
        """One write transaction, committed when the block ends normally (``alone``: while no other
        write transaction runs)."""
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """The rows of one read-only statement (none when the ledger does not exist yet)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Settlements and releases made in this thread inside the block share ONE write transaction,
        committed when it ends (a gateway settles the requests answered in one turn of its event
        loop with one commit instead of one each). If it fails, none of them is written - as when a
        lone settlement fails: ``rebuild-ledger`` recounts the spend from the usage events.

        Inside it, the rows of unreserved spend (:meth:`record_spend`) and the spend of every
        settlement are written when the block ends, in two statements: the rows at once, the spend
        summed per scope and day (measured, unreserved spend in batches of 8: 16.5 -> 12.7 us each).
        The transaction ends the same; nothing inside the block reads them back."""
        if self._batch is not None and self._batch[0] == threading.get_ident():
            yield  # already inside one
            return
        with self._write() as tx:
            deferred = _Deferred()
            self._batch = (threading.get_ident(), tx, deferred)
            try:
                yield
            finally:
                self._batch = None
            deferred.write(tx)

    @contextlib.contextmanager
    def _settling(self) -> Iterator[tuple[Tx, _Deferred | None]]:
        """The transaction a settlement or release writes in: the thread's :meth:`batch` (with what
        it writes at its end), or its own."""
        batch = self._batch
        if batch is not None and batch[0] == threading.get_ident():
            yield batch[1], batch[2]
        else:
            with self._write() as tx:
                yield tx, None

    def try_hold(self) -> bool:
        """Take the ledger's write locks if no other thread or process holds them, without waiting:
        True when this thread holds them until :meth:`unhold` (its writes meanwhile reuse them).
        False: another holds them, or every write is network I/O (PostgreSQL) - do the work on a
        thread that may wait (:mod:`hive_gateway.lane`)."""
        return False

    def unhold(self) -> None:
        """Let go of what :meth:`try_hold` took."""

    def never_wait_on(self, thread: int | None) -> None:
        """From now on a write on ``thread`` (a :func:`threading.get_ident`) that would wait - for a
        lock held elsewhere, or on the network - raises :class:`~hive_core.errors.WouldWait` instead
        (an event loop's thread: every stream it serves would stall with it)."""
        raise NotImplementedError

    def _hold(self, tx: Tx, scopes: Sequence[str]) -> None:
        """Keep every other reservation that checks one of ``scopes`` out until ``tx`` ends."""

    def close(self) -> None:
        """Close the connection. Idempotent."""
        raise NotImplementedError

    # (the context-manager pair every closable of ours has: alike by shape, nothing to share)
    def __enter__(self) -> LedgerCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        checked = amount and limits
        with self._write() as tx:
            if checked:
                self._hold(tx, sorted({lim.scope for lim in limits}))
            tx.execute(self.EXPIRE_STALE, (stamp, stamp - stale_after_s))
            breaches = self._breaches(tx, amount, limits, now) if checked else []
            if not breaches or force:
                tx.execute(
                    "INSERT INTO reservations (id, request_id, app, model, key, amount_nusd, state, created, pid, host) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?)",
                    (reservation_id, request_id, app, model, key, amount, stamp, os.getpid(), self._host),
                )
        return breaches

    @staticmethod
    def _breaches(tx: Tx, amount: int, limits: Sequence[Limit], now: datetime) -> list[Breach]:
        periods = [(lim, window, Period.budget(window, now, lim.reset_day), cap)
                   for lim in limits for window, cap in lim.caps()]
        scopes = sorted({lim.scope for lim in limits})
        earliest = min(p.first_day for _, _, p, _ in periods).isoformat()
        marks = ",".join("?" * len(scopes))
        # One statement, so one snapshot: a settlement committing between two reads would otherwise
        # be seen as neither in flight nor spent.
        rows = tx.execute(f"SELECT 's', scope, day, NULL, amount_nusd FROM spend WHERE scope IN ({marks}) AND day >= ? "
                          f"UNION ALL SELECT 'r', {IN_FLIGHT.removeprefix('SELECT ')}",
                          (*scopes, earliest)).fetchall()
        spend = [(scope, day, n) for kind, scope, day, _, n in rows if kind == "s"]
        flying = [(a, m, k, n) for kind, a, m, k, n in rows if kind == "r"]
        breaches = []
        for lim, window, period, cap in periods:
            first, last = period.first_day.isoformat(), period.last_day.isoformat()  # ISO days sort as days
            spent = sum(n for scope, day, n in spend if scope == lim.scope and first <= day <= last)
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
        with self._settling() as (tx, deferred):
            # One conditional update: of two settlements of one reservation racing, one wins.
            # An expired reservation still settles: the request did happen and was billed.
            row = tx.execute("UPDATE reservations SET state = 'settled', finished = ?, cost_nusd = ?, event_id = ?, "
                             "billed_model = COALESCE(?, model), day = ?, in_events = ? "
                             "WHERE id = ? AND state IN ('reserved', 'expired') RETURNING app, billed_model, key",
                             (now.timestamp(), cost, event_id, model, day, 0 if cost else 1, reservation_id)).fetchone()
            if row is None:
                return False
            if cost and deferred is not None:
                deferred.spend(request_scopes(*row), day, cost)
            elif cost:
                self._add_spend(tx, request_scopes(*row), day, cost)
        return True

    def record_spend(self, reservation_id: str, cost_usd: float, *, request_id: str | None, app: str | None,
                     model: str, key: str | None, now: datetime, billed_model: str | None = None,
                     event_id: str | None = None, spent_at: datetime | None = None) -> None:
        """Spend of a request no limit applied to (never reserved): its row inserted settled and the
        spend added, in one transaction - what :meth:`reserve` + :meth:`settle` record, less the
        in-flight state nobody checks."""
        cost = to_nusd(cost_usd)
        day = (spent_at or now).astimezone(UTC).date().isoformat()
        billed = billed_model or model
        stamp = now.timestamp()
        row = (reservation_id, request_id, app, model, key, stamp, os.getpid(), self._host, stamp, cost,
               event_id, billed, day, 0 if cost else 1)
        scopes = request_scopes(app, billed, key)
        with self._settling() as (tx, deferred):
            if deferred is not None:
                deferred.rows.append(row)
                if cost:
                    deferred.spend(scopes, day, cost)
                return
            tx.execute(RECORD_SPEND, row)
            if cost:
                self._add_spend(tx, scopes, day, cost)

    def release(self, reservation_id: str, *, now: datetime) -> bool:
        """Drop a reservation without spend (the request failed unbilled). Idempotent."""
        with self._settling() as (tx, _):
            # (RETURNING, not rowcount: a pipelined statement's count is known only once read)
            return tx.execute("UPDATE reservations SET state = 'released', finished = ? "
                              "WHERE id = ? AND state IN ('reserved', 'expired') RETURNING id",
                              (now.timestamp(), reservation_id)).fetchone() is not None

    @staticmethod
    def _add_spend(tx: Tx, scopes: Iterable[str], day: str, amount: int) -> None:
        tx.executemany(ADD_SPEND, [(scope, day, amount) for scope in scopes])

    # -- reading and rebuilding ------------------------------------------------------------------

    def spend(self, scope: str, period: Period) -> float:
        """Settled spend of ``scope`` in ``period``, USD."""
        rows = self._read("SELECT CAST(COALESCE(SUM(amount_nusd), 0) AS BIGINT) FROM spend "
                          "WHERE scope = ? AND day >= ? AND day <= ?",
                          (scope, period.first_day.isoformat(), period.last_day.isoformat()))
        return from_nusd(int(rows[0][0])) if rows else 0.0

    def spend_by_day(self) -> dict[tuple[str, str], float]:
        """Every (scope, day) -> settled USD (for comparing with the events)."""
        return {(s, d): from_nusd(n) for s, d, n in self._read("SELECT scope, day, amount_nusd FROM spend")}

    def reserved(self, scope: str) -> float:
        """USD reserved in flight (not settled, released or expired) that counts against ``scope``."""
        rows = self._read(IN_FLIGHT)
        return from_nusd(sum(n for a, m, k, n in rows if scope in request_scopes(a, m, k)))

    def states(self) -> dict[str, int]:
        """Reservations per state."""
        return dict(self._read("SELECT state, COUNT(*) FROM reservations GROUP BY state"))

    def rebuild(self, read_events: EventReader, *, now: datetime, stale_after_s: float) -> RebuildCounts:
        """Replace the spend with the events' plus the settlements the events do not hold yet.

        ``read_events`` runs while this ledger is locked (no settlement can land between the read
        and the replace); it gets the settlements no rebuild has found yet and returns the events'
        spend rows and which of those settlements it found. In-flight reservations of dead
        processes on this host, and stale ones, are expired; live ones are kept. A virtual key's
        scope (``key:``) is never lowered: the larger of its spend here and the events' (usage
        events name the key only since schema 3, so the events alone may hold less of a period
        that began before). See :mod:`hive_core.budget.ledger`.
        """
        with self._write(alone=True) as tx:
            pending = [Settlement(*row) for row in tx.execute(
                "SELECT id, request_id, event_id, app, COALESCE(billed_model, model), day, cost_nusd, key "
                "FROM reservations WHERE state = 'settled' AND in_events = 0 ORDER BY finished").fetchall()]
            rows, found = read_events(pending)
            keys: dict[tuple[str, str], int] = {}  # a key scope's (scope, day) -> the events' spend
            held = {(scope, day): amount for scope, day, amount in tx.execute(
                "SELECT scope, day, amount_nusd FROM spend WHERE scope LIKE 'key:%'").fetchall()}
            tx.execute("DELETE FROM spend")
            for scope, day, usd in rows:
                if scope.startswith("key:"):
                    keys[scope, day] = keys.get((scope, day), 0) + to_nusd(usd)
                else:
                    self._add_spend(tx, (scope,), day, to_nusd(usd))
            kept = [s for s in pending if s.reservation_id not in found]
            for s in kept:
                scopes = request_scopes(s.app, s.model, s.key)
                self._add_spend(tx, [scope for scope in scopes if not scope.startswith("key:")], s.day, s.cost_nusd)
                if s.key:
                    keys[f"key:{s.key}", s.day] = keys.get((f"key:{s.key}", s.day), 0) + s.cost_nusd
            for scope, day in held.keys() | keys.keys():
                self._add_spend(tx, (scope,), day, max(held.get((scope, day), 0), keys.get((scope, day), 0)))
            tx.executemany("UPDATE reservations SET in_events = 1 WHERE id = ?", [(i,) for i in sorted(found)])
            flying = tx.execute("SELECT id, created, pid, host FROM reservations WHERE state = 'reserved'").fetchall()
            dead = [rid for rid, created, pid, host in flying
                    if created < now.timestamp() - stale_after_s or not holder_alive(pid, host, self._host)]
            tx.executemany("UPDATE reservations SET state = 'expired', finished = ? WHERE id = ?",
                           [(now.timestamp(), rid) for rid in dead])
        return RebuildCounts(len(kept), from_nusd(sum(s.cost_nusd for s in kept)), len(flying) - len(dead), len(dead))

    def prune(self, *, before: datetime) -> int:
        """Delete finished reservations older than ``before`` whose spend the events hold (they only
        matter while in flight, or until a rebuild finds their usage event)."""
        with self._write() as tx:
            return len(tx.execute("DELETE FROM reservations WHERE state != 'reserved' AND in_events = 1 "
                                  "AND created < ? RETURNING id", (before.timestamp(),)).fetchall())

