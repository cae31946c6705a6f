"""A DuckDB connection with the event views registered, and the runner for ad-hoc SQL.

For each event type, ``raw_<type>`` is the union (by column name) of an empty table with the
current schema and every readable file (:func:`hive_core.event_files.list_event_files`), so old files with
fewer columns still read and an empty store still has typed, queryable views. The file list is
bound through a DuckDB variable (``getvariable('files_<type>')``), never formatted into SQL. The
named views (``queries/views/*.sql``) are built on top of the raw ones.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.errors import QueryError
from hive_core.event_files import FileSet, list_event_files
from hive_core.schema_cache import event_schemas

if TYPE_CHECKING:
    import duckdb

__all__ = ["VIEW_ORDER", "Store", "connect", "run_sql"]

#: Named views, in dependency order.
VIEW_ORDER = (
    "api_calls", "usage", "stream_outcomes", "selections", "quality_ratings",
    "budget_alerts", "budget_overrides", "ab_assignments", "requests", "rated_answers",
)


@dataclass
class Store:
    """An open DuckDB connection over one data directory, and what was skipped while opening it."""

    con: duckdb.DuckDBPyConnection
    data_dir: Path
    files: dict[str, FileSet] = field(default_factory=dict)

    @property
    def skipped(self) -> list[tuple[Path, str]]:
        return [item for fs in self.files.values() for item in fs.skipped]

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(data_dir: Path, *, warn: bool = True, threads: int | None = None) -> Store:
    """Open an in-memory DuckDB with the event views over ``data_dir`` registered.

    Skipped files (corrupt, empty, foreign) produce one warning line each on stderr when ``warn``.
    """
    import duckdb

    from queries import load

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # Every view binds over the same files, and each query binds and scans them again: read each
    # footer once. Safe because event files are immutable: written once under a temporary name and
    # renamed into place; a compaction writes a new name. (The month's rebuild query: -15%.)
    con.execute("SET parquet_metadata_cache = true")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    store = Store(con=con, data_dir=Path(data_dir))
    for type_name, schema in event_schemas().items():
        fileset = list_event_files(store.data_dir, type_name)
        store.files[type_name] = fileset
        con.register(f"empty_{type_name}", schema.empty_table())
        if fileset.files:
            con.execute(f"SET VARIABLE files_{type_name} = $files", {"files": [str(p) for p in fileset.files]})
            source = (
                f"SELECT * FROM empty_{type_name} UNION ALL BY NAME "
                f"SELECT * FROM read_parquet(getvariable('files_{type_name}'), union_by_name = true, hive_partitioning = false)"
            )
        else:
            source = f"SELECT * FROM empty_{type_name}"
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{type_name} AS {source}")
    for view in VIEW_ORDER:
        con.execute(_USAGE_WITHOUT_CORRECTIONS if view == "usage" and not _has_corrections(store) else load(f"views/{view}"))
    if warn:
        for path, reason in store.skipped:
            print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    return store


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
    """Run SQL on the store; returns a DuckDB relation/result. DuckDB errors become QueryError."""
    import duckdb

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return store.con.execute(sql, dict(params or {}))
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()[0]
        raise QueryError(f"query failed: {message}") from exc
