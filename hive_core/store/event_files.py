"""Which event files a reader may read: the store's file rules, and a listing that a concurrent
compaction cannot make inconsistent.

The rules every reader (views, jobs, verify, compaction) applies, in one place:

* **Names.** A partition's data is exactly the names :func:`hive_core.store.layout.parse_file_name`
  accepts (``<writer>-<seq>.parquet``). Any other entry - ``x.parquet.bak``, ``x~``, ``backup``,
  ``copy of x.parquet``, a subdirectory, a hidden ``.x.parquet`` (plain DuckDB globs would read it)
  - is a *stray*: skipped with a reason, never read, never compacted. Other hidden names are the
  protocol's own (temporary files, compaction journals) or a desktop's (``.DS_Store``): ignored.
* **Contents** (:mod:`hive_core.store.file_checks`). A file that is not a readable Parquet file of the
  type, or has a column no lossless cast makes the schema's, is skipped with a reason (never
  deleted; ``hive-jobs verify`` reports it and exits 1). A file whose footer does not prove every
  ``ts`` sound is *checked*: readers filter its rows through :mod:`hive_core.store.quarantine`.
* **Compactions.** The inputs of a committed compaction (its journal names an output that is listed)
  are superseded by that output and skipped, so a compaction killed before it removed them double
  counts nothing.

**Consistency against a concurrent compaction, without the store lock.** A compaction
(``ingest.compact``) writes its journal, renames its output into place, deletes its inputs, then its
journal; a directory listing is not atomic, so a reader could list the output and inputs that are
still there (a double count), or miss an output renamed in behind its read position and inputs
deleted ahead of it (a loss). Each partition is therefore listed twice, with its journals read in
between, and the snapshot is taken only when both listings agree (temporary files aside): every name
of the snapshot then existed during the whole interval between them, when the journals were read, so
an input still listed beside its listed output always has its journal read and is skipped. A
compaction that slips a whole commit (rename, deletions) into one listing and its follow-up into the
next would escape this, but that needs two compactions, each reading and fsyncing a Parquet file,
inside two directory reads. A file that vanishes before it is opened restarts the partition; after
:data:`LIST_ATTEMPTS` unstable listings the reader gives up with a one-line error.

A query opens the files later still, when a compaction may have deleted some. With ``pin``, every
listed file is held open (:attr:`FileSet.pinned`, :mod:`hive_core.store.pinning`) and readers open
it again through its descriptor's name (:meth:`FileSet.readable`), which reaches the same file after
it is deleted: the snapshot holds for as long as the descriptors do. Where descriptors have no
names, or when a listing needs more of them than the process may open, files are named by path and
readers retry a query that meets a deleted one (``queries.connect``).

Checks are cached per (path, size, mtime), so listing a large store twice costs one ``stat`` a file.

**In object storage** (an ``s3://`` data directory, :mod:`hive_core.store.objects`) one event type is
listed in one recursive LIST (paged by the server), twice around its journals, with the same rules:
S3's listings are strongly consistent, and a compaction there commits in the same order (journal,
output, deletions). Nothing can be pinned: a query that meets an object deleted since the listing
lists again (``queries.connect``), as a local store does where descriptors have no names. An empty
object marked as a tombstone (:func:`hive_core.store.conditional.put_tombstone`: the name of a
compaction's output that another run rolled back, fenced so the late PUT fails) is the protocol's
own, not data and not a stray: it is left out (one HEAD per empty object; Hive writes no other).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from hive_core.errors import DataError
from hive_core.store.datadir import DataDir, is_remote
from hive_core.store.file_checks import SOUND, check_file, file_verdict
from hive_core.store.layout import (
    is_compact_journal,
    is_temporary,
    parse_file_name,
    partition_date,
)
from hive_core.store.pinning import FD_DIR, OutOfDescriptors, open_pinned

__all__ = ["LIST_ATTEMPTS", "Entry", "FileSet", "check_file", "list_dir", "list_event_files", "parse_journal",
           "read_journal"]

#: listings of one partition before a reader gives up (with backoff: about 2 s in all)
LIST_ATTEMPTS = 50


@dataclass
class FileSet:
    """The readable files of one event type (sorted by partition, then name), and the ones skipped
    with their reasons."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    #: files of ``files`` whose rows readers check one by one, with their ``ts`` column's Arrow type
    #: (files of one ``ts`` type are read together)
    checked: dict[Path, str] = field(default_factory=dict)
    #: ``(size, mtime_ns)`` of each file of ``files`` as listed: fingerprints need no second ``stat``
    stats: dict[Path, tuple[int, int]] = field(default_factory=dict)
    #: open descriptors of the files, when listed with ``pin`` (see :func:`list_event_files`)
    pinned: dict[Path, int] = field(default_factory=dict)

    def readable(self, path: Path) -> str:
        """The name to open ``path`` by: its pinned descriptor's (``/proc/self/fd/N``), which stays
        readable after a compaction deletes the file, else the path itself."""
        fd = self.pinned.get(path)
        return str(path) if fd is None else f"{FD_DIR}/{fd}"

    def close(self) -> None:
        """Release the pinned descriptors (the names of :meth:`readable` then stop working)."""
        for fd in self.pinned.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.pinned.clear()


