"""``hive-jobs rebuild-ledger``: recreate the budget ledger's spend from the ``usage`` events.

The ledger is a projection: its settled spend per scope and day becomes the sums of
``usage.cost_usd`` (all history) plus the settlements whose usage event is not on disk yet (still
in a writer's buffer, or in a spill file), so a rebuild while traffic flows never lowers spend that
is real and never counts a request twice (see :mod:`hive_core.budget.ledger` for the invariant).
In-flight reservations of processes that are gone, and stale ones, are expired; live ones keep
holding their money. Run it after a crash, after ``hive-jobs reconcile`` corrected costs, or when
``hive budget show`` reports that the ledger and the events disagree.

A ledger SQLite cannot read ("file is not a database") is moved aside as
``budget-ledger.sqlite3.corrupt-<n>`` (nothing is deleted) and rebuilt from the events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hive_core.budget.config import load_budget_config
from hive_core.budget.ledger import RebuildCounts, Settlement
from hive_core.budget.ledger_file import move_aside
from hive_core.errors import CorruptLedger
from hive_core.store.datadir import DataDir
from jobs.budget.spend import spend_in

if TYPE_CHECKING:
    from queries import Store

__all__ = ["RebuildResult", "rebuild_ledger"]


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild did."""

    #: days with spend
    days: int
    #: global spend now in the ledger, USD: the events' plus the settlements kept
    total_usd: float
    #: settlements whose usage event is not on disk yet, counted from the ledger
    kept_settlements: int
    expired_reservations: int
    live_reservations: int
    #: where an unreadable ledger was moved before the rebuild, if it was
    moved_aside: Path | None = None


def _found(store: Store, pending: Sequence[Settlement]) -> set[str]:
    """The settlements among ``pending`` whose usage event is in ``store``."""
    from queries import load, run_sql

    if not pending:
        return set()
    since = min(date.fromisoformat(s.day) for s in pending) - timedelta(days=1)  # a settle clock's day may trail
    params = {"event_ids": [s.event_id for s in pending if s.event_id],
              "request_ids": [s.request_id for s in pending if not s.event_id and s.request_id],
              "since": since.isoformat()}
    rows = run_sql(store, load("reports/ledger_settlements_on_disk"), params).fetchall()
    events = {event_id for event_id, _, _ in rows}
    requests = {(request_id, model) for _, request_id, model in rows}
    return {s.reservation_id for s in pending
            if (s.event_id in events if s.event_id else (s.request_id, s.model) in requests)}


def _rebuild(data_dir: Path, ledger_url: str | None, now: datetime,
             stale_after_s: float) -> tuple[RebuildCounts, dict[str, float]]:
    from hive_core.budget.ledgers import open_ledger
    from queries import connect

    def read_events(pending: Sequence[Settlement]) -> tuple[Iterable[tuple[str, str, float]], set[str]]:
        # One listing of the files for both reads. Found first: were a reader to see more events
        # in its second read, they would be counted twice, never lost.
        with connect(data_dir) as store:
            found = _found(store, pending)
            return spend_in(store).scope_days(), found

    with open_ledger(data_dir, ledger_url) as ledger:
        counts = ledger.rebuild(read_events, now=now, stale_after_s=stale_after_s)
        global_days = {day: usd for (scope, day), usd in ledger.spend_by_day().items() if scope == "global"}
    return counts, global_days


def rebuild_ledger(data_dir: Path, *, now: datetime, stale_after_s: float | None = None,
                   ledger_url: str | None = None) -> RebuildResult:
    """Set the ledger's spend from the events (plus settlements not on disk yet); expire in-flight
    reservations that are dead or stale (``stale_after_s``: the budget setting by default).
    ``ledger_url``: the PostgreSQL ledger (``HIVE_LEDGER_URL``); a corrupt ledger is moved aside only
    when it is the data directory's SQLite file."""
    paths = DataDir(data_dir)
    if stale_after_s is None:
        stale_after_s = load_budget_config(paths.config_file).stale_after_s
    path = paths.ledger
    moved = None
    try:
        counts, days = _rebuild(data_dir, ledger_url, now, stale_after_s)
    except CorruptLedger:
        if ledger_url is not None:
            raise
        moved = move_aside(path)
        counts, days = _rebuild(data_dir, None, now, stale_after_s)
    return RebuildResult(len(days), sum(days.values()), counts.kept_settlements, counts.expired_reservations,
                         counts.live_reservations, moved)
