"""A DuckDB connection with the event views registered, and the runner for ad-hoc SQL.

For each event type, ``raw_<type>`` has exactly the type's current columns: the union (by column
name) of an empty table with the current schema, every readable file whose rows are sound
(:func:`hive_core.store.event_files.list_event_files`), and the *checked* files' rows that the row rules
keep (:mod:`hive_core.store.quarantine`), their ``ts`` cast to microseconds UTC. Old files with fewer
columns still read, foreign types (nanosecond ``ts``, ``large_string``) read as the schema's, and an
empty store still has typed, queryable views. File lists are bound through DuckDB variables
(``getvariable('files_<type>')``), never formatted into SQL. The named views
(``queries/views/*.sql``) are built on top of the raw ones.

The views do not de-duplicate ``event_id``: that tripled the rollup's time (1.4 s -> 3.5 s for 10 days
of 100k requests). Hive's writers never repeat an id; a copied file is a stray unless it has a
writer's name, and then ``hive-jobs verify`` reports the duplicates and ``compact`` keeps one.

**A concurrent compaction.** The listing is a consistent snapshot (``hive_core.store.event_files``), and
every listed file is held open (*pinned*) until :meth:`Store.close`: DuckDB reads each through its
descriptor's name (``/proc/self/fd/N``), so a compaction that deletes a file after the listing (its
output holds the same events) changes nothing for the store: every query of one ``Store`` sees the
same snapshot, each event exactly once, whoever runs it (``Store.con`` included), and readers take
no lock. Where descriptors have no names, or a store has more files than the process may hold open
(after raising its soft limit to the hard one), files are read by path; then a query that meets a
file deleted since the listing is run again over a fresh one (:meth:`Store.execute`,
:func:`run_sql`; up to :data:`QUERY_ATTEMPTS` times and :data:`QUERY_RETRY_S` seconds), and queries run on ``Store.con`` directly
get no such retry. DuckDB's messages name the files, not the descriptors.
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hive_core.errors import QueryError
from hive_core.store.datadir import DataDir, is_remote
from hive_core.store.duck import open_duckdb
from hive_core.store.event_files import FileSet, list_event_files
from hive_core.store.quarantine import Quarantine, groups, reason_sql
from hive_core.store.schema_cache import event_schemas

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = ["QUERY_ATTEMPTS", "VIEW_ORDER", "Store", "connect", "named_table", "run_sql"]

#: Named views, in dependency order.
VIEW_ORDER = (
    "api_calls", "usage", "stream_outcomes", "selections", "quality_ratings",
    "budget_alerts", "budget_overrides", "ab_assignments", "requests", "rated_answers",
)
_T = TypeVar("_T")
#: runs of one query (each after a fresh listing) while files it listed keep vanishing, at least...
QUERY_ATTEMPTS = 20
#: ...and for at least this many seconds: in object storage (no descriptors to pin) a query slower
#: than a compaction's cycle meets a vanished file on every run while compactions follow each other
#: (two compactors racing over one day starved a reader of its 20 runs); it waits them out instead
QUERY_RETRY_S = 30.0


@dataclass
class Store:
    """An open DuckDB connection over one data directory, and what was skipped while opening it."""

    con: duckdb.DuckDBPyConnection
    data_dir: Path
    files: dict[str, FileSet] = field(default_factory=dict)
    #: only the partitions of these UTC days (first, last), or every day
    days: tuple[date, date] | None = None
    #: the named views registered (with those they read), in :data:`VIEW_ORDER`; every one by default
    views: tuple[str, ...] = VIEW_ORDER
    _quarantine: Quarantine | None = field(default=None, repr=False)
    #: every listing this store made, held open until it closes: a descriptor number is never reused
    #: for another file while DuckDB may have cached a footer under its name
    _held: list[FileSet] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        # a store that is never closed still releases its descriptors when it is collected
        weakref.finalize(self, _close_all, self._held)

    @property
    def skipped(self) -> list[tuple[Path, str]]:
        """Files skipped (one entry each), then the quarantined rows (one entry for all of them,
        on the ``events`` directory)."""
        return self.skipped_of(self.views)

    def skipped_of(self, views: Collection[str]) -> list[tuple[Path, str]]:
        """:attr:`skipped`, of the event types ``views`` read only: what a reader of those views
        reports, the same whether its store registered more views or not."""
        types = [t for t in _event_types(_with_sources(views)) if t in self.files]
        items = [item for t in types for item in self.files[t].skipped]
        read = {path for t in types for path in self.files[t].checked}
        quarantine = Quarantine({path: rows for path, rows in self.quarantine().rows.items() if path in read})
        if quarantine.total:
            items.append((DataDir(self.data_dir).events, quarantine.line()))
        return items

    def quarantine(self) -> Quarantine:
        """Rows the views leave out (counted on first use: only checked files are read)."""
        if self._quarantine is None:
            from hive_core.store.quarantine import count

            def counted() -> Quarantine:
                found = Quarantine()
                for fileset in self.files.values():
                    if fileset.checked:
                        found.rows.update(count(self.con, fileset.checked, fileset.readable).rows)
                return found

            self._quarantine = self._retrying(counted)
        return self._quarantine

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Run SQL (the result is materialized); a query that met a file a compaction had removed is
        run again over a fresh listing. DuckDB errors become :class:`QueryError`."""
        return self._retrying(lambda: self.con.execute(sql, dict(params or {})))

    def refresh(self) -> None:
        """List (and pin) the files again and rebuild the views over them."""
        self._list(_event_types(self.views))
        _build_views(self)

    def add_views(self, views: Collection[str]) -> None:
        """Register ``views`` (and the views they read) on this open store too, for a reader that
        needs them only sometimes: the rollup's store registers its own views and the rankings step
        adds the quality ratings' when there are ratings (registering them on every run cost 13 ms).
        The event types they add are listed (and pinned) now; the views already registered keep
        their listing. DuckDB errors become :class:`QueryError`."""
        import duckdb

        wanted = _with_sources((*self.views, *views))
        added = tuple(view for view in wanted if view not in self.views)
        if not added:
            return
        types = [t for t in _event_types(wanted) if t not in self.files]
        self.views = wanted
        _register_empty(self.con, types)
        try:
            self._list(types)
            _build_views(self, types, added)
        except duckdb.Error:  # binding opened a file that vanished meanwhile: list everything again
            try:
                self._refresh_retrying()
            except duckdb.Error as exc:
                raise QueryError(f"cannot open the event views: {self._named(str(exc).strip().splitlines()[0])}") from exc

    def _list(self, types: Collection[str]) -> None:
        for name in types:
            self.files[name] = list_event_files(self.data_dir, name, pin=True, days=self.days)
            self._held.append(self.files[name])
        self._quarantine = None

    def _retrying(self, run: Callable[[], _T]) -> _T:
        import duckdb

        deadline = time.monotonic() + QUERY_RETRY_S
        attempt = 0
        while True:
            try:
                return run()
            except duckdb.Error as exc:
                attempt += 1
                spent = attempt >= QUERY_ATTEMPTS and time.monotonic() >= deadline
                if spent or not self._vanished():
                    raise QueryError(f"query failed: {self._named(str(exc).strip().splitlines()[0])}") from exc
            # jittered, so that a reader does not fall into step with a compactor's cycle
            time.sleep(random.uniform(0.5, 1.0) * min(0.005 * 2**attempt, 0.2))
            self._refresh_retrying()

    def _refresh_retrying(self) -> None:
        import duckdb

        for _ in range(QUERY_ATTEMPTS):
            try:
                self.refresh()
                return
            except duckdb.Error:  # binding a view opens the files: one may have vanished meanwhile
                if not self._vanished():
                    raise
        self.refresh()

    def _vanished(self) -> bool:
        """Whether a file read by path is gone (a compaction replaced it): the listing is stale."""
        return any(not path.exists() for fs in self.files.values() for path in fs.files if path not in fs.pinned)

    def _named(self, message: str) -> str:
        """``message`` with each pinned descriptor's name replaced by its file's path."""
        names = {fs.readable(p): str(p) for fs in self.files.values() for p in fs.pinned}
        return re.sub(r"/(?:proc/self|dev)/fd/\d+", lambda m: names.get(m[0], m[0]), message)

    def close(self) -> None:
        """Close the connection and release the pinned files."""
        self.con.close()
        _close_all(self._held)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(data_dir: Path, *, warn: bool = True, threads: int | None = None,
            memory_limit: int | None = None, days: tuple[date, date] | None = None,
            views: Collection[str] | None = None) -> Store:
    """Open an in-memory DuckDB with the event views over ``data_dir`` registered.

    Skipped files (corrupt, empty, foreign, strays) produce one warning line each on stderr when
    ``warn``, and quarantined rows one line in all. ``memory_limit`` (bytes; ``HIVE_MEMORY_LIMIT``
    for the batch jobs) caps DuckDB's memory: beyond it, sorts and aggregates spill to a temporary
    directory instead of growing (DuckDB's default is 80% of the RAM). ``days`` (first, last): the
    views cover only the partitions of those UTC days (one batch of the rollup). ``views``: only
    these named views and the ones they read (every view by default); the event types no such view
    reads are neither listed nor registered (the rollup reads three of ten: listing and binding the
    other seven cost each of a year's 50 batches as much as the rest of its store).
    """
    import duckdb

    con = open_duckdb()  # UTC, and no progress bar on stdout (cron would mail it)
    if memory_limit:
        con.execute(f"SET memory_limit = '{int(memory_limit)}B'")
        con.execute(f"SET temp_directory = '{_spill_dir()}'")
    # Every view binds over the same files, and each query binds and scans them again: read each
    # footer once. Safe because event files are immutable: written once under a temporary name and
    # renamed into place; a compaction writes a new name. (The month's rebuild query: -15%.)
    con.execute("SET parquet_metadata_cache = true")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    store = Store(con=con, data_dir=DataDir(data_dir).root, days=days,  # data_dir: a Path, or an s3:// ObjectPath
                  views=VIEW_ORDER if views is None else _with_sources(views))
    _register_empty(con, _event_types(store.views))
    try:
        store._refresh_retrying()
    except duckdb.Error as exc:
        message = store._named(str(exc).strip().splitlines()[0])
        store.close()
        raise QueryError(f"cannot open the event views: {message}") from exc
    except BaseException:
        store.close()
        raise
    if warn:
        for path, reason in store.skipped:
            print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    return store


