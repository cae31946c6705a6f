"""The budget ledger on PostgreSQL, for budgets that several hosts share (``HIVE_LEDGER_URL``).

    HIVE_LEDGER_URL=postgresql://user:password@host:5432/db     (psycopg 3: the ``postgres`` extra)

The same tables and the same protocol as the SQLite ledger (:mod:`hive_core.budget.ledger_core`
holds the accounting, once), in the schema ``hive`` of that database, created on first use.

**Exclusion: an advisory lock per limited scope, under READ COMMITTED.** A reservation takes
``pg_advisory_xact_lock`` on every scope whose limit it checks (sorted, so two transactions never
wait for each other in a cycle), then expires stale reservations, reads spend and in-flight amounts
in ONE statement, and inserts: two reservations checking the same scope cannot both see the same
headroom, and each reads after the other's commit (the lock is released only once the commit is
visible). Settlements and releases take no scope lock: each is one transaction and the reservation's
read is one snapshot, so it sees a settlement either wholly (spent) or not at all (in flight), never
neither. Requests whose limits share no scope run in parallel; most requests share ``global``, so in
practice reservations under a global limit run one at a time, as on SQLite. The transaction is
pipelined (statements whose results are not read are sent without waiting): a reservation costs two
round trips and holds its scope lock for about one. Every write also takes a shared lock on the ledger that :meth:`rebuild`
takes exclusively, so no settlement lands between a rebuild's read of the events and its replace.
Stale expiry skips rows another transaction holds (``FOR UPDATE SKIP LOCKED``): a reservation still
counted because of it only makes the check stricter. The alternative, SERIALIZABLE with retries,
makes every pair of concurrent reservations conflict (each reads the in-flight rows the other
inserts): under contention most attempts abort and are retried, and the retry loop is one more
place for a bug, where a lock is waited for once.

**Several hosts: expiry by staleness.** Each reservation records its host and pid. A rebuild expires
one whose process is gone only when that process ran on the rebuild's own host; another host's
process cannot be asked, so its reservations expire only once stale (``stale_after_s``, the budget
config's). A host that crashes therefore holds its in-flight amounts for at most that long.

**Failures are one line** and never show the password: the URL is shown as ``postgresql://user@host:
port/db`` (:func:`display_url`), and libpq's own text, which names host, port and user but not the
password, is scrubbed of it anyway. A server that cannot be reached is :class:`LedgerUnreachable`
(transient), a refused login :class:`LedgerAuthFailed`; libpq reports neither with an SQLSTATE (there
is no session yet), so these two are told apart by its message, here and nowhere else.

Durability follows the server's settings; the ledger remains a projection of the usage events
(``hive-jobs rebuild-ledger``), as on SQLite.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from hive_core.budget.ledger_core import Cursor, LedgerCore, Tx
from hive_core.budget.ledger_file import INDEXES
from hive_core.errors import ConfigError, DataError, HiveError, LedgerAuthFailed, LedgerUnreachable, WouldWait

if TYPE_CHECKING:
    import psycopg

__all__ = ["LedgerAuthFailed", "LedgerUnreachable", "PgLedger", "display_url", "is_postgres_url"]

#: the schema the ledger's tables live in
SCHEMA_NAME = "hive"
#: first key of every advisory lock the ledger takes ("HIVE"); the second is 0 for the whole
#: ledger, 1 for creating the schema, or a scope's hash
LOCK_CLASS = 0x48495645
DEFAULT_CONNECT_TIMEOUT_S = 10

SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA_NAME};
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, request_id TEXT, app TEXT, model TEXT NOT NULL, key TEXT,
    amount_nusd BIGINT NOT NULL, state TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
    finished DOUBLE PRECISION, cost_nusd BIGINT, pid INTEGER, host TEXT,
    event_id TEXT, billed_model TEXT, day TEXT, in_events INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS spend (
    scope TEXT NOT NULL, day TEXT NOT NULL, amount_nusd BIGINT NOT NULL, PRIMARY KEY (scope, day)
);
"""


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL ledger."""
    return url.startswith(("postgresql://", "postgres://"))


def display_url(url: str) -> str:
    """``url`` as messages show it: scheme, user, host, port and database; never the password
    (neither the one in the user part nor a ``password=`` parameter: the query is left out)."""
    parts = urlsplit(url)
    user = f"{unquote(parts.username)}@" if parts.username else ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


def scope_lock(scope: str) -> int:
    """A scope's advisory-lock key: a signed 32-bit hash (a collision only serialises two scopes)."""
    return int.from_bytes(hashlib.blake2b(scope.encode(), digest_size=4).digest(), "big", signed=True)


@functools.lru_cache(maxsize=256)
def dialect(sql: str) -> str:
    """The ledger's SQL (``?`` placeholders) as psycopg takes it (``%s``, and a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PgTx:
    """psycopg's connection as a :class:`~hive_core.budget.ledger_core.Tx`."""

    def __init__(self, con: psycopg.Connection[Any]) -> None:
        self.con = con

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        return self.con.execute(dialect(sql), tuple(params))

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any:
        with self.con.cursor() as cursor:
            cursor.executemany(dialect(sql), [tuple(p) for p in params])


