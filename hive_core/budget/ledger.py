"""The budget ledger: in-flight reservations and settled spend, in one small SQLite database.

    <data>/state/budget-ledger.sqlite3
        reservations(id, request_id, app, model, amount_nusd, state, created, finished, cost_nusd)
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
``hive-jobs rebuild-ledger`` recreates the spend from the ``usage`` events and expires in-flight
reservations. A reservation left by a crashed process stops counting after ``stale_after_s``.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from hive_core.budget.config import Limit
from hive_core.budget.periods import Period, period_for

__all__ = ["LEDGER_NAME", "Breach", "Ledger", "from_nusd", "request_scopes", "to_nusd"]

LEDGER_NAME = "budget-ledger.sqlite3"
#: how long a process waits for the ledger before giving up (seconds)
DEFAULT_BUSY_TIMEOUT_S = 30.0
NUSD_PER_USD = 1_000_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, request_id TEXT, app TEXT, model TEXT NOT NULL,
    amount_nusd INTEGER NOT NULL, state TEXT NOT NULL, created REAL NOT NULL,
    finished REAL, cost_nusd INTEGER
);
CREATE INDEX IF NOT EXISTS reservations_in_flight ON reservations(created) WHERE state = 'reserved';
CREATE TABLE IF NOT EXISTS spend (
    scope TEXT NOT NULL, day TEXT NOT NULL, amount_nusd INTEGER NOT NULL, PRIMARY KEY (scope, day)
) WITHOUT ROWID;
"""


def to_nusd(usd: float) -> int:
    """USD as integer nano-dollars."""
    return round(usd * NUSD_PER_USD)


def from_nusd(nusd: int) -> float:
    """Nano-dollars as USD."""
    return nusd / NUSD_PER_USD


def request_scopes(app: str | None, model: str) -> tuple[str, ...]:
    """Every scope a request counts against."""
    return ("global", f"app:{app}", f"model:{model}") if app else ("global", f"model:{model}")


@dataclass(frozen=True, slots=True)
class Breach:
    """A limit this request would exceed: what ``BudgetExceeded`` and ``BudgetOverride`` report."""

    scope: str
    period: Period
    limit_usd: float
    spent_usd: float
    reserved_usd: float
    needed_usd: float


