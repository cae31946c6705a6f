"""``verify``: check every file of the event store and report what is wrong, with paths.

Checks: every entry under ``events/`` is a readable Parquet file of its type, named as the writer
names files, with a schema Hive can read (lossless casts accepted); strays (``x.parquet.bak``,
``backup``, ``copy of x.parquet``) are reported, as readers never read them; each event has the
directory's type, an ``event_id`` and a ``request_id``; rows the readers quarantine
(``hive_core.store.quarantine``: ``ts`` missing, outside ``TS_MIN..TS_MAX``, outside the partition's
UTC day, or finer than a microsecond) are listed per file with their count; and no ``event_id``
occurs twice (the views do not de-duplicate; ``compact`` keeps one). Protocol leftovers are not
problems: temporary files of killed writers and journals of killed compactions are repaired
(``ingest.compact.recover_partition``). Nothing else is ever deleted: a corrupt or foreign file
stays where it is for a human to look at.

Each file is read twice (its envelope columns with the row count, then ``event_id`` across the
type for duplicates), a checked file's ``ts`` once more. ``events`` counts what the views see.
Without the store lock (``--no-repair``) a compaction may run meanwhile: the files are held open
from the listing on (``hive_core.store.event_files`` pinning), and where they cannot be, a type whose
file vanished while being read is listed and checked again.

In object storage (an ``s3://`` data directory) the same checks read the objects through pyarrow
datasets registered in DuckDB (its own S3 reader, httpfs, is not required); nothing can be pinned, so
a type whose object vanished while being read is listed again, and the repairs are
``ingest.compact_remote``'s (journals rolled forward or back, old tombstones deleted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.errors import DataError
from hive_core.store.datadir import DataDir, is_remote
from hive_core.store.duck import open_duckdb
from hive_core.store.event_files import FileSet, list_dir, list_event_files
from hive_core.store.layout import partition_date
from hive_core.store.quarantine import count
from hive_core.store.schema_cache import event_schemas
from ingest.compact import recover_partition

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb
    import pyarrow as pa

__all__ = ["Problem", "VerifyReport", "verify"]

#: checks of one type while a concurrent compaction keeps deleting the files being read
_ATTEMPTS = 20


@dataclass(frozen=True)
class Problem:
    """Something wrong in the store: the path it concerns and what it is (one line)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class VerifyReport:
    """What ``verify`` found: files and events read, problems, and the repairs it made."""

    # (counts and lists, like every job's report: alike by shape, nothing shared to factor out)
    files: int = 0
    events: int = 0
    quarantined: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found (repairs are not problems)."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The report as ``hive-jobs verify --json`` prints it: its fields (each problem as ``{path,
        message}``) and ``ok``."""
        return {"ok": self.ok, **asdict(self)}


class _Vanished(Exception):
    """A file was deleted while it was read (a concurrent compaction)."""


def verify(data_dir: Path, *, repair: bool = True) -> VerifyReport:
    """Check the whole store. With ``repair``, finish/undo killed compactions and drop stale temp files."""
    report = VerifyReport()
    where = DataDir(data_dir)  # a local Path or an s3:// ObjectPath
    types = {e.path.name: e for e in list_dir(where.events)}
    for name, entry in types.items():
        if name not in event_schemas() and not name.startswith("."):
            report.problems.append(Problem(str(entry.path), "not an event type directory"))
    with open_duckdb() as con:
        for type_name in event_schemas():
            if type_name not in types or types[type_name].kind != "dir":
                continue
            root = where.event_type(type_name)
            for entry in list_dir(root):
                name = entry.path.name
                if entry.kind == "file" and not name.startswith("."):
                    report.problems.append(Problem(str(entry.path), "file outside a date=YYYY-MM-DD partition"))
                elif entry.kind == "dir" and partition_date(entry.path) is None:
                    report.problems.append(Problem(str(entry.path), "not a date=YYYY-MM-DD partition"))
                elif entry.kind == "dir" and repair:
                    report.repaired.extend(recover_partition(entry.path))
            for _ in range(_ATTEMPTS):
                try:
                    _verify_type(con, data_dir, type_name, report)
                    break
                except _Vanished:
                    continue
            else:
                raise DataError(f"{root} kept changing while it was verified: run `hive-jobs verify` "
                                "without --no-repair (it waits for a running compaction)")
    return report


def _verify_type(con: duckdb.DuckDBPyConnection, data_dir: Path, type_name: str, report: VerifyReport) -> None:
    """Check one type's files; the report changes only if every file could be read (else _Vanished)."""
    listing = list_event_files(data_dir, type_name, pin=True)
    try:
        _verify_listing(con, listing, type_name, report)
    finally:
        listing.close()


