"""How the files and partition folders of the event log are named, and how their names are parsed.

Where they are is :class:`hive_core.store.datadir.DataDir`'s (``DataDir.partition``); the names are
this module's, and a leaf's, so every reader can check a name without importing anything of Hive's:

    <data>/events/<type>/date=YYYY-MM-DD/<writer-id>-<seq>.parquet     committed event file
    <data>/events/<type>/date=YYYY-MM-DD/.<name>.parquet.tmp           being written (never read)
    <data>/events/<type>/date=YYYY-MM-DD/.compact-<id>.json            compaction journal (ingest.compact)

Committed names sort in time order (the writer id starts with its UTC start time, the sequence is
zero-padded) and carry their writer. **The file-name rule:** the data of a partition is exactly the
names :func:`parse_file_name` accepts. Anything else a human or a tool leaves there (``x.parquet.bak``,
``x~``, ``backup``, ``copy of x.parquet``) is a stray: never read, never compacted, reported by
``hive-jobs verify`` (:mod:`hive_core.store.event_files`). Temporary names never end in ``.parquet``, so
plain ``read_parquet('<data>/events/**/*.parquet')`` never sees a half-written file either.
The writer, the compactor, the verifier and the readers all go through these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

__all__ = [
    "FIRST_DAY",
    "LAST_DAY",
    "TS_MAX",
    "TS_MIN",
    "EventFileName",
    "compact_journal_glob",
    "compact_journal_name",
    "day_in_range",
    "is_compact_journal",
    "is_temporary",
    "parse_file_name",
    "partition_date",
    "partition_name",
    "temporary_name",
]

#: ``<writer>-<seq>.parquet``: the writer starts with a letter or digit (any script: writer ids carry
#: the host name's alphanumerics, ``hive_core.ids``), then letters, digits, ``_`` and ``-``
_NAME = re.compile(r"(?P<writer>[^\W_][\w-]*?)-(?P<seq>[0-9]{6,})\.parquet")
#: The range of timestamps an event may carry, half-open, and the UTC days it spans. Hive's writers
#: refuse anything outside it at record time (``hive_core.store.events``); rows of foreign files outside it
#: are quarantined by the readers (``hive_core.store.quarantine``), partitions outside it are never rolled
#: up. Wide enough for any real traffic, narrow enough that day arithmetic never overflows (one event
#: dated 9999-12-31 once made every rollup fail). A leaf constant, so readers need no pydantic.
TS_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2200, 1, 1, tzinfo=UTC)
FIRST_DAY, LAST_DAY = TS_MIN.date(), date(TS_MAX.year - 1, 12, 31)


def day_in_range(day: date) -> bool:
    """Whether an event can be dated ``day`` (UTC)."""
    return FIRST_DAY <= day <= LAST_DAY


_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True, order=True)
class EventFileName:
    """A committed event file's name: ``<writer>-<seq>.parquet``."""

    writer: str
    seq: int

    def format(self) -> str:
        """``<writer>-<seq>.parquet``, the sequence zero-padded to six digits."""
        return f"{self.writer}-{self.seq:06d}.parquet"


def parse_file_name(name: str) -> EventFileName | None:
    """The inverse of :meth:`EventFileName.format`; ``None`` for anything that is not an event file."""
    match = _NAME.fullmatch(name)  # not match(..$): "$" also matches before a final newline
    if match is None:
        return None
    return EventFileName(match["writer"], int(match["seq"]))


def partition_name(day: date) -> str:
    """``date=YYYY-MM-DD``: the folder of one UTC day (Hive partitioning; events and daily rollups)."""
    return f"date={day.isoformat()}"


def partition_date(directory: Path) -> date | None:
    """The date of a ``date=YYYY-MM-DD`` directory (the inverse of :func:`partition_name`), or ``None``."""
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
    """A file being written (or left by a killed writer): never data."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def compact_journal_glob() -> str:
    """The names of compaction journals, as a glob."""
    return ".compact-*.json"


def compact_journal_name(output: str) -> str:
    """The journal of the compaction whose output is the event file ``output``."""
    return f".compact-{output.removesuffix('.parquet')}.json"


def is_compact_journal(name: str) -> bool:
    return name.startswith(".compact-") and name.endswith(".json")