def _spill_dir() -> str:
    """Where DuckDB spills: the system's temporary directory (the data directory may be small or
    read-only); DuckDB creates and removes its files itself."""
    import tempfile

    return str(Path(tempfile.gettempdir()) / f"hive-duckdb-{os.getpid()}").replace("'", "''")


def _close_all(filesets: list[FileSet]) -> None:
    for fileset in filesets:
        fileset.close()


def _with_sources(views: Collection[str]) -> tuple[str, ...]:
    """``views`` and every named view they read, in :data:`VIEW_ORDER`."""
    unknown = set(views) - set(VIEW_ORDER)
    if unknown:
        raise KeyError(f"no view named {', '.join(sorted(unknown))}; known: {', '.join(VIEW_ORDER)}")
    wanted = set(views)
    for view in reversed(VIEW_ORDER):  # a view reads only views before it
        if view in wanted:
            wanted |= _sources(view)[0]
    return tuple(v for v in VIEW_ORDER if v in wanted)


@cache
def _sources(view: str) -> tuple[frozenset[str], frozenset[str]]:
    """The named views and the event types (``raw_<type>``) that ``view``'s SQL reads."""
    from queries import load

    words = set(re.findall(r"\b\w+\b", load(f"views/{view}")))
    return (frozenset(v for v in VIEW_ORDER if v in words and v != view),
            frozenset(t for t in event_schemas() if f"raw_{t}" in words))


