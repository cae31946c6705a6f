"""Retention: remove the events of old days once their rollups hold them (``hive-jobs prune``).

A year of traffic is mostly events nobody reads one by one again; the daily rollups hold their
counts, costs, tokens and latency histograms. Pruning removes the ``date=`` partitions of the
types the rollup reads (:data:`jobs.rollup.state.SOURCES`: ``api_call``, ``usage``,
``stream_outcome``) for days older than ``keep_days``. Every other type (ratings, selections,
A/B assignments, budget alerts and overrides) is small and read by later stages as events: kept.

A day is pruned only when its rollup is *current*: the state records it, its events' fingerprint
is the one it was computed from, and its day file and its month's files are the ones the rollup
wrote. A day whose rollup is missing or stale is never pruned; the report says to run the rollup.

Crash safety: a day is first written to ``rollups/pruned.json`` (atomically), then its partitions
are deleted. The rollup treats a listed day as a day without events, so it keeps that day's file
and never recomputes it from the half-deleted partitions a killed prune may leave; the next prune
finishes the deletion. Everything runs under the store's job lock (the rollup's and compaction's).

In object storage (``s3://``) the same steps hold: ``pruned.json`` is one PUT, the lock is the
store's object lock, and a partition is its objects, listed once (one recursive LIST per type for
the days, one per partition removed) and deleted in batches.

``keep_days`` is at least :data:`MIN_KEEP_DAYS`: ``hive-jobs rebuild-ledger`` recomputes the budget
windows in force from the events, and a monthly window reaches back up to 31 days.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import cast

from hive_core.errors import ConfigError, DataError
from hive_core.store.atomic import write_bytes_atomic
from hive_core.store.datadir import DataDir, is_remote
from hive_core.store.lock import DEFAULT_LOCK_TIMEOUT_S, STORE_LOCK, job_lock, unwritable
from jobs.rollup.state import SOURCES, RollupState, month_of, scan_event_days

__all__ = ["MIN_KEEP_DAYS", "PruneReport", "load_pruned", "prune"]

#: a monthly budget window reaches back at most 31 days, and the ledger's rebuild reads its events
MIN_KEEP_DAYS = 32


@dataclass
class PruneReport:
    """What a prune run did (or, with ``dry_run``, would do)."""

    cutoff: date
    pruned: list[date] = field(default_factory=list)
    #: older days left alone, with why (no rollup yet, rollup stale)
    refused: list[tuple[date, str]] = field(default_factory=list)
    files_removed: int = 0
    bytes_removed: int = 0


def load_pruned(datadir: DataDir) -> frozenset[date]:
    """Days whose events were (or are being) pruned: their rollup files are the record.

    A missing file means none; one that cannot be read is a :class:`DataError` (never guessed:
    treating a pruned day as live would recompute it from partial events).
    """
    path = datadir.pruned_days
    try:
        raw = json.loads(path.read_text())
        return frozenset(date.fromisoformat(d) for d in raw["days"])
    except FileNotFoundError:
        return frozenset()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} cannot be read ({type(exc).__name__}): it lists the days whose events were "
                        "pruned; restore it from a backup (the rollup will not run without it)") from None


def _save_pruned(datadir: DataDir, days: frozenset[date]) -> None:
    body = json.dumps({"days": sorted(d.isoformat() for d in days)}, indent=1).encode() + b"\n"
    write_bytes_atomic(datadir.pruned_days, body)


def prune(datadir: DataDir, *, keep_days: int, now: datetime, dry_run: bool = False,
          lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> PruneReport:
    """Remove the rolled-up event partitions of days before ``today - keep_days`` (UTC, on ``now``)."""
    if keep_days < MIN_KEEP_DAYS:
        raise ConfigError(f"--keep-days {keep_days} is too short: keep at least {MIN_KEEP_DAYS} days (the budget "
                          "ledger's rebuild reads the current month's events)")
    report = PruneReport(cutoff=now.date() - timedelta(days=keep_days))
    try:
        with job_lock(datadir, STORE_LOCK, timeout_s=lock_timeout_s):
            pruned = load_pruned(datadir)
            candidates = _candidates(datadir, report, pruned)
            if dry_run:
                report.pruned = sorted(candidates)
                return report
            if candidates - pruned:
                _save_pruned(datadir, pruned | candidates)  # first: a killed run leaves listed days only
            for day in sorted(candidates):
                _remove_day(datadir, day, report)
            report.pruned = sorted(candidates)
    except OSError as exc:
        raise unwritable("prune", exc, datadir.root) from exc
    return report


def _candidates(datadir: DataDir, report: PruneReport, pruned: frozenset[date]) -> set[date]:
    """Days before the cutoff with events left whose rollup is current (or already listed)."""
    state = RollupState.load(datadir.rollup_state)
    fingerprints = scan_event_days(datadir.root).fingerprints
    out: set[date] = set()
    for day in sorted(_days_with_partitions(datadir)):
        if day in pruned:  # a killed prune's leftovers: finish it
            out.add(day)
        elif day >= report.cutoff:
            continue
        elif day not in state.days or not state.output_ok(datadir, datadir.rollup_day(day)):
            report.refused.append((day, "no current rollup: run `hive-jobs rollup --daily` first"))
        elif state.days[day] != fingerprints.get(day) or not state.month_ok(datadir, month_of(day)):
            report.refused.append((day, "events changed since its rollup: run `hive-jobs rollup --daily` first"))
        else:
            out.add(day)
    return out


def _days_with_partitions(datadir: DataDir) -> set[date]:
    from hive_core.store.layout import partition_date

    days: set[date] = set()
    for type_name in SOURCES:
        folder = datadir.event_type(type_name)
        if is_remote(folder):  # a partition is a prefix with objects under it: no HEAD per day
            days.update(d for p, _size in _objects(folder) if (d := partition_date(p.parent)) is not None)
        elif folder.is_dir():
            days.update(d for p in folder.iterdir() if p.is_dir() and (d := partition_date(p)) is not None)
    return days


def _objects(prefix: Path) -> list[tuple[Path, int]]:
    """The objects under an ``s3://`` prefix with their sizes (one recursive LIST)."""
    from hive_core.store.objects import as_object

    # typed as the Paths they stand in for, as the settings type the data directory
    return cast("list[tuple[Path, int]]", as_object(prefix).walk())


def _remove_day(datadir: DataDir, day: date, report: PruneReport) -> None:
    for type_name in SOURCES:
        partition = datadir.partition(type_name, day)
        if is_remote(partition):
            from hive_core.store.objects import as_object

            objects = _objects(partition)
            report.files_removed += len(objects)
            report.bytes_removed += sum(size for _path, size in objects)
            if objects:
                as_object(partition).remove_tree()
            continue
        if not partition.is_dir():
            continue
        files = [p for p in partition.rglob("*") if p.is_file()]
        report.files_removed += len(files)
        report.bytes_removed += sum(_size(p) for p in files)
        shutil.rmtree(partition)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
