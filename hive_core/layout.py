"""Where events live on disk, and how their file names are formed and parsed.

    <data>/events/<type>/date=YYYY-MM-DD/<writer-id>-<seq>.parquet     committed event file
    <data>/events/<type>/date=YYYY-MM-DD/.<name>.parquet.tmp           being written (never read)
    <data>/events/<type>/date=YYYY-MM-DD/.compact-<id>.json            compaction journal (ingest.compact)

Committed names sort in time order (the writer id starts with its UTC start time, the sequence is
zero-padded) and carry their writer. Only names ending in ``.parquet`` and not starting with ``.``
are data, so plain ``read_parquet('<data>/events/**/*.parquet')`` never sees a half-written file.
The writer, the compactor, the verifier and the readers all go through these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

__all__ = [
    "EventFileName",
    "compact_journal_glob",
    "event_dir",
    "is_temporary",
    "parse_file_name",
    "partition_date",
    "partition_dir",
    "temporary_name",
]

_NAME = re.compile(r"^(?P<writer>[A-Za-z0-9][A-Za-z0-9_-]*?)-(?P<seq>\d{6,})\.parquet$")
_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True, order=True)
class EventFileName:
    """A committed event file's name: ``<writer>-<seq>.parquet``."""

    writer: str
    seq: int

    def format(self) -> str:
        return f"{self.writer}-{self.seq:06d}.parquet"


def parse_file_name(name: str) -> EventFileName | None:
    """The inverse of :meth:`EventFileName.format`; ``None`` for anything that is not an event file."""
    match = _NAME.match(name)
    if match is None:
        return None
    return EventFileName(match["writer"], int(match["seq"]))


def event_dir(data_dir: Path, event_type: str) -> Path:
    return data_dir / "events" / event_type


def partition_dir(data_dir: Path, event_type: str, day: date) -> Path:
    """``<data>/events/<type>/date=YYYY-MM-DD`` (Hive partitioning by the event's UTC date)."""
    return event_dir(data_dir, event_type) / f"date={day.isoformat()}"


def partition_date(directory: Path) -> date | None:
    """The date of a ``date=YYYY-MM-DD`` directory, or ``None``."""
    match = _PARTITION.match(directory.name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match[1])
    except ValueError:
        return None


def temporary_name(final_name: str) -> str:
    """The name a file is written under before it is renamed into place."""
    return f".{final_name}{TMP_SUFFIX}"


def is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def compact_journal_glob() -> str:
    return ".compact-*.json"
