"""The gateway's virtual keys: create one (its secret shown once), verify a presented secret on
every request, list and revoke.

    <data>/state/keys/keys.sqlite3      (DataDir.keys_db, 0600 in a 0700 folder)
        keys(id, salt, hash, app, user, models, rpm, created, revoked)

What is stored of a secret is a salted HMAC (:mod:`hive_core.keys.secret` says why that is right
for random secrets); the secret itself is in no file. A key's spending limits are not in this file:
they are the budget scope ``key:<key_id>`` of ``config.json`` (:mod:`hive_core.budget.config`), so
``hive budget set --key ID`` changes them, ``hive budget show`` reports them, a limit of 0 is the
kill switch, and the budget ledger reserves them in the same transaction as the global, app and
model limits. :meth:`KeyStore.create` writes both; the key's row first, its limits second, and the
secret is returned only after both (nobody can use a key whose limits are not in place yet).

:meth:`KeyStore.verify` runs on every gateway request: one primary-key read on an open connection
plus one HMAC (a few microseconds; ``bench/bench_keys.py``), and no cache - the read sees the last
commit of every process, so a revocation by ``hive keys revoke`` refuses the very next request of
every gateway worker. The limits it reports come from ``config.json``, re-read only when the file
changed (:class:`~hive_core.budget.config.ConfigReader`).
"""

from __future__ import annotations

import difflib
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hive_core.budget.config import BudgetConfig, ConfigReader, update_budget_config
from hive_core.errors import ConfigError
from hive_core.keys.db import SharedDb
from hive_core.keys.key import VirtualKey
from hive_core.keys.secret import digest, key_id_of, matches, new_salt, new_secret
from hive_core.store.datadir import DataDir