class Ledger:
    """The ledger file of one data directory; one instance per process, thread-safe."""

    def __init__(self, path: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._mutex = threading.Lock()
        self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "a+b")  # noqa: SIM115
        self._con = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                    check_same_thread=False)
        try:
            self._con.execute("PRAGMA synchronous = NORMAL")
            with self._mutex, self._flocked():
                # journal_mode needs the database to itself; the flock keeps first openers in line.
                self._con.execute("PRAGMA journal_mode = WAL")
            with self._write() as con:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the database connection. Idempotent."""
        with contextlib.suppress(sqlite3.ProgrammingError):
            self._con.close()
        self._lock_file.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _flocked(self) -> Iterator[None]:
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: thread mutex, then the cross-process flock, then BEGIN IMMEDIATE."""
        with self._mutex, self._flocked():
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

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
    ) -> list[Breach]:
        """Check every limit and record the reservation, atomically.

        Returns the limits it breaches. With breaches and not ``force`` nothing is recorded (the
        caller refuses); with ``force`` the reservation is recorded anyway (``--over-budget``).
        A zero-cost request never breaches: it cannot push spend past a limit.
        """
        amount = to_nusd(amount_usd)
        stamp = now.timestamp()
        with self._write() as con:
            con.execute("UPDATE reservations SET state = 'expired', finished = ? "
                        "WHERE state = 'reserved' AND created < ?", (stamp, stamp - stale_after_s))
            breaches = self._breaches(con, app, model, amount, limits, now) if amount and limits else []
            if not breaches or force:
                con.execute(
                    "INSERT INTO reservations (id, request_id, app, model, amount_nusd, state, created) "
                    "VALUES (?, ?, ?, ?, ?, 'reserved', ?)",
                    (reservation_id, request_id, app, model, amount, stamp),
                )
        return breaches

    def _breaches(self, con: sqlite3.Connection, app: str | None, model: str, amount: int,
                  limits: Sequence[Limit], now: datetime) -> list[Breach]:
        periods = [(lim, period_for(kind, now, lim.reset_day), cap) for lim in limits for kind, cap in lim.caps()]
        scopes = sorted({lim.scope for lim in limits})
        earliest = min(p.start for _, p, _ in periods).isoformat()
        marks = ",".join("?" * len(scopes))
        rows = con.execute(f"SELECT scope, day, amount_nusd FROM spend WHERE scope IN ({marks}) AND day >= ?",
                           (*scopes, earliest)).fetchall()
        flying = con.execute("SELECT app, model, SUM(amount_nusd) FROM reservations "
                             "WHERE state = 'reserved' GROUP BY app, model").fetchall()
        breaches = []
        for lim, period, cap in periods:
            spent = sum(n for scope, day, n in rows if scope == lim.scope and period.contains(date.fromisoformat(day)))
            reserved = sum(n for a, m, n in flying if lim.scope in request_scopes(a, m))
            if spent + reserved + amount > to_nusd(cap):
                breaches.append(Breach(lim.scope, period, cap, from_nusd(spent), from_nusd(reserved), from_nusd(amount)))
        return breaches

    def settle(self, reservation_id: str, cost_usd: float, *, now: datetime, model: str | None = None) -> bool:
        """Turn a reservation into spend of ``cost_usd`` (on ``model``'s scope when the billed model
        differs). Idempotent: returns False when it was already settled or released."""
        cost = to_nusd(cost_usd)
        day = now.astimezone(UTC).date().isoformat()
        with self._write() as con:
            row = con.execute("SELECT app, model, state FROM reservations WHERE id = ?", (reservation_id,)).fetchone()
            # An expired reservation still settles: the request did happen and was billed.
            if row is None or row[2] not in ("reserved", "expired"):
                return False
            con.execute("UPDATE reservations SET state = 'settled', finished = ?, cost_nusd = ? WHERE id = ?",
                        (now.timestamp(), cost, reservation_id))
            if cost:
                self._add_spend(con, request_scopes(row[0], model or row[1]), day, cost)
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
        (total,) = self._con.execute(
            "SELECT COALESCE(SUM(amount_nusd), 0) FROM spend WHERE scope = ? AND day >= ? AND day < ?",
            (scope, period.start.isoformat(), period.end.isoformat())).fetchone()
        return from_nusd(int(total))

    def spend_by_day(self) -> dict[tuple[str, str], float]:
        """Every (scope, day) -> settled USD (for comparing with the events)."""
        return {(s, d): from_nusd(n) for s, d, n in self._con.execute("SELECT scope, day, amount_nusd FROM spend")}

    def reserved(self, scope: str) -> float:
        """USD reserved in flight (not settled, released or expired) that counts against ``scope``."""
        rows = self._con.execute("SELECT app, model, SUM(amount_nusd) FROM reservations "
                                 "WHERE state = 'reserved' GROUP BY app, model").fetchall()
        return from_nusd(sum(n for a, m, n in rows if scope in request_scopes(a, m)))

    def states(self) -> dict[str, int]:
        """Reservations per state."""
        return dict(self._con.execute("SELECT state, COUNT(*) FROM reservations GROUP BY state").fetchall())

    def rebuild(self, spend: Iterable[tuple[str, str, float]], *, now: datetime) -> int:
        """Replace every spend row with ``(scope, day, usd)`` rows and expire in-flight reservations.
        Returns how many reservations were in flight."""
        with self._write() as con:
            con.execute("DELETE FROM spend")
            for scope, day, usd in spend:
                self._add_spend(con, (scope,), day, to_nusd(usd))
            cursor = con.execute("UPDATE reservations SET state = 'expired', finished = ? WHERE state = 'reserved'",
                                 (now.timestamp(),))
            return cursor.rowcount

    def prune(self, *, before: datetime) -> int:
        """Delete finished reservations older than ``before`` (they only matter while in flight)."""
        with self._write() as con:
            cursor = con.execute("DELETE FROM reservations WHERE state != 'reserved' AND created < ?",
                                 (before.timestamp(),))
            return cursor.rowcount

