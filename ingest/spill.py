"""Events the log could not write into the data directory, kept outside it until they can be.

When the data directory is full or read-only, :class:`ingest.log.EventLog` keeps its buffer and
retries; what still cannot be written when the log closes is *spilled* here instead of lost::

    $XDG_STATE_HOME/hive/spill/                                  0700 (else ~/.local/state/hive/spill)
        <key>/source.json                                        {"data_dir": "/abs/data/dir"}
        <key>/<writer>/<type>/date=YYYY-MM-DD/<writer>-<seq>.parquet     0600

``<key>`` is a hash of the data directory's absolute path, so spills of different stores never mix.
The spill root is outside any data directory on purpose (the data directory is the thing that
failed); when it cannot be written either (a home directory on the same full disk), the
temporary directory is tried (``<tmp>/hive-spill-<uid>``).

A spilled file has exactly the name the log would have given it in the store, so taking it back
(:func:`import_spills`, run by ``hive-jobs import-spills`` and before every ``hive-jobs`` command)
is: drop the rows whose ``event_id`` the store's partition already holds, write the rest under
that name, delete the spilled file. Interrupted at any point and run again - or run twice at once
(an ``flock`` serialises them) or after a compaction folded an earlier, interrupted import away -
it adds every event exactly once.

A store in object storage (``s3://``) spills to local disk the same way (its events are keyed by
its URL) and takes them back with the same steps: the partition's event ids are read through
``pyarrow.fs``, the rest written with one PUT (spills are per host, so no other host imports the
same file).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from hive_core.store.datadir import DataDir, is_remote
from hive_core.store.layout import parse_file_name, partition_date, partition_name
from hive_core.store.lock import file_lock

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "SpillImport",
    "data_dir_key",
    "import_spills",
    "pending_spills",
    "spill_events",
    "spill_roots",
]

_LOCK_NAME = ".lock"
_SOURCE_NAME = "source.json"
#: a compaction can replace a partition's files while we read their event ids: list again this often
_LISTING_ATTEMPTS = 5


def spill_roots(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where spills go, in order of preference: the XDG state directory, then the temp directory."""
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return [Path(state) / "hive" / "spill", Path(tempfile.gettempdir()) / f"hive-spill-{os.getuid()}"]


def data_dir_key(data_dir: Path) -> str:
    """The spill sub-directory of one data directory: a hash of its absolute path (or URL)."""
    return hashlib.sha256(_identity(data_dir).encode()).hexdigest()[:16]


def _identity(data_dir: Path) -> str:
    """The absolute path of a local data directory; the URL of one in object storage (its events
    spill to local disk like a local store's: outside the data directory)."""
    return str(data_dir) if is_remote(data_dir) else str(Path(data_dir).absolute())


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def spill_events(
    data_dir: Path, writer: str, parts: Sequence[tuple[str, date, str, pa.Table]],
    *, roots: Sequence[Path] | None = None,
) -> Path:
    """Write ``(event_type, day, file_name, table)`` parts under the first spill root that takes them.

    Returns the writer's spill directory; raises the last ``OSError`` when no root could.
    """
    from ingest.files import write_atomic

    error: OSError | None = None
    for root in roots if roots is not None else spill_roots():
        try:
            _private_dir(root)
            key_dir = _private_dir(root / data_dir_key(data_dir))
            with file_lock(key_dir / _LOCK_NAME):  # spilling and importing: one process at a time
                source = key_dir / _SOURCE_NAME
                if not source.exists():
                    from hive_core.store.atomic import write_json_atomic

                    write_json_atomic(source, {"data_dir": _identity(data_dir)})
                where = _private_dir(key_dir / writer)
                for event_type, day, name, table in parts:
                    target = where / event_type / partition_name(day) / name
                    if target.exists():
                        continue  # spilled by an earlier attempt of this same close
                    write_atomic(table, target)
                    os.chmod(target, 0o600)
            return where
        except OSError as exc:
            error = exc
    assert error is not None
    raise error