class _Vanished(Exception):
    """A listed file disappeared (a compaction deleted it): list the partition again."""



def read_journal(journal: Path) -> tuple[str, list[str]] | None:
    """A compaction journal's (output name, input names); ``None`` for a vanished, torn or foreign file."""
    try:  # an object deleted while it was read is FileNotFoundError too (the backend's get)
        return parse_journal(journal.read_bytes())
    except OSError:
        return None


def parse_journal(content: bytes) -> tuple[str, list[str]] | None:
    """A journal's content as (output name, input names); ``None`` when it is torn or foreign."""
    try:
        entry = json.loads(content)
        return str(entry["output"]), [str(name) for name in entry["inputs"]]
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Entry:
    """One entry of a directory, or of a prefix in object storage (:func:`list_dir`)."""

    path: Path
    #: ``"file"``, ``"dir"``, or None for neither (a dangling link, an entry gone meanwhile)
    kind: str | None
    #: a file's size and mtime (POSIX seconds; an object's ``Last-Modified``); None otherwise
    size: int | None = None
    mtime: float | None = None


def list_dir(directory: Path) -> list[Entry]:
    """The entries directly under ``directory``, sorted by name (links followed); none when it is
    missing. In object storage one LIST answers with every type, size and date (a ``stat`` per
    entry would be a request per entry)."""
    if is_remote(directory):
        return _list_remote_dir(directory)
    entries = []
    try:
        with os.scandir(directory) as found:
            for item in found:
                path = directory / item.name
                try:
                    stat = item.stat()
                except FileNotFoundError:  # a dangling link, or removed since the listing
                    entries.append(Entry(path, None))
                    continue
                kind = "dir" if item.is_dir() else "file" if item.is_file() else None
                entries.append(Entry(path, kind, stat.st_size, stat.st_mtime) if kind == "file" else Entry(path, kind))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(entries, key=lambda e: e.path.name)


def _list_remote_dir(directory: Path) -> list[Entry]:
    import pyarrow.fs as pafs

    from hive_core.store.backends import backend
    from hive_core.store.objects import as_object

    remote = as_object(directory)
    infos = backend(remote.scheme).listdir(remote)
    entries = []
    for info in infos:
        path = remote / info.path.rsplit("/", 1)[-1]
        if info.type == pafs.FileType.Directory:
            entries.append(Entry(path, "dir"))
        elif info.type == pafs.FileType.File:
            entries.append(Entry(path, "file", int(info.size or 0), int(info.mtime_ns or 0) / 1e9))
    return sorted(entries, key=lambda e: e.path.name)


