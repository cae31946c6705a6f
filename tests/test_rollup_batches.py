"""``jobs.rollup.batches.rows_ahead``: the next batch's query runs in a thread while the caller
finishes and writes the current one's rows; what it holds meanwhile, and how a failure on either
side ends the run. (The files' independence of the batches is tests/test_rollup_memory.py's.)"""

from __future__ import annotations

import threading
import time
import weakref
from datetime import date, timedelta
from typing import Any

import pytest

from jobs.rollup.batches import rows_ahead

BATCHES = [(date(2026, 3, 1) + timedelta(days=i), date(2026, 3, 1) + timedelta(days=i)) for i in range(4)]


class _Rows:
    """A batch's query rows (each event's latencies, in the rollup): weakly referencable."""

    def __init__(self, first: date) -> None:
        self.first = first


def test_a_batch_is_finished_while_the_next_ones_query_runs_and_its_query_rows_are_let_go() -> None:
    """``finish`` runs once the next batch's query has started (the overlap is the point), the
    batches come in order, and while the caller writes a batch only its finished rows are alive:
    its query rows (each event's latencies) are not held beside them, nor by the last batch's future."""
    started = {first: threading.Event() for first, _ in BATCHES}
    raw: dict[date, weakref.ref[_Rows]] = {}

    def rows_of(first: date, last: date) -> _Rows:
        started[first].set()
        rows = _Rows(first)
        raw[first] = weakref.ref(rows)
        return rows

    def finish(rows: Any) -> tuple[str, date]:
        later = [f for f, _ in BATCHES if f > rows.first]
        assert not later or started[later[0]].wait(10), "finished before the next batch's query started"
        return "finished", rows.first

    seen = []
    for (first, last), table in rows_ahead(BATCHES, rows_of, finish=finish):
        assert table == ("finished", first)
        assert raw[first]() is None, f"{first}: its query rows are still held while the caller writes it"
        seen.append((first, last))
    assert seen == BATCHES


def test_a_failed_query_ends_the_run_after_the_batches_before_it() -> None:
    def rows_of(first: date, last: date) -> _Rows:
        if first == BATCHES[2][0]:
            raise OSError("disk full")
        return _Rows(first)

    seen = []
    with pytest.raises(OSError, match="disk full"):
        for batch, _table in rows_ahead(BATCHES, rows_of, finish=lambda rows: rows):
            seen.append(batch)
    assert seen == BATCHES[:2]


@pytest.mark.parametrize("where", ["finish", "caller"])
def test_a_failure_in_this_thread_waits_for_the_query_in_flight(where: str) -> None:
    """The run's lock is released only after the exception leaves :func:`rows_ahead`: by then no
    query of a later batch is still running in its thread."""
    ended: list[date] = []

    def rows_of(first: date, last: date) -> _Rows:
        if first != BATCHES[0][0]:
            time.sleep(0.3)
        ended.append(first)
        return _Rows(first)

    def finish(rows: Any) -> Any:
        if where == "finish":
            raise ValueError("broken batch")
        return rows

    with pytest.raises(ValueError, match="broken batch"):
        for _batch, _table in rows_ahead(BATCHES, rows_of, finish=finish):
            raise ValueError("broken batch")
    assert ended == [BATCHES[0][0], BATCHES[1][0]]  # the second batch's query had ended; none began after
