"""What the last rollup saw: a fingerprint of each day's event files, in ``<data>/rollups/state.json``.

A day's fingerprint hashes the sorted (type, file name, size, mtime) of the committed files in its
``date=`` partitions of the types the rollup reads (listed by :func:`hive_core.event_files.list_event_files`
without opening them: one ``stat`` per file, so readers can tell fresh from stale days cheaply). Event files are immutable (written once,
atomically), so a day whose fingerprint is unchanged would roll up to the same rows and is skipped;
a late event, a new writer's file or a compaction changes it and the day is redone. The state
also records ``FORMAT`` (the rollup's layout and histogram resolution): a change of either makes
every day stale, so upgrading Hive never mixes old and new rows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from hive_core.atomic import write_bytes_atomic
from hive_core.layout import partition_date
from jobs import histogram

__all__ = ["FORMAT", "SOURCES", "RollupState", "day_fingerprints"]

#: event types the daily rollup reads
SOURCES = ("api_call", "usage", "stream_outcome")
#: bump when the rollup's columns or semantics change
FORMAT = f"daily-v3/alpha={histogram.ALPHA}"


def day_fingerprints(data_dir: Path) -> dict[date, str]:
    """Fingerprint of the committed event files of each day that has any."""
    from hive_core.event_files import list_event_files

    per_day: dict[date, list[str]] = {}
    for type_name in SOURCES:
        for path in list_event_files(data_dir, type_name, check=False).files:
            day = partition_date(path.parent)
            if day is None:
                continue
            stat = path.stat()
            per_day.setdefault(day, []).append(f"{type_name}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return {
        day: hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:32]
        for day, entries in sorted(per_day.items())
    }


@dataclass
class RollupState:
    """Day -> fingerprint of the files its rollup was computed from."""

    days: dict[date, str] = field(default_factory=dict)
    format: str = FORMAT

    @classmethod
    def load(cls, path: Path) -> RollupState:
        """The saved state; an empty one if missing, unreadable or of another format (-> full redo)."""
        try:
            raw = json.loads(path.read_text())
            if raw.get("format") != FORMAT:
                return cls()
            return cls(days={date.fromisoformat(d): str(fp) for d, fp in raw["days"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls()

    def save(self, path: Path) -> None:
        """Write atomically (temporary file, fsync, rename) so a killed run leaves the old state."""
        body = json.dumps(
            {"format": self.format, "days": {d.isoformat(): fp for d, fp in sorted(self.days.items())}},
            indent=1,
        )
        write_bytes_atomic(path, (body + "\n").encode())