def list_event_files(data_dir: Path, event_type: str, *, check: bool = True, pin: bool = False,
                     days: tuple[date, date] | None = None) -> FileSet:
    """The files a reader of ``event_type`` should read, as one consistent snapshot per partition
    (see the module docstring); ``check=False`` applies the name and compaction rules only (no file
    is opened). With ``pin``, each file is held open (:attr:`FileSet.pinned`; :meth:`FileSet.close`
    releases them). ``days`` (first, last): only the partitions of those UTC days (a batch of the
    rollup need not open a year of files). Raises :class:`~hive_core.errors.DataError` when a
    partition keeps changing."""
    result = FileSet()
    root = DataDir(data_dir).event_type(event_type)
    if is_remote(root):
        return _list_remote(root, event_type, check=check, days=days)
    try:
        partitions = sorted(p for p in root.iterdir() if _in_days(partition_date(p), days) and p.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return result
    pin = pin and FD_DIR is not None
    for partition in partitions:
        for attempt in range(LIST_ATTEMPTS):
            part = FileSet()
            try:
                _snapshot(partition, event_type, part, check=check, pin=pin)
                break
            except _Vanished:
                part.close()
                time.sleep(min(0.001 * 2**attempt, 0.05))
            except OutOfDescriptors:  # too many files to hold open: read by path (module docstring)
                part.close()
                result.close()
                return list_event_files(data_dir, event_type, check=check, pin=False)
        else:
            result.close()
            raise DataError(f"{partition} kept changing while it was listed ({LIST_ATTEMPTS} attempts): "
                            "something other than Hive's writers and compaction is rewriting it; try again")
        result.files.extend(part.files)
        result.skipped.extend(part.skipped)
        result.checked.update(part.checked)
        result.stats.update(part.stats)
        result.pinned.update(part.pinned)
    return result


def _in_days(day: date | None, days: tuple[date, date] | None) -> bool:
    return day is not None and (days is None or days[0] <= day <= days[1])


def _names(partition: Path) -> dict[str, bool] | None:
    """Every name in ``partition`` but temporaries, mapped to whether it is a directory; ``None`` when
    the partition itself is gone."""
    try:
        with os.scandir(partition) as entries:
            return {e.name: e.is_dir() for e in entries if not is_temporary(e.name)}
    except FileNotFoundError:
        return None


def _snapshot(partition: Path, event_type: str, result: FileSet, *, check: bool, pin: bool) -> None:
    """One partition into ``result``, listed twice around its journals; raises :class:`_Vanished`
    when the listings differ or a listed file is gone before it is opened."""
    first = _names(partition)
    journals = [entry for name in sorted(first or ()) if is_compact_journal(name)
                if (entry := read_journal(partition / name)) is not None]
    if _names(partition) != first:
        raise _Vanished(str(partition))
    if first is None:
        return
    for path in _data_names(partition, first, journals, result):
        readable = str(path)
        try:
            if pin:
                result.pinned[path] = open_pinned(path)
                readable = f"{FD_DIR}/{result.pinned[path]}"
                stat = os.fstat(result.pinned[path])
            else:
                stat = path.stat()
        except FileNotFoundError as exc:
            raise _Vanished(str(path)) from exc
        try:
            verdict = file_verdict(path, readable, stat.st_size, stat.st_mtime_ns, event_type) if check else SOUND
        except FileNotFoundError as exc:
            raise _Vanished(str(path)) from exc
        if verdict.reason is not None:
            result.skipped.append((path, verdict.reason))
            if path in result.pinned:
                os.close(result.pinned.pop(path))
            continue
        result.files.append(path)
        result.stats[path] = (stat.st_size, stat.st_mtime_ns)
        if verdict.checked is not None:
            result.checked[path] = verdict.checked


def _data_names(partition: Path, names: dict[str, bool], journals: list[tuple[str, list[str]]],
                result: FileSet) -> list[Path]:
    """The files of one listed partition that are data: strays go to ``result.skipped``, the
    inputs of a committed compaction (its output is listed) are left out."""
    superseded = {name for output, inputs in journals if output in names for name in inputs}
    data = []
    for name, is_dir in sorted(names.items()):
        path = partition / name
        if parse_file_name(name) is None or is_dir:
            if not name.startswith(".") or name.endswith(".parquet"):
                kind = "a directory" if is_dir else "not an event file name (<writer>-<seq>.parquet)"
                result.skipped.append((path, f"stray: {kind}; never read"))
            continue
        if name not in superseded:
            data.append(path)
    return data


def _list_remote(root: Path, event_type: str, *, check: bool, days: tuple[date, date] | None) -> FileSet:
    """:func:`list_event_files` in object storage: one recursive LIST, twice around the journals. Only
    the partitions of ``days`` are read further (journals, footers): a rollup batch checks its own."""
    for attempt in range(LIST_ATTEMPTS):
        result = FileSet()
        first = _remote_names(root, days)
        journals = {partition: [entry for name in sorted(names) if is_compact_journal(name)
                                if (entry := read_journal(partition / name)) is not None]
                    for partition, (names, _stats) in first.items()}
        if _remote_names(root, days) != first:
            time.sleep(min(0.01 * 2**attempt, 0.2))
            continue
        try:
            for partition, (names, stats) in sorted(first.items()):
                names = {name: is_dir for name, is_dir in names.items() if not _tombstone(partition, name, stats)}
                for path in _data_names(partition, names, journals[partition], result):
                    size, mtime_ns = stats[path.name]
                    verdict = file_verdict(path, str(path), size, mtime_ns, event_type) if check else SOUND
                    if verdict.reason is not None:
                        result.skipped.append((path, verdict.reason))
                        continue
                    result.files.append(path)
                    result.stats[path] = (size, mtime_ns)
                    if verdict.checked is not None:
                        result.checked[path] = verdict.checked
        except FileNotFoundError:  # deleted between the listing and its check: list again
            continue
        return result
    raise DataError(f"{root} kept changing while it was listed ({LIST_ATTEMPTS} attempts): something other "
                    "than Hive's writers and compaction is rewriting it; try again")


def _tombstone(partition: Path, name: str, stats: dict[str, tuple[int, int]]) -> bool:
    """Whether ``name`` is an empty object named like data and marked as a compaction's tombstone."""
    if stats.get(name, (1, 0))[0] != 0 or parse_file_name(name) is None:
        return False
    from hive_core.store.conditional import head_version
    from hive_core.store.objects import as_object

    version = head_version(as_object(partition / name))
    if version is None:
        raise FileNotFoundError(2, "no such object", str(partition / name))  # deleted since: list again
    return version.tombstone


def _remote_names(root: Path, days: tuple[date, date] | None = None
                  ) -> dict[Path, tuple[dict[str, bool], dict[str, tuple[int, int]]]]:
    """Each ``date=`` partition under ``root`` (of ``days`` only, when given): its names (but
    temporaries) mapped to whether they are a "directory" (a deeper prefix), and the (size, mtime_ns)
    of its objects."""
    import pyarrow.fs as pafs

    from hive_core.store.objects import as_object, translated

    remote = as_object(root)
    with translated(remote):
        infos = remote.filesystem.get_file_info(pafs.FileSelector(remote.key, recursive=True, allow_not_found=True))
    found: dict[Path, tuple[dict[str, bool], dict[str, tuple[int, int]]]] = {}
    for info in infos:
        parts = info.path[len(remote.key) + 1:].split("/")
        partition = root / parts[0]
        if not _in_days(partition_date(partition), days) or len(parts) == 1:
            continue
        names, stats = found.setdefault(partition, ({}, {}))
        name = parts[1]
        if is_temporary(name):
            continue
        is_dir = len(parts) > 2 or info.type == pafs.FileType.Directory
        names[name] = names.get(name, False) or is_dir
        if not is_dir:
            stats[name] = (int(info.size or 0), int(info.mtime_ns or 0))
    return found
