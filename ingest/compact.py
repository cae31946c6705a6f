"""Compaction: merge the small files of closed days into one large, time-sorted file per day.

The protocol (per ``events/<type>/date=D`` partition), chosen so that a compaction killed at any
instant loses nothing and duplicates nothing, and the next run repairs what it left:

1. **List** the committed inputs (``hive_core.store.event_files`` rules: corrupt files and strays are left
   alone, untouched; so is a foreign file with quarantined rows, ``hive_core.store.quarantine``, which
   ``hive-jobs verify`` reports for a human to decide: folding it in would lose or keep those rows for good).
2. **Merge** them in memory, cast to the current schema (foreign types losslessly: nanosecond ``ts``
   that are whole microseconds, ``large_string``, ...), sort by ``(ts, event_id)``, and keep one row
   per ``event_id`` (the first in that order): a copied file with a writer's name, which readers
   count twice until now (``verify`` reports it), is folded in once.
3. **Journal**: write ``.compact-<id>.json`` = ``{"output": NAME, "inputs": [...]}`` atomically
   (temp + fsync + rename). The output does not exist yet, so the journal changes nothing.
4. **Commit**: write the output file atomically (temp + fsync + rename). From this instant every
   reader that follows ``hive_core.store.event_files`` skips the inputs the journal names: the output replaces
   them in one rename.
5. **Clean**: delete the inputs, fsync the directory, delete the journal.

Recovery, run at the start of every compaction and by ``hive-jobs verify``: a journal whose output
exists is rolled forward (step 5); a journal whose output does not exist is rolled back (the
journal and temporary files are deleted; inputs were never touched). Temporary files older than
``TEMP_GRACE_S`` are deleted: a writer that has not renamed its file by then is dead. Ages are
measured on the filesystem's clock (``hive_core.clock.filesystem_now``), never Hive's.

Killed between steps 4 and 5, the partition briefly holds both the output and (some) inputs: Hive's
readers skip the inputs; a plain ``read_parquet('events/**/*.parquet')`` would see them twice until
the next ``compact`` or ``verify`` runs. That window is the price of not needing a manifest that
plain DuckDB/Polars/Spark readers would have to understand.

Only closed days are compacted: days before today (UTC, on the caller's clock) whose
newest file is older than ``TEMP_GRACE_S`` (on the filesystem's clock).

Readers take no lock: ``hive_core.store.event_files`` lists a partition twice around its journals, so a
listing never holds an output beside its inputs, and a query that finds a file deleted since lists
again (``queries.connect``). The protocol's order is unchanged for them; it already has what they
need: the journal exists before the output and outlives every input.

In object storage (an ``s3://`` data directory) there is no rename: the journal is created with
``If-None-Match: *`` under the partition's one journal name, the output is PUT once under a new
name, and a rollback fences that name so a live compactor cannot commit late
(``ingest.compact_remote``): two compactions of a partition cannot both win, even without the lock.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hive_core.clock import filesystem_now, system_clock
from hive_core.errors import StorageError
from hive_core.ids import writer_id
from hive_core.store.atomic import TEMP_GRACE_S, fsync_dir, remove_stale_temporaries, write_json_atomic
from hive_core.store.conditional import server_now
from hive_core.store.datadir import DataDir, is_remote
from hive_core.store.duck import open_duckdb
from hive_core.store.event_files import list_dir, list_event_files, read_journal
from hive_core.store.layout import (
    EventFileName,
    compact_journal_glob,
    compact_journal_name,
    partition_date,
)
from hive_core.store.objects import as_object, read_parquet
from hive_core.store.quarantine import Quarantine
from hive_core.store.schema_cache import event_schemas
from ingest.compact_remote import commit_remote, recover_remote
from ingest.files import parquet_bytes, write_atomic

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CompactReport", "compact", "recover_partition"]

COMPACTED_ROW_GROUP = 256 * 1024


@dataclass
class CompactReport:
    """What one compaction run did."""

    # (counts and lists, like every job's report: alike by shape, nothing shared to factor out)
    partitions: int = 0
    files_in: int = 0
    files_out: int = 0
    events: int = 0
    repaired: list[str] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    #: rows dropped because another row of the same partition had the same ``event_id``
    duplicates: int = 0


def recover_partition(partition: Path) -> list[str]:
    """Finish or undo whatever a killed compaction or writer left in ``partition``."""
    if is_remote(partition):
        return recover_remote(partition)
    actions: list[str] = []
    for journal in sorted(partition.glob(compact_journal_glob())):
        output, inputs = read_journal(journal) or ("", [])
        if output and (partition / output).exists():
            for name in inputs:
                with contextlib.suppress(FileNotFoundError):
                    (partition / name).unlink()
            actions.append(f"{journal}: rolled forward ({len(inputs)} inputs removed)")
        else:
            actions.append(f"{journal}: rolled back (compaction never committed)")
        fsync_dir(partition)
        journal.unlink(missing_ok=True)
    actions.extend(f"{path}: removed temporary file left by a killed writer"
                   for path in remove_stale_temporaries(partition))
    return actions


def _closed(partition: Path, day: date, today: date) -> bool:
    """A past UTC day whose newest file is at least ``TEMP_GRACE_S`` old (on the filesystem's clock;
    in object storage, the server's)."""
    if day >= today:
        return False
    newest = max((e.mtime for e in list_dir(partition) if e.mtime is not None), default=None)
    if newest is None:
        return False
    fs_now = server_now(as_object(partition)) if is_remote(partition) else filesystem_now(partition)
    return fs_now is not None and fs_now - newest >= TEMP_GRACE_S


def compact(
    data_dir: Path,
    *,
    day: date | None = None,
    event_types: list[str] | None = None,
    now: datetime | None = None,
    min_files: int = 2,
) -> CompactReport:
    """Compact closed days (or just ``day``); returns what was done. Safe to run concurrently with
    writers; run one compaction at a time (the CLI takes the jobs lock)."""
    today = (now or system_clock()).astimezone(UTC).date()
    report = CompactReport()
    for type_name in event_types or list(event_schemas()):
        root = DataDir(data_dir).event_type(type_name)  # a local Path or an s3:// ObjectPath
        partitions = [(e.path, d) for e in list_dir(root) if e.kind == "dir"
                      and (d := partition_date(e.path)) is not None and (day is None or d == day)]
        if not partitions:
            continue
        for partition, _day in partitions:  # repair first, so the listing below is current
            report.repaired.extend(recover_partition(partition))
        listing = list_event_files(data_dir, type_name)  # once per type, not per partition
        in_scope = {partition for partition, _day in partitions}
        quarantined = _quarantined({p: t for p, t in listing.checked.items() if p.parent in in_scope})
        for path, rows in quarantined.rows.items():
            report.skipped.append((path, f"{quarantined.describe(rows)} (quarantined): left as is"))
        for partition, part_day in partitions:
            report.skipped.extend((p, r) for p, r in listing.skipped if p.parent == partition)
            if day is None and not _closed(partition, part_day, today):
                continue
            inputs = [p for p in listing.files if p.parent == partition and p not in quarantined.rows]
            if len(inputs) >= min_files:
                _compact_partition(type_name, partition, inputs, report)
    return report


def _quarantined(checked: dict[Path, str]) -> Quarantine:
    """The checked files' quarantined rows (DuckDB only when there are checked files)."""
    if not checked:
        return Quarantine()
    from hive_core.store.quarantine import count

    with open_duckdb() as con:
        return count(con, checked)


def _compact_partition(type_name: str, partition: Path, inputs: list[Path], report: CompactReport) -> None:
    import pyarrow as pa

    from hive_core.store.events import EVENT_TYPES  # the classes know each field's default

    cls = EVENT_TYPES[type_name]
    schema = event_schemas()[type_name]
    tables = []
    for path in inputs:
        try:
            table = read_parquet(path)
        except (FileNotFoundError, StorageError):
            if path.exists():
                raise
            report.skipped.append((partition, "another compaction replaced files while they were read: left as is"))
            return
        for column in schema:  # older schema versions lack newer columns: their default, else null
            if column.name not in table.column_names:
                default = cls.model_fields[column.name].get_default(call_default_factory=True)
                table = table.append_column(column, pa.array([default] * table.num_rows, column.type))
        # a safe cast: the listing admitted only lossless types, and the row rules every ts value
        tables.append(table.select(schema.names).cast(schema, safe=True))
    merged = pa.concat_tables(tables).sort_by([("ts", "ascending"), ("event_id", "ascending")])
    merged, dropped = _first_per_event_id(merged)
    report.duplicates += dropped
    output = EventFileName(f"{writer_id()}c", 1).format()
    if is_remote(partition):
        left = commit_remote(partition, inputs, output, parquet_bytes(merged, row_group_size=COMPACTED_ROW_GROUP))
        if left is not None:
            report.skipped.append((partition, left))
            return
    else:
        _commit_local(partition, inputs, output, merged)
    report.partitions += 1
    report.files_in += len(inputs)
    report.files_out += 1
    report.events += merged.num_rows


def _commit_local(partition: Path, inputs: list[Path], output: str, merged: pa.Table) -> None:
    """Steps 3-5 of the module docstring on a local disk."""
    journal = partition / compact_journal_name(output)
    write_json_atomic(journal, {"output": output, "inputs": [p.name for p in inputs]})
    write_atomic(merged, partition / output, compression="zstd", row_group_size=COMPACTED_ROW_GROUP)
    for path in inputs:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    fsync_dir(partition)
    journal.unlink(missing_ok=True)


def _first_per_event_id(table: pa.Table) -> tuple[pa.Table, int]:
    """``table`` (sorted) with only the first row of each ``event_id``, and how many were dropped.
    Rows without an ``event_id`` are all kept (``verify`` reports them): nothing says they are copies."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    keyed = pa.table({"event_id": table["event_id"], "row": np.arange(table.num_rows)})
    present = keyed.filter(pc.is_valid(keyed["event_id"]))
    firsts = present.group_by("event_id", use_threads=False).aggregate([("row", "min")])["row_min"]
    dropped = present.num_rows - len(firsts)
    if not dropped:
        return table, 0
    anonymous = keyed.filter(pc.is_null(keyed["event_id"]))["row"]
    keep = np.sort(np.concatenate([firsts.to_numpy(), anonymous.to_numpy()]))
    return table.take(pa.array(keep)), dropped
