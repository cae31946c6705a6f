"""Compaction's commit and recovery in object storage (an ``s3://`` data directory).

Object storage has no rename and no directory fsync, but a PUT is atomic and S3 has conditional
writes (:mod:`hive_core.store.conditional`). The steps of ``ingest.compact`` become, per partition:

1. **Journal**: create the partition's one journal, ``.compact-date=D.json`` = ``{"output", "inputs"}``,
   with ``If-None-Match: *``. Its name is the partition's, not the output's, so two compactions of a
   partition cannot both hold one: the loser leaves the partition to the winner (``skipped``).
2. **Check**: list the partition; if an input is gone (a compaction finished between our listing and
   our journal), delete our journal (``If-Match``: only the version we wrote) and leave it.
   After step 1 no one else deletes an input: only the journal's holder, or a roll forward of it.
3. **Commit**: PUT the output (a new, unique name) with ``If-None-Match: *``. From the instant it
   exists, readers (``hive_core.store.event_files``) skip the inputs the journal names.
4. **Clean**: delete the inputs, then the journal (``If-Match``).

Recovery (:func:`recover_remote`, by the next compaction and ``hive-jobs verify``): a journal whose
output exists is rolled forward (step 4). A journal whose output does not exist is rolled back, and
safely even if its compactor is still alive (a lost lease, a paused process): the output's name is
first fenced with a tombstone (an empty marked object, ``If-None-Match``), so that compactor's own
PUT of it fails and it stops; then the journal is deleted (``If-Match``). If the fence finds the
output there, the compaction committed meanwhile: it is rolled forward instead. Readers ignore
tombstones; a tombstone is deleted at once when the journal was already ``TEMP_GRACE_S`` old on
the server's clock, else by a later recovery once it is that old itself (a PUT that has not
completed by then is taken for dead, as a local writer's temporary file is). Until then a plain
``read_parquet('events/**/*.parquet')`` outside Hive meets an empty object it cannot read.

Compared to the local store: readers never see an event twice or miss one at any instant (the
journal exists before the output, outlives every input, and the listing reads journals between two
LISTs); a killed compaction leaves at most a journal (rolled back or forward by the next run) and a
tombstone (ignored, then deleted).
"""

from __future__ import annotations

import json
from pathlib import Path

from hive_core.store.atomic import TEMP_GRACE_S
from hive_core.store.conditional import (
    create_object,
    delete_if_match,
    head_version,
    put_tombstone,
    read_version,
)
from hive_core.store.event_files import list_dir, parse_journal
from hive_core.store.layout import compact_journal_name, is_compact_journal, parse_file_name
from hive_core.store.objects import ObjectPath, as_object

__all__ = ["commit_remote", "partition_journal", "recover_remote"]


def partition_journal(partition: Path) -> ObjectPath:
    """The one journal a compaction of ``partition`` may hold: ``.compact-date=D.json``."""
    return as_object(partition) / compact_journal_name(partition.name)


def commit_remote(partition: Path, inputs: list[Path], output: str, data: bytes) -> str | None:
    """Steps 1-4 of the module docstring for the Parquet bytes ``data``; ``None`` when committed,
    else why the partition was left as it is (one phrase)."""
    journal = partition_journal(partition)
    etag = create_object(journal, json.dumps({"output": output, "inputs": [p.name for p in inputs]}).encode())
    if etag is None:
        return "another compaction holds its journal: left to it"
    present = {entry.path.name for entry in list_dir(partition) if entry.kind == "file"}
    if any(path.name not in present for path in inputs):
        delete_if_match(journal, etag)
        return "another compaction replaced files since they were read: left as is"
    if create_object(as_object(partition) / output, data) is None:  # fenced: another run rolled us back
        return "another run rolled this compaction back while it was written: left to it"
    for path in inputs:
        path.unlink(missing_ok=True)
    delete_if_match(journal, etag)  # False: a recovery rolled it forward meanwhile (same result)
    return None


def recover_remote(partition: Path) -> list[str]:
    """Roll the journals of ``partition`` forward or back, and delete old tombstones (see the
    module docstring); what was done, one line each."""
    actions: list[str] = []
    entries = list_dir(partition)
    for entry in entries:
        if entry.kind == "file" and is_compact_journal(entry.path.name):
            actions.extend(_recover_journal(partition, as_object(entry.path)))
    for entry in entries:
        if entry.kind == "file" and entry.size == 0 and parse_file_name(entry.path.name) is not None:
            version = head_version(as_object(entry.path))
            if (version is not None and version.tombstone and version.age_s >= TEMP_GRACE_S
                    and delete_if_match(as_object(entry.path), version.etag)):
                actions.append(f"{entry.path}: removed the tombstone of a rolled-back compaction")
    return actions


def _recover_journal(partition: Path, journal: ObjectPath) -> list[str]:
    found = read_version(journal)
    if found is None:  # its compaction finished meanwhile
        return []
    content, version = found
    output, inputs = parse_journal(content) or ("", [])
    target = as_object(partition) / output if parse_file_name(output) is not None else None
    committed = target is not None and _committed(target)
    if committed:
        for name in inputs:
            (as_object(partition) / name).unlink(missing_ok=True)
    if not delete_if_match(journal, version.etag):
        return []  # its compactor (or another recovery) finished or replaced it meanwhile
    if committed:
        return [f"{journal}: rolled forward ({len(inputs)} inputs removed)"]
    if target is not None and version.age_s >= TEMP_GRACE_S:  # its compactor is dead: no fence needed
        fence = head_version(target)
        if fence is not None and fence.tombstone:
            delete_if_match(target, fence.etag)
    return [f"{journal}: rolled back (compaction never committed)"]


def _committed(output: ObjectPath) -> bool:
    """Whether the compaction whose output is ``output`` committed; if it has not, fence the name
    with a tombstone first, so it never will (its own PUT of the name then fails)."""
    if put_tombstone(output):
        return False
    version = head_version(output)
    return version is not None and not version.tombstone
