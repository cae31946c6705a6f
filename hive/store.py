"""The store for notebooks: every event view and rollup table as a DuckDB relation or a Polars LazyFrame.

    store = session.store                      # or hive.Store(data_dir) on its own
    store.tables                               # ['api_calls', 'usage', ..., 'rollup_daily', 'rankings']
    store.lazy("usage").group_by("model").agg(pl.col("cost_usd").sum()).collect()
    store.relation("requests").filter("final_status = 'ok'").pl()
    store.sql("select model, count(*) n from api_calls where ts >= $since group by 1", since="2026-11-01")

The event views are ``hive-jobs sql``'s, over the same connection (:func:`queries.connect`): one
consistent listing of the files, pinned while the store is open, corrupt and foreign files skipped
with a warning, quarantined rows left out, and ``usage`` with corrections superseding what they
correct. A LazyFrame is DuckDB's (``relation.pl(lazy=True)``): Polars' filters and projections are
pushed into that same query, so both libraries see the same rows. Frames and relations read through
the store's connection: use them while the store (or its Session) is open.

The event views read a snapshot of the files, taken at the store's first read. Every read first
flushes the owning Session's event log, and takes a new snapshot when that wrote anything, so a
notebook sees the requests it just made; :meth:`Store.refresh` takes one for files other processes
wrote since. (Not on every read: each snapshot keeps its files open until the store closes.)

The rollup tables are the files ``hive-jobs rollup`` writes, listed at each read by the names
:class:`~hive_core.store.datadir.DataDir` gives them (a stray file in those folders is never read);
a table with no file yet is a :class:`~hive_core.errors.QueryError` saying what to run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.errors import QueryError
from hive_core.store.datadir import DataDir

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    import queries

__all__ = ["ROLLUP_TABLES", "Store"]

#: the rollup tables, and what writes them
ROLLUP_TABLES = {
    "rollup_daily": "hive-jobs rollup",
    "rollup_monthly_totals": "hive-jobs rollup",
    "rollup_monthly_days": "hive-jobs rollup",
    "rankings": "hive-jobs rankings (or rollup)",
}
_MONTH = re.compile(r"^month=(\d{4}-(0[1-9]|1[0-2]))$")


class Store:
    """The event views and rollup tables of one data directory. Close it (or its Session) when done.

    ``before_read`` runs before every read and returns how many events it wrote (a Session passes
    its event log's ``flush``); when that is not 0, the files are listed again.
    """

    def __init__(self, data_dir: Path, *, before_read: Callable[[], int] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self._before_read = before_read
        self._store: queries.Store | None = None

    @property
    def tables(self) -> list[str]:
        """Every name :meth:`relation` and :meth:`lazy` accept: the event views, then the rollup tables."""
        from queries.connect import VIEW_ORDER

        return [*VIEW_ORDER, *ROLLUP_TABLES]

    def relation(self, name: str) -> duckdb.DuckDBPyRelation:
        """``name`` (see :attr:`tables`) as a DuckDB relation over the files as they are now."""
        from queries.connect import VIEW_ORDER

        store = self._fresh()
        if name in VIEW_ORDER:
            return store.con.view(name)
        if name in ROLLUP_TABLES:
            return store.con.read_parquet([str(path) for path in self._rollup_files(name)], union_by_name=True)
        raise QueryError(f"no table named {name!r}: use one of {', '.join(self.tables)}")

    def lazy(self, name: str) -> pl.LazyFrame:
        """``name`` as a Polars LazyFrame: the same query as :meth:`relation`, run when collected."""
        lazy: pl.LazyFrame = self.relation(name).pl(lazy=True)
        return lazy

    def sql(self, query: str, **params: Any) -> duckdb.DuckDBPyRelation:
        """Any SQL over the event views (``hive-jobs sql``'s), values bound as ``$name`` (never
        formatted into the text); DuckDB's errors as :class:`QueryError`."""
        import duckdb

        store = self._fresh()
        try:
            return store.con.sql(query, params=params or None)
        except duckdb.Error as exc:
            raise QueryError(f"query failed: {str(exc).strip().splitlines()[0]}") from exc

    @property
    def skipped(self) -> list[tuple[Path, str]]:
        """Files the views skipped and why (also warned about on stderr when the store opened)."""
        return self._fresh().skipped

    def refresh(self) -> None:
        """Take a new snapshot of the files (events and rollups other processes wrote since)."""
        if self._store is not None:
            self._store.refresh()

    def _fresh(self) -> queries.Store:
        """The open connection, after the owner's flush (and a new snapshot when it wrote events)."""
        written = self._before_read() if self._before_read is not None else 0
        if self._store is None:
            import queries

            self._store = queries.connect(self.data_dir)
        elif written:
            self._store.refresh()
        return self._store

    def _rollup_files(self, name: str) -> list[Path]:
        datadir = DataDir(self.data_dir)
        if name == "rankings":
            files = [datadir.rankings_file] if datadir.rankings_file.is_file() else []
        elif name == "rollup_daily":
            from hive_core.store.layout import day_in_range, partition_date

            days = sorted(d for p in _folders(datadir.rollups_daily)
                          if (d := partition_date(p)) is not None and day_in_range(d))
            files = [path for d in days if (path := datadir.rollup_day(d)).is_file()]
        else:
            part = name.removeprefix("rollup_monthly_")
            months = sorted(m[1] for p in _folders(datadir.rollups_monthly) if (m := _MONTH.match(p.name)))
            files = [path for month in months if (path := datadir.rollup_month(month, part)).is_file()]
        if not files:
            raise QueryError(f"no {name} in {self.data_dir} yet: run `{ROLLUP_TABLES[name]}` first")
        return files

    def close(self) -> None:
        """Close the connection and release the files it pinned. Idempotent."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _folders(root: Path) -> list[Path]:
    try:
        return [p for p in root.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return []
