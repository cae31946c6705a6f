"""Rollup rows for any period, current to the last event: the files where they are up to date, the
same rollup computed live from the events for days whose files changed since the last run.

Reports (cost, performance) read through here, so they never lag behind the events: after a
rollup, everything comes from the rollup files (fast); between runs, only the changed days (usually
today) are computed from events, with the very query the rollup uses, so the numbers are the ones
the next rollup will write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from hive_core.settings import Settings
    from queries import Store

__all__ = ["fine_rows", "model_rows", "stale_days"]


def stale_days(settings: Settings, since: date, until: date) -> list[date]:
    """Days of ``since..until`` with events whose rollup is out of date: events changed since, or
    its day or month files changed (deleted, damaged) outside the rollup."""
    from jobs.rollup.state import RollupState, day_fingerprints

    datadir = settings.datadir
    current = day_fingerprints(datadir.root)
    state = RollupState.load(datadir.rollup_state)
    return state.stale(datadir, current, [d for d in current if since <= d <= until])


def _live(settings: Settings, days: list[date], store: Store | None) -> list[pa.Table]:
    """The rollup rows of ``days`` computed from the events (DuckDB opened only when needed)."""
    from jobs.rollup.batches import day_runs, rollup_rows
    from queries import connect

    if not days:
        return []
    if store is None:
        with connect(settings.data_dir, warn=False) as own:
            return _live(settings, days, own)
    return [t for first, last in day_runs(days) if (t := rollup_rows(store, first, last)).num_rows]


def fine_rows(settings: Settings, since: date, until: date, store: Store | None = None,
              known: Mapping[date, pa.Table] | None = None) -> pa.Table | None:
    """Rows per (day, model, provider, request_type, task_category) of ``since..until``; the days
    in ``known`` are taken from it (rows the caller has just rolled up), not read again."""
    import pyarrow as pa

    from jobs.rollup.daily import read_day_tables, split_by_day

    known = {d: rows for d, rows in (known or {}).items() if since <= d <= until}
    stale = [d for d in stale_days(settings, since, until) if d not in known]
    by_day = {d: rows for d, rows in known.items() if rows.num_rows}
    by_day.update(read_day_tables(settings.datadir, since, until, exclude=frozenset(stale) | known.keys()))
    for table in _live(settings, stale, store):
        by_day.update((d, rows) for d, rows in split_by_day(table, since, until) if rows.num_rows)
    # in day order whichever source each day came from: float sums then add up in one order, so the
    # ranking table does not depend on which days the last run recomputed (last digits differed)
    pieces = [by_day[d] for d in sorted(by_day)]
    # by name: a day kept in an older format has its columns in another order
    return pa.concat_tables(pieces, promote_options="default") if pieces else None


def model_rows(settings: Settings, since: date, until: date, store: Store | None = None) -> pa.Table | None:
    """Per-model rows (whole months or days) covering ``since..until``, not yet merged."""
    import pyarrow as pa

    from jobs.rollup.monthly import day_model_rows, read_models
    from jobs.rollup.state import RollupState, month_of

    stale = stale_days(settings, since, until)
    live = _live(settings, stale, store)
    # A month whose files changed since the rollup wrote them is not read (its days with events are
    # stale). Without a usable state (an older Hive's, a copied store) the files are all there is.
    datadir = settings.datadir
    state = RollupState.load(datadir.rollup_state)
    months, first = set(), date(since.year, since.month, 1)
    while first <= until and state.trusted:
        months.add(month_of(first))
        first = (first + timedelta(days=32)).replace(day=1)
    damaged = frozenset(m for m in months if not state.month_ok(datadir, m))
    stored = read_models(datadir, since, until, exclude=frozenset(stale), skip_months=damaged)
    pieces = [stored] if stored.num_rows else []
    pieces.extend(day_model_rows(table) for table in live)
    if not pieces:
        return None
    columns = pieces[0].column_names
    return pa.concat_tables([p.select(columns) for p in pieces], promote_options="permissive")
