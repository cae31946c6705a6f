"""What the last rollup saw and wrote, in ``<data>/rollups/state.json``, and which days are stale now.

Inputs. A day's fingerprint hashes the sorted (type, file name, size, mtime) of the committed files
in its ``date=`` partitions of the types the rollup reads (listed by
:func:`hive_core.store.event_files.list_event_files` without opening them: one ``stat`` per file, so
readers can tell fresh from stale days cheaply). Event files are immutable (written once,
atomically), so a day whose fingerprint is unchanged would roll up to the same rows; a late event,
a new writer's file or a compaction changes it and the day is redone.

Outputs. The state also records the (size, mtime) of every file the rollup wrote (each day's file,
each month's two files). A day whose file was deleted, truncated or replaced since (or whose
month's files were) is stale too, so the next run regenerates it - the same bytes, the rollups
being a pure function of the events - instead of calling it up to date and reporting $0.

The state records ``FORMAT`` (the rollup's layout and histogram resolution). A state of another
format, a missing state, or one that cannot be read (it is only a cache of what is on disk) is
*untrusted*: every day is recomputed and every month rebuilt, which loses nothing. A corrupt state
says so (:attr:`RollupState.problem`) so the run can report it.

Partitions dated outside the days an event can have (:data:`hive_core.store.layout.FIRST_DAY`..``LAST_DAY``, the span
:mod:`hive_core.store.events` accepts) hold no Hive event: they are reported, never rolled up.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from hive_core.store.atomic import write_bytes_atomic
from hive_core.store.datadir import DataDir
from hive_core.store.layout import FIRST_DAY, LAST_DAY, day_in_range, partition_date
from jobs.rollup import histogram

__all__ = [
    "FORMAT", "MONTH_PARTS", "SOURCES", "EventDays", "RollupState", "day_fingerprints", "month_of",
    "scan_event_days", "signature",
]

#: event types the daily rollup reads
SOURCES = ("api_call", "usage", "stream_outcome")
#: bump when the rollup's columns or semantics change
FORMAT = f"daily-v4/alpha={histogram.ALPHA}"  # v4: usage schema 2 counters, the BYOK split
#: the two files of a month (:meth:`hive_core.store.datadir.DataDir.rollup_month`), the days first
MONTH_PARTS = ("days", "totals")


def month_of(day: date) -> str:
    """``YYYY-MM``, the name of the month files holding ``day``."""
    return f"{day.year:04d}-{day.month:02d}"


def signature(path: Path) -> str | None:
    """``size:mtime_ns`` of a file, ``None`` when there is none: any rewrite changes it. (In object
    storage the time is the object's ``Last-Modified``, whole seconds on S3: a same-size replacement
    within the second of the rollup's own write would go unseen.)"""
    try:
        stat = path.stat()
    except OSError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@dataclass
class EventDays:
    """The days with committed event files, and the partitions no event can be in."""

    fingerprints: dict[date, str] = field(default_factory=dict)
    #: bytes on disk of each day's event files (what a batch of days will cost to roll up)
    sizes: dict[date, int] = field(default_factory=dict)
    #: (partition directory, why it is not rolled up)
    out_of_range: list[tuple[Path, str]] = field(default_factory=list)


def scan_event_days(data_dir: Path) -> EventDays:
    """Fingerprint of the committed event files of each day that has any (see the module docstring).
    In object storage the sizes and times are the listing's (one LIST per type, no HEAD per object)."""
    from hive_core.store.event_files import list_event_files

    result = EventDays()
    per_day: dict[date, list[str]] = {}
    for type_name in SOURCES:
        listing = list_event_files(data_dir, type_name, check=False)
        for path in listing.files:
            day = partition_date(path.parent)
            if day is None:
                continue
            if not day_in_range(day):
                if not any(p == path.parent for p, _ in result.out_of_range):
                    result.out_of_range.append((path.parent, f"partition dated outside {FIRST_DAY.year}.."
                                                f"{LAST_DAY.year} (no event can be): not rolled up"))
                continue
            # the listing's own stat: a compaction may delete the file a moment later
            size, mtime_ns = listing.stats[path]
            per_day.setdefault(day, []).append(f"{type_name}/{path.name}:{size}:{mtime_ns}")
            result.sizes[day] = result.sizes.get(day, 0) + size
    result.fingerprints = {
        day: hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:32]
        for day, entries in sorted(per_day.items())
    }
    return result