__all__ = ["KeyStore", "UnknownKey", "read_keys"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY, salt BLOB NOT NULL, hash BLOB NOT NULL, app TEXT NOT NULL, user TEXT,
    models TEXT NOT NULL, rpm INTEGER, created REAL NOT NULL, revoked REAL
)
"""
_COLUMNS = "id, app, user, models, rpm, created, revoked"
#: models are stored one per line (an id never holds a newline): cheaper to read than JSON
_MODEL_SEP = "\n"


class UnknownKey(ConfigError):
    """A key id this store does not hold (the message names the close ones)."""

    def __init__(self, key_id: str, known: Sequence[str]) -> None:
        close = [k for k in known if k.startswith(key_id)] if key_id else []
        close = close or difflib.get_close_matches(key_id, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see `hive keys list`"
        super().__init__(f"no virtual key {key_id!r}: {hint}")
        self.key_id = key_id


def _when(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)


class KeyStore:
    """The virtual keys of one data directory; one per process, thread-safe."""

    def __init__(self, data: DataDir) -> None:
        self.data = data
        self._db = SharedDb(data.keys_db, SCHEMA)
        self._limits = ConfigReader(data.config_file)
        #: key id -> (its row, the settings it was built with, the key): verify rebuilds a key only
        #: when its row or config.json changed (the read itself is never skipped)
        self._built: dict[str, tuple[Sequence[Any], BudgetConfig, VirtualKey]] = {}

    def close(self) -> None:
        """Close the database. Idempotent."""
        self._db.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _key(self, row: Sequence[Any]) -> VirtualKey:
        config = self._limits.get()
        built = self._built.get(row[0])
        if built is not None and built[0] == row and built[1] is config:
            return built[2]
        key = self._build(row, config)
        self._built[key.key_id] = (row, config, key)
        return key

    @staticmethod
    def _build(row: Sequence[Any], config: BudgetConfig) -> VirtualKey:
        key_id, app, user, models, rpm, created, revoked = row
        limit = config.limits.get(f"key:{key_id}")
        return VirtualKey(
            key_id=key_id, app=app, user=user,
            daily_usd=limit.daily_usd if limit else None, monthly_usd=limit.monthly_usd if limit else None,
            models=tuple(models.split(_MODEL_SEP)) if models else (), rpm=rpm,
            created_at=datetime.fromtimestamp(created, UTC), revoked_at=_when(revoked),
        )

    def create(self, *, app: str, user: str | None = None, daily_usd: float | None = None,
               monthly_usd: float | None = None, models: Sequence[str] = (), rpm: int | None = None,
               now: datetime) -> tuple[str, VirtualKey]:
        """A new key: ``(secret, key)``. The secret (``hk-...``) is returned this once and stored
        nowhere; keep it. ``daily_usd``/``monthly_usd`` become the budget scope ``key:<key_id>``
        (0: refuse every request); ``models``: the ids it may call (empty: any); ``rpm``: requests
        per minute. Bad values are a :class:`ConfigError` and nothing is written."""
        if not app or not app.strip():
            raise ConfigError("a virtual key needs an app: give --app NAME (its requests are recorded under it)")
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 1):
            raise ConfigError(f"invalid requests per minute {rpm!r}: give a positive whole number")
        if any(not m or _MODEL_SEP in m or m != m.strip() for m in models):
            raise ConfigError(f"invalid model list {list(models)!r}: give model ids such as openai/gpt-4o-mini")
        if user is not None and not user.strip():
            user = None
        key_id, secret = new_secret()
        scope = f"key:{key_id}"
        limited = daily_usd is not None or monthly_usd is not None
        if limited:  # validated before anything is written (0 is allowed: the kill switch)
            self._limits.get().with_limit(scope, daily_usd=daily_usd, monthly_usd=monthly_usd)
        salt = new_salt()
        try:
            with self._db.write() as con:
                con.execute("INSERT INTO keys (id, salt, hash, app, user, models, rpm, created) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (key_id, salt, digest(salt, secret), app.strip(), user, _MODEL_SEP.join(dict.fromkeys(models)),
                             rpm, now.timestamp()))
        except sqlite3.IntegrityError:  # 48 random bits collided: astronomically rare, try once more
            return self.create(app=app, user=user, daily_usd=daily_usd, monthly_usd=monthly_usd, models=models,
                               rpm=rpm, now=now)
        if limited:
            try:
                update_budget_config(self.data.config_file,
                                     lambda config: config.with_limit(scope, daily_usd=daily_usd, monthly_usd=monthly_usd))
            except BaseException:  # no key without the limits it was asked with
                with self._db.write() as con:
                    con.execute("DELETE FROM keys WHERE id = ?", (key_id,))
                raise
        return secret, self.get(key_id)

    def get(self, key_id: str) -> VirtualKey:
        """The key of ``key_id`` (revoked or not); :class:`UnknownKey` names the close ones."""
        row = self._db.read_one(f"SELECT {_COLUMNS} FROM keys WHERE id = ?", (key_id,))
        if row is None:
            raise UnknownKey(key_id, [k.key_id for k in self.list()])
        return self._key(row)

    def verify(self, secret: str, *, now: datetime) -> VirtualKey | None:
        """The key ``secret`` belongs to, or ``None`` when it is unknown, malformed, wrong or revoked
        (revoked at any time: a revocation is never scheduled, so ``now``, the request's instant,
        does not change the answer today; it is here for key expiry). Sees another process's
        revocation at once: every call reads the committed row."""
        key_id = key_id_of(secret)
        if key_id is None:
            return None
        row = self._db.read_one(f"SELECT salt, hash, {_COLUMNS} FROM keys WHERE id = ?", (key_id,))
        if row is None or row[-1] is not None or not matches(row[0], row[1], secret):
            return None
        return self._key(row[2:])

    def list(self) -> list[VirtualKey]:
        """Every key, revoked ones included, oldest first."""
        return [self._key(row) for row in self._db.read(f"SELECT {_COLUMNS} FROM keys ORDER BY created, id")]

    def revoke(self, key_id: str, *, now: datetime) -> VirtualKey:
        """Revoke a key: every process refuses it from its next request. Revoking a revoked key
        changes nothing (its first revocation time stays). An unknown id is :class:`UnknownKey`,
        naming the close ones. Its budget scope stays in ``config.json`` (``hive budget show``
        keeps reporting what it spent); ``hive budget unset --key ID`` removes it."""
        with self._db.write() as con:
            con.execute("UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (now.timestamp(), key_id))
        return self.get(key_id)


def read_keys(data: DataDir) -> list[VirtualKey]:
    """Every key, oldest first, without opening the store for writing (``hive keys list`` on a
    read-only data directory, or one that has no keys yet: an empty list, nothing created)."""
    from hive_core.budget.ledger_file import connect_readonly
    from hive_core.keys.db import sqlite_errors

    path = data.keys_db
    with sqlite_errors(path):
        con = connect_readonly(path, 5.0)
        if con is None:  # no keys yet
            return []
        try:
            rows = con.execute(f"SELECT {_COLUMNS} FROM keys ORDER BY created, id").fetchall()
        finally:
            con.close()
    config = ConfigReader(data.config_file).get()
    return [KeyStore._build(row, config) for row in rows]