class PgLedger(LedgerCore):
    """The ledger in a PostgreSQL database; one instance per process, thread-safe (one connection,
    one transaction at a time; a broken connection is replaced at the next call).

    ``readonly=True`` never writes and never creates the schema; a missing one reads as empty.
    """

    EXPIRE_STALE = ("UPDATE reservations SET state = 'expired', finished = ? WHERE id IN ("
                    "SELECT id FROM reservations WHERE state = 'reserved' AND created < ? FOR UPDATE SKIP LOCKED)")

    def __init__(self, url: str, *, readonly: bool = False,
                 connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S) -> None:
        self.url = url
        self.shown = display_url(url)
        self.readonly = readonly
        self.connect_timeout_s = connect_timeout_s
        self._password = unquote(urlsplit(url).password or "")
        self._mutex = threading.Lock()
        self._never_waits: int | None = None
        self._con: psycopg.Connection[Any] | None = None
        self._exists = False
        with self._mutex:
            self._connection()

    # -- the connection --------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        """The open connection; (re)connects, and creates the schema once, when there is none."""
        if self._con is not None and not self._con.broken:
            return self._con
        try:
            import psycopg
        except ImportError:
            raise ConfigError("HIVE_LEDGER_URL names PostgreSQL, which needs psycopg: "
                              "pip install 'hive[postgres]' (or unset HIVE_LEDGER_URL)") from None
        if self._con is not None:
            self._con.close()
            self._con = None
        with self._errors():
            con = psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout_s,
                                  application_name="hive-ledger")
            try:
                con.execute(f"SET search_path TO {SCHEMA_NAME}")
                if self.readonly:
                    con.execute("SET default_transaction_read_only = on")
                self._exists = con.execute("SELECT to_regclass('spend') IS NOT NULL").fetchone() == (True,)
                if not self._exists and not self.readonly:
                    with con.transaction():
                        con.execute(f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, 1)")  # first openers in line
                        con.execute(SCHEMA)
                        con.execute(INDEXES)
                    self._exists = True
            except BaseException:
                con.close()
                raise
        self._con = con
        return con

    def close(self) -> None:
        """Close the connection. Idempotent."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> PgLedger:
        return self

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """psycopg's failures inside the block as one line (:func:`translate`)."""
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: psycopg.Error) -> HiveError:
        """A psycopg failure as the one line a user reads: which ledger, what, what to do."""
        import psycopg

        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = text.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
        if self._password:
            reason = reason.replace(self._password, "***")
        where = f"the budget ledger {self.shown}"
        if exc.sqlstate is None and isinstance(exc, psycopg.OperationalError):
            # no session: libpq's message is all there is (see the module docstring)
            if "authentication failed" in reason or "no password supplied" in reason:
                return LedgerAuthFailed(f"{where} refused the login ({reason}): fix the user or password in "
                                        "HIVE_LEDGER_URL")
            if "database" in reason and "does not exist" in reason:
                return ConfigError(f"{where} does not exist ({reason}): create the database (createdb) or "
                                   "fix HIVE_LEDGER_URL")
            if self._con is None:  # connecting
                return LedgerUnreachable(f"{where} cannot be reached ({reason}): start the server or fix the "
                                         "host and port in HIVE_LEDGER_URL")
        lost = exc.sqlstate is None and isinstance(exc, psycopg.OperationalError)  # the connection broke
        if lost or (exc.sqlstate or "").startswith(("08", "57P")):  # connection exception, server shut down
            return LedgerUnreachable(f"{where} went away ({reason}): check the server and retry")
        if exc.sqlstate == "42501":
            return ConfigError(f"{where} refused access ({reason}): grant the user CREATE on the database "
                               f"and rights on the schema {SCHEMA_NAME}")
        return DataError(f"{where} failed ({reason}): check the server, or run `hive-jobs rebuild-ledger`")

    # -- transactions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self, *, alone: bool = False) -> Iterator[Tx]:
        """One write transaction holding the ledger's lock: shared, or exclusive when ``alone``.

        In pipeline mode: statements whose results are not read (BEGIN, the locks, the expiry, the
        insert, COMMIT) go out without waiting, so a reservation costs two round trips, not six -
        and the scope lock is held for one of them."""
        assert not self.readonly, "a read-only ledger does not write"
        if self._never_waits is not None and threading.get_ident() == self._never_waits:
            raise WouldWait(f"the budget ledger {self.shown} is across the network, and this thread may not wait "
                            "for it")
        with self._mutex, self._errors():
            con = self._connection()
            try:
                with con.pipeline():
                    con.execute("BEGIN")
                    con.execute(f"SELECT pg_advisory_xact_lock{'' if alone else '_shared'}({LOCK_CLASS}, 0)")
                    yield _PgTx(con)
                    con.execute("COMMIT")
            except BaseException:
                if not con.broken:
                    with contextlib.suppress(Exception):
                        con.execute("ROLLBACK")
                raise

    def never_wait_on(self, thread: int | None) -> None:
        """Every write on ``thread`` raises :class:`~hive_core.errors.WouldWait`: each one is network I/O
        (and :meth:`try_hold` is always False, so a gateway does them all in its lane's threads)."""
        self._never_waits = thread

    def _hold(self, tx: Tx, scopes: Sequence[str]) -> None:
        keys = sorted({scope_lock(scope) for scope in scopes})
        tx.execute("SELECT " + ", ".join(f"pg_advisory_xact_lock({LOCK_CLASS}, {key})" for key in keys))

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._mutex, self._errors():
            con = self._connection()
            if not self._exists:
                self._exists = con.execute("SELECT to_regclass('spend') IS NOT NULL").fetchone() == (True,)
                if not self._exists:
                    return []  # a read-only view of a ledger nobody created yet
            return con.execute(dialect(sql), tuple(params)).fetchall()