def _verify_listing(con: duckdb.DuckDBPyConnection, listing: FileSet, type_name: str, report: VerifyReport) -> None:
    import duckdb

    problems = [Problem(str(p), reason) for p, reason in listing.skipped]
    events = 0
    for path in listing.files:
        rows, found = _check_contents(con, path, listing.readable(path), type_name)
        events += rows
        problems.extend(found)
    try:
        quarantined = count(con, listing.checked, listing.readable)
        problems.extend(Problem(str(path), f"{sum(reasons.values()):,} events quarantined "
                                f"({quarantined.describe(reasons)}): readers leave them out")
                        for path, reasons in sorted(quarantined.rows.items()))
        problems.extend(_duplicates(con, listing))
    except duckdb.Error as exc:
        if any(not p.exists() for p in listing.files if p not in listing.pinned):
            raise _Vanished(str(exc)) from exc
        raise DataError(f"cannot verify {type_name} events: {str(exc).splitlines()[0]}") from exc
    report.files += len(listing.files)
    report.events += events - quarantined.total
    report.quarantined += quarantined.total
    report.problems.extend(problems)


_DUPLICATES = ("SELECT event_id, count(*) AS n, list(DISTINCT filename) AS files FROM {source} "
               "GROUP BY event_id HAVING n > 1 ORDER BY event_id LIMIT 20")


def _duplicates(con: duckdb.DuckDBPyConnection, listing: FileSet) -> list[Problem]:
    if not listing.files:
        return []
    if is_remote(listing.files[0]):
        return _remote_duplicates(con, listing.files)
    paths = {listing.readable(p): str(p) for p in listing.files}
    dupes = con.execute(_DUPLICATES.format(source="read_parquet($files, filename = true, union_by_name = true)"),
                        {"files": list(paths)}).fetchall()
    return [Problem(", ".join(sorted(paths[f] for f in in_files)), f"event_id {event_id} occurs {n} times")
            for event_id, n, in_files in dupes]


def _remote_duplicates(con: duckdb.DuckDBPyConnection, files: list[Path]) -> list[Problem]:
    """:func:`_duplicates` over objects: their ``event_id`` column and object key through pyarrow."""
    import pyarrow as pa

    from hive_core.store.objects import as_object, parquet_dataset

    paths = {as_object(p).key: str(p) for p in files}
    schema = pa.schema([pa.field("event_id", pa.string())])  # only it: foreign files differ in the others
    ids = _remote_read(files[0], lambda: parquet_dataset(files, schema).to_table(columns=["event_id", "__filename"]))
    con.register("hive_verify_ids", ids.rename_columns(["event_id", "filename"]))
    try:
        dupes = con.execute(_DUPLICATES.format(source="hive_verify_ids")).fetchall()
    finally:
        con.unregister("hive_verify_ids")
    return [Problem(", ".join(sorted(paths[f] for f in in_files)), f"event_id {event_id} occurs {n} times")
            for event_id, n, in_files in dupes]


def _remote_read(path: Path, read: Callable[[], pa.Table]) -> pa.Table:
    """``read()`` of objects, an object deleted meanwhile raising :class:`_Vanished` (list again)."""
    try:
        return read()
    except FileNotFoundError as exc:
        raise _Vanished(str(path)) from exc


def _check_contents(con: duckdb.DuckDBPyConnection, path: Path, readable: str,
                    type_name: str) -> tuple[int, list[Problem]]:
    """Read the file's envelope columns (a bad page shows only then): its rows, and its problems."""
    import duckdb

    if is_remote(path):
        return _check_object(con, path, type_name)
    try:
        rows = con.execute(_ENVELOPE.format(source="read_parquet($file)"),
                           {"file": readable, "type": type_name}).fetchall()[0]
    except duckdb.Error as exc:
        if readable == str(path) and not path.exists():
            raise _Vanished(str(path)) from exc
        message = str(exc).splitlines()[0].replace(readable, str(path))
        return 0, [Problem(str(path), f"unreadable: {message}")]
    return _envelope_problems(path, type_name, rows)


_ENVELOPE = ("SELECT count(*), count(*) FILTER (WHERE type <> $type), "
             "count(*) FILTER (WHERE event_id IS NULL OR request_id IS NULL) FROM {source}")


def _check_object(con: duckdb.DuckDBPyConnection, path: Path, type_name: str) -> tuple[int, list[Problem]]:
    """:func:`_check_contents` of an object: its envelope columns read through pyarrow."""
    import pyarrow as pa

    from hive_core.store.objects import parquet_dataset

    try:
        table = _remote_read(path, lambda: parquet_dataset([path]).to_table(columns=["type", "event_id", "request_id"]))
    except (pa.ArrowException, OSError) as exc:  # a bad page (the listing already read the footer)
        return 0, [Problem(str(path), f"unreadable: {str(exc).splitlines()[0]}")]
    con.register("hive_verify_file", table)
    try:
        rows = con.execute(_ENVELOPE.format(source="hive_verify_file"), {"type": type_name}).fetchall()[0]
    finally:
        con.unregister("hive_verify_file")
    return _envelope_problems(path, type_name, rows)


def _envelope_problems(path: Path, type_name: str, rows: tuple[int, int, int]) -> tuple[int, list[Problem]]:
    problems = []
    total, wrong_type, null_envelope = rows
    if wrong_type:
        problems.append(Problem(str(path), f"{wrong_type} events of another type than {type_name}"))
    if null_envelope:
        problems.append(Problem(str(path), f"{null_envelope} events without event_id or request_id"))
    return int(total), problems