def day_fingerprints(data_dir: Path) -> dict[date, str]:
    """Fingerprint of the committed event files of each (in-range) day that has any."""
    return scan_event_days(data_dir).fingerprints


@dataclass
class RollupState:
    """Day -> fingerprint of the files its rollup was computed from; output file -> signature."""

    days: dict[date, str] = field(default_factory=dict)
    #: path relative to the rollups directory -> :func:`signature` when the rollup wrote it
    outputs: dict[str, str] = field(default_factory=dict)
    format: str = FORMAT
    #: False when the state was missing, unreadable or of another format: everything is redone
    trusted: bool = True
    #: why the state file could not be used, when it exists but is corrupt
    problem: str | None = None

    @classmethod
    def load(cls, path: Path) -> RollupState:
        """The saved state; an untrusted empty one if missing, unreadable or of another format."""
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(trusted=False)
        except (OSError, ValueError) as exc:  # ValueError: not JSON, not UTF-8
            return cls(trusted=False, problem=f"{type(exc).__name__}: {exc}")
        try:
            return cls._parse(raw)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return cls(trusted=False, problem=f"not a rollup state ({type(exc).__name__}: {exc})")

    @classmethod
    def _parse(cls, raw: Any) -> RollupState:
        if not isinstance(raw, dict):
            raise TypeError(f"a JSON {type(raw).__name__}, not an object")
        if raw.get("format") != FORMAT or "outputs" not in raw:  # an older Hive's: redo once
            return cls(trusted=False)
        days = {date.fromisoformat(d): _text(fp) for d, fp in raw["days"].items()}
        outputs = {_text(name): _text(sig) for name, sig in raw["outputs"].items()}
        return cls(days=days, outputs=outputs)

    def save(self, path: Path) -> bool:
        """Write atomically (temporary file, fsync, rename) so a killed run leaves the old state;
        nothing is written when the file already says the same. Returns whether it was written."""
        body = json.dumps({
            "format": self.format,
            "days": {d.isoformat(): fp for d, fp in sorted(self.days.items())},
            "outputs": dict(sorted(self.outputs.items())),
        }, indent=1).encode() + b"\n"
        try:
            if path.read_bytes() == body:
                return False
        except OSError:
            pass
        write_bytes_atomic(path, body)
        return True

    def output_ok(self, datadir: DataDir, path: Path) -> bool:
        """Whether ``path`` is still the file this state recorded (absent if it recorded none)."""
        return self.trusted and self.outputs.get(_key(datadir.rollups, path)) == signature(path)

    def record(self, datadir: DataDir, path: Path) -> None:
        """Remember ``path`` as written now (or as absent)."""
        sig, key = signature(path), _key(datadir.rollups, path)
        if sig is None:
            self.outputs.pop(key, None)
        else:
            self.outputs[key] = sig

    def month_ok(self, datadir: DataDir, month: str) -> bool:
        """Whether both files of ``month`` are as the rollup wrote them."""
        return all(self.output_ok(datadir, datadir.rollup_month(month, part)) for part in MONTH_PARTS)

    def stale(self, datadir: DataDir, fingerprints: dict[date, str], days: Iterable[date]) -> list[date]:
        """Which of ``days`` (days with events) must be recomputed: their events changed since
        their rollup, or their file or their month's files changed outside the rollup."""
        months: dict[str, bool] = {}
        out = []
        for day in sorted(days):
            month = month_of(day)
            if month not in months:
                months[month] = self.month_ok(datadir, month)
            if (self.days.get(day) != fingerprints[day] or not months[month]
                    or not self.output_ok(datadir, datadir.rollup_day(day))):
                out.append(day)
        return out


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _key(rollups_dir: Path, path: Path) -> str:
    """``path`` relative to ``rollups_dir`` (a string slice: ``relpath`` costs more than the stat)."""
    root, full = str(rollups_dir), str(path)
    return full[len(root) + 1:] if full.startswith(root + os.sep) else os.path.relpath(full, root)
