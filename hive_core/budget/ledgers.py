"""Which ledger a process opens: SQLite in the data directory, or PostgreSQL when ``HIVE_LEDGER_URL``
is set (budgets shared by several hosts). The one place that decides; everything else holds a
:class:`~hive_core.budget.ledger_core.LedgerCore` and does not care which."""

from __future__ import annotations

from pathlib import Path

from hive_core.budget.ledger_core import LedgerCore
from hive_core.errors import ConfigError
from hive_core.store.datadir import DataDir, is_remote

__all__ = ["open_ledger"]


def open_ledger(data_dir: Path, url: str | None = None, *, readonly: bool = False) -> LedgerCore:
    """The budget ledger: ``url`` (``Settings.ledger_url``, a ``postgresql://`` URL) when given, else
    the data directory's SQLite file. ``readonly``: never writes nor creates (``hive budget show``).
    A URL of another scheme is refused in one line that does not repeat it (it may hold a password)."""
    if not url:
        from hive_core.budget.ledger import Ledger

        if is_remote(data_dir):  # SQLite needs a local file and its locks: a bucket has neither
            raise ConfigError(f"{data_dir}: a data directory in object storage keeps its budget ledger in "
                              "PostgreSQL: set HIVE_LEDGER_URL=postgresql://user@host:port/db")

        return Ledger(DataDir(data_dir).ledger, readonly=readonly)
    from hive_core.budget.ledger_pg import PgLedger, is_postgres_url

    if not is_postgres_url(url):
        raise ConfigError("invalid setting HIVE_LEDGER_URL: must be a postgresql://user@host:port/db URL "
                          "(the value is not shown: it may hold a password)")
    return PgLedger(url, readonly=readonly)