def _event_types(views: tuple[str, ...]) -> list[str]:
    """The event types ``views`` read, in the schemas' order (every type for every view)."""
    if views == VIEW_ORDER:
        return list(event_schemas())
    types = set().union(*(_sources(v)[1] for v in views))
    return [t for t in event_schemas() if t in types]


def _register_empty(con: duckdb.DuckDBPyConnection, types: Collection[str]) -> None:
    """An empty table with each type's current schema, the first part of its ``raw_<type>`` view."""
    schemas = event_schemas()
    for type_name in types:
        con.register(f"empty_{type_name}", schemas[type_name].empty_table())


def _build_views(store: Store, types: Collection[str] | None = None, views: Collection[str] | None = None) -> None:
    """The ``raw_<type>`` views of ``types`` and then the named ``views`` (default: all of the store's)."""
    from queries import load

    con = store.con
    schemas = event_schemas()
    for type_name in _event_types(store.views) if types is None else types:
        schema, fileset = schemas[type_name], store.files[type_name]
        parts = [f"SELECT * FROM empty_{type_name}"]
        sound = [p for p in fileset.files if p not in fileset.checked]
        if sound:
            parts.append(f"SELECT * FROM {_source(store, fileset, f'files_{type_name}', sound, schema)}")
        for n, (ts_type, day, paths) in enumerate(groups(fileset.checked)):
            # checked files: their rows through the row rules, ts cast to the schema's microseconds
            source = _source(store, fileset, f"files_{type_name}_checked_{n}", paths, None)
            parts.append(f"SELECT * REPLACE (CAST(ts AS TIMESTAMPTZ) AS ts) FROM {source} "
                         f"WHERE ({reason_sql(ts_type, day)}) IS NULL")
        columns = ", ".join(f'"{name}"' for name in schema.names)
        source = " UNION ALL BY NAME ".join(parts)
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{type_name} AS SELECT {columns} FROM ({source})")
    for view in store.views if views is None else views:
        con.execute(_USAGE_WITHOUT_CORRECTIONS if view == "usage" and not _has_corrections(store) else load(f"views/{view}"))