def pending_spills(data_dir: Path, *, roots: Sequence[Path] | None = None) -> list[Path]:
    """The spilled event files waiting for ``data_dir``, oldest writer first."""
    found: list[Path] = []
    key = data_dir_key(data_dir)
    for root in roots if roots is not None else spill_roots():
        key_dir = root / key
        if key_dir.is_dir():
            found.extend(sorted(p for p in key_dir.glob("*/*/date=*/*.parquet") if _spilled_target(data_dir, p)))
    return found


def _spilled_target(data_dir: Path, spilled: Path) -> Path | None:
    """Where a spilled file belongs in the store (``None`` for a name the log never writes)."""
    day = partition_date(spilled.parent)
    if day is None or parse_file_name(spilled.name) is None:
        return None
    return DataDir(data_dir).partition(spilled.parent.parent.name, day) / spilled.name


@dataclass
class SpillImport:
    """What :func:`import_spills` took back."""

    # (counts and lists, like every job's report: alike by shape, nothing shared to factor out)
    files: int = 0
    events: int = 0
    #: rows already in the store (an earlier import was interrupted after writing them)
    duplicates: int = 0
    sources: list[Path] = field(default_factory=list)
    #: spilled files that cannot be read as Parquet (left where they are, for a look)
    unreadable: list[Path] = field(default_factory=list)


def import_spills(data_dir: Path, *, roots: Sequence[Path] | None = None) -> SpillImport:
    """Take every spilled event of ``data_dir`` back into its store, exactly once (see the module doc).

    Raises ``OSError`` when the store still cannot be written; what was imported so far stays
    imported, the rest stays spilled.
    """
    result = SpillImport()
    key = data_dir_key(data_dir)
    for root in roots if roots is not None else spill_roots():
        key_dir = root / key
        if not key_dir.is_dir():
            continue
        with file_lock(key_dir / _LOCK_NAME):
            for spilled in pending_spills(data_dir, roots=[root]):
                _import_one(data_dir, spilled, result)
            _remove_empty_dirs(key_dir)
        result.sources.append(key_dir)
    return result


def _import_one(data_dir: Path, spilled: Path, result: SpillImport) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ingest.files import write_atomic

    target = _spilled_target(data_dir, spilled)
    assert target is not None  # pending_spills lists only names it can place
    try:
        table = pq.read_table(spilled)
    except pa.ArrowException:  # damaged after it was written (it was written atomically)
        result.unreadable.append(spilled)
        return
    present = _present_ids(target.parent)
    keep = [event_id not in present for event_id in table.column("event_id").to_pylist()]
    fresh = table.filter(pa.array(keep, pa.bool_()))
    if fresh.num_rows:
        with contextlib.suppress(FileExistsError):  # same name, same rows: an earlier import wrote it
            write_atomic(fresh, target)
    result.files += 1
    result.events += fresh.num_rows
    result.duplicates += table.num_rows - fresh.num_rows
    spilled.unlink()


def _present_ids(partition: Path) -> set[str]:
    """Every event id in the store's files of one partition (the writer's names only)."""
    import pyarrow as pa

    from hive_core.store.objects import read_parquet

    for _ in range(_LISTING_ATTEMPTS):
        ids: set[str] = set()
        try:
            names = sorted(p.name for p in partition.iterdir()) if is_remote(partition) else sorted(os.listdir(partition))
        except FileNotFoundError:
            return ids
        try:
            for name in names:
                if parse_file_name(name) is not None:
                    with contextlib.suppress(pa.ArrowException):  # a foreign file is not data
                        ids.update(read_parquet(partition / name, columns=["event_id"]).column(0).to_pylist())
        except FileNotFoundError:
            continue  # a compaction replaced inputs by their output meanwhile: list again
        return ids
    raise OSError(f"{partition} kept changing while its event ids were read; try again")


def _remove_empty_dirs(key_dir: Path) -> None:
    for directory in sorted((p for p in key_dir.glob("*/**") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            directory.rmdir()
