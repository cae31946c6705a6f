"""Which rows of a checked event file are data: the row rules, in one place, as one SQL expression.

A row of a *checked* file (:class:`hive_core.store.event_files.FileSet.checked`: a foreign file whose
``ts`` type or footer statistics do not prove its rows sound) is **quarantined** - left out of every
view, never compacted, counted and reported - when its ``ts``, in this order:

* ``missing``: is NULL;
* ``range``: is outside ``TS_MIN .. TS_MAX`` of :mod:`hive_core.store.events` (one event dated 9999-12-31
  once made every rollup overflow);
* ``day``: falls on another UTC day than its ``date=`` partition (the rollup of that day would
  silently miss it, and an incremental rollup would disagree with a rebuild);
* ``sub_us``: is a nanosecond timestamp that is not a whole microsecond (pandas writes them; the
  schema's microseconds cannot hold them without loss).

The same expression (:func:`reason_sql`) filters the views (``queries.connect``), counts what
``hive-jobs verify`` lists, and decides what ``compact`` may fold in, so the three never disagree.
Checked files are read in groups of one partition and one ``ts`` type (:func:`groups`), so the day
and the ``ts`` type are constants of each group's SQL. They and the bounds are Hive's own values
(a date parsed from a ``date=`` name, an Arrow type, the constants of ``events.py``), formatted
into the SQL, never user input. Checked files are rare (Hive's writers never produce one), so the
grouping costs nothing in the common case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from hive_core.store.datadir import is_remote
from hive_core.store.layout import TS_MAX, TS_MIN, partition_date

if TYPE_CHECKING:
    import duckdb

__all__ = ["REASONS", "Quarantine", "count", "groups", "reason_sql"]

#: reason -> how a report phrases it
REASONS = {
    "missing": "without ts",
    "range": "ts outside {lo}..{hi}",
    "day": "ts outside its partition's UTC day",
    "sub_us": "ts finer than a microsecond",
}



def reason_sql(ts_type: str, day: date) -> str:
    """A DuckDB expression over ``ts``: the row's quarantine reason, NULL for a sound row, for a
    file of the partition ``day`` whose ``ts`` has the Arrow type ``ts_type``."""
    lo, hi = TS_MIN, TS_MAX
    sub_us = "WHEN epoch_ns(ts) % 1000 <> 0 THEN 'sub_us' " if "[ns" in ts_type else ""
    # compared as TIMESTAMPTZ (naive is UTC: the connection's zone): DuckDB reads a naive nanosecond
    # column, pandas' default, as TIMESTAMP_NS, which it will not compare with a TIMESTAMPTZ at all
    ts = "CAST(ts AS TIMESTAMPTZ)"
    return (
        "CASE WHEN ts IS NULL THEN 'missing' "
        f"WHEN {ts} < TIMESTAMPTZ '{lo.isoformat()}' OR {ts} >= TIMESTAMPTZ '{hi.isoformat()}' THEN 'range' "
        f"WHEN {ts} < DATE '{day.isoformat()}' OR {ts} >= DATE '{day.isoformat()}' + INTERVAL 1 DAY THEN 'day' "
        f"{sub_us}END"
    )


def _count_objects(con: duckdb.DuckDBPyConnection, ts_type: str, day: date, paths: list[Path],
                   result: Quarantine) -> None:
    """:func:`count` of one group in object storage: each file's ``ts`` column through pyarrow
    (DuckDB's own S3 reader, httpfs, is an extension that is not required)."""
    from hive_core.store.objects import parquet_dataset

    for path in paths:
        con.register("hive_quarantine_ts", parquet_dataset([path]).to_table(columns=["ts"]))
        try:
            rows = con.execute(f"SELECT reason, count(*) FROM (SELECT {reason_sql(ts_type, day)} AS reason "
                               "FROM hive_quarantine_ts) WHERE reason IS NOT NULL GROUP BY ALL").fetchall()
        finally:
            con.unregister("hive_quarantine_ts")
        for reason, n in rows:
            result.rows.setdefault(path, {})[reason] = int(n)


def groups(checked: Mapping[Path, str]) -> list[tuple[str, date, list[Path]]]:
    """Checked files grouped by ``ts`` type and partition day (one ``read_parquet`` each: DuckDB
    unifies the other columns), in a stable order."""
    by_group: dict[tuple[str, date], list[Path]] = {}
    for path, ts_type in checked.items():
        day = partition_date(path.parent)
        if day is not None:  # listings hold partitioned files only
            by_group.setdefault((ts_type, day), []).append(path)
    return [(ts_type, day, sorted(paths)) for (ts_type, day), paths in sorted(by_group.items())]


@dataclass
class Quarantine:
    """Quarantined rows per file and reason."""

    rows: dict[Path, dict[str, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(n for reasons in self.rows.values() for n in reasons.values())

    def describe(self, reasons: Mapping[str, int]) -> str:
        """``3 ts outside its partition's UTC day, 1 without ts``."""
        lo, hi = TS_MIN, TS_MAX
        return ", ".join(f"{n:,} {REASONS[r].format(lo=lo.year, hi=hi.year - 1)}"
                         for r, n in sorted(reasons.items(), key=lambda item: list(REASONS).index(item[0])))

    def line(self) -> str:
        """The one line a reader prints: how many, why, where to see them."""
        totals: dict[str, int] = {}
        for reasons in self.rows.values():
            for reason, n in reasons.items():
                totals[reason] = totals.get(reason, 0) + n
        files = len(self.rows)
        return (f"{self.total:,} events quarantined in {files} file{'s' if files != 1 else ''} "
                f"({self.describe(totals)}): left out; `hive-jobs verify` lists them")


def count(con: duckdb.DuckDBPyConnection, checked: Mapping[Path, str],
          readable: Callable[[Path], str] = str) -> Quarantine:
    """Quarantined rows of the checked files: one query per group, reading the ``ts`` column only;
    ``readable`` names the file to open (a pinned descriptor's name, say)."""
    result = Quarantine()
    for ts_type, day, paths in groups(checked):
        if is_remote(paths[0]):
            _count_objects(con, ts_type, day, paths, result)
            continue
        by_name = {readable(p): p for p in paths}
        rows = con.execute(
            f"SELECT filename, reason, count(*) FROM (SELECT filename, {reason_sql(ts_type, day)} AS reason "
            "FROM read_parquet($files, union_by_name = true, hive_partitioning = false, filename = true)) "
            "WHERE reason IS NOT NULL GROUP BY ALL",
            {"files": list(by_name)},
        ).fetchall()
        for filename, reason, n in rows:
            result.rows.setdefault(by_name[filename], {})[reason] = int(n)
    return result
