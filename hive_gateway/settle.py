"""Answered requests' events, recorded together once per turn of the event loop.

    settler.add(events, then=lambda: run.answered(step, result))    # after the answer was written

Each answered request settles its reservation from its usage event, then records its events
(:class:`~hive_core.budget.SettlingSink`). Under concurrency several answers arrive in the same
turn of the loop, and a ledger transaction costs far more than the rows it writes (measured: one
transaction per settlement ~97 us of CPU, eight in one ~31 us each), so the settler gathers the
answers of one turn and hands their events to the sink at once: every settlement in ONE ledger
transaction, then every event, in order (:meth:`~hive_core.budget.SettlingSink.record_many`), then
each request's ``then`` (the chain's bookkeeping: breaker, a reservation no usage event settled).

What holds as before: a settlement is written before its event is passed on; a reservation holds
its amount until its settlement commits, so no limit can overshoot meanwhile; the client already has
its answer (the events never delay it). What changes: a request's spend reaches the ledger at the
end of the loop's turn rather than right after its answer - microseconds later.

A ledger that fails meanwhile loses no event: the events are passed on all the same
(:func:`record_all`) and the failure is the operator's line (:class:`~hive_gateway.trouble.Trouble`).
The chain's bookkeeping tries the settlement once more; if that fails too, the reservation keeps
holding the request's maximum cost until it goes stale (the budget errs on the safe side), and
``hive-jobs rebuild-ledger`` counts the spend from the events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hive_core.budget import SettlingSink

if TYPE_CHECKING:
    from hive_core.store.events import Event, EventSink

__all__ = ["Settler", "record_all"]

Report = Callable[[BaseException, "str | None"], None]


def record_all(sink: EventSink, events: Sequence[Event]) -> None:
    """Every one of ``events`` to ``sink``, in order, also when a settlement or an event fails (the
    first failure is raised once all were tried); a settling sink settles them in one ledger transaction."""
    if isinstance(sink, SettlingSink):
        sink.record_many(events)  # passes every event on, also when settling failed
        return
    failed: Exception | None = None
    for event in events:
        try:
            sink.record(event)
        except Exception as exc:
            failed = failed or exc
    if failed is not None:
        raise failed


class Settler:
    """Gathers answered requests' events and records them at the end of the loop's turn (:meth:`flush`);
    what fails meanwhile goes to ``report`` (the operator's line), never to the loop's exception handler."""

    def __init__(self, sink: EventSink, report: Report) -> None:
        self.sink = sink
        self.report = report
        self._pending: list[tuple[Sequence[Event], Callable[[], object]]] = []
        self._scheduled: asyncio.Handle | None = None

    def add(self, events: Sequence[Event], then: Callable[[], object]) -> None:
        """Record ``events`` (one request's, in order), then call ``then``, at the end of this turn."""
        self._pending.append((events, then))
        if self._scheduled is None:
            self._scheduled = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Record everything gathered now (also at shutdown, before the ledger and the log close)."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            record_all(self.sink, [event for batch, _ in pending for event in batch])
        except Exception as exc:
            self.report(exc, None)
        for batch, then in pending:
            try:
                then()  # settles what the events did not (again, when the ledger failed above)
            except Exception as exc:  # the others still settle
                self.report(exc, batch[0].request_id if batch else None)