def _source(store: Store, fileset: FileSet, name: str, paths: list[Path], schema: pa.Schema | None) -> str:
    """The SQL that scans ``paths``: ``read_parquet`` over a list bound to the DuckDB variable
    ``name``, or in object storage a ``pyarrow`` dataset registered as ``name`` (DuckDB's S3 reader,
    the httpfs extension, is not required). ``schema``: the dataset's (None: the files' own, unified)."""
    if is_remote(store.data_dir):
        from hive_core.store.objects import parquet_dataset

        store.con.register(name, parquet_dataset(paths, schema))
        return name
    store.con.execute(f"SET VARIABLE {name} = $files", {"files": [fileset.readable(p) for p in paths]})
    return f"read_parquet(getvariable('{name}'), union_by_name = true, hive_partitioning = false)"


#: ``views/usage`` when no usage event supersedes another: its anti-join is then the identity, and
#: skipping it spares every query over ``usage`` reading each event's ``event_id`` (the costliest
#: column of the table: a third of the daily rollup's scan).
_USAGE_WITHOUT_CORRECTIONS = "CREATE OR REPLACE TEMP VIEW usage AS SELECT * FROM raw_usage"


def _has_corrections(store: Store) -> bool:
    """Whether any usage event supersedes another (``hive-jobs reconcile``'s corrections)."""
    if not store.files["usage"].files:
        return False
    (found,) = store.con.execute("SELECT count(*) FROM raw_usage WHERE supersedes IS NOT NULL").fetchone() or (0,)
    return bool(found)


def run_sql(store: Store, sql: str, params: Mapping[str, Any] | None = None) -> Any:
    """Run SQL on the store; returns the connection holding the materialized result (retried over a
    fresh listing when a compaction removed a file meanwhile: :meth:`Store.execute`). DuckDB errors
    become QueryError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return store.execute(sql, params)


def named_table(store: Store, name: str, params: Mapping[str, Any]) -> pa.Table:
    """Run the named query ``queries/<name>.sql`` as an Arrow table; DuckDB errors become a
    QueryError naming the query. It runs on ``Store.con`` directly, so unlike :func:`run_sql` it is
    not run again over a fresh listing (see the module docstring)."""
    import duckdb

    from queries import load

    try:
        return store.con.sql(load(name), params=dict(params)).to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(f"{name} failed: {str(exc).strip().splitlines()[0]}") from exc
