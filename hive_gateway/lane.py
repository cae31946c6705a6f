"""Work that writes a file other processes lock too - the budget ledger, the keys' request counters -
done without ever making the event loop wait.

    step = await lane.run(ledger, next, steps, None, undo=give_back)    # awaited by its request
    lane.run_soon(ledger, record, batch)                                 # not awaited

Each write transaction excludes every other writer, thread or process
(:mod:`hive_core.store.sqlite_wal`). A worker whose loop waited for one stalled everything it served
while another process held the lock: another worker for microseconds, ``hive-jobs rebuild-ledger``
for seconds (about 3 s for 300,000 usage events). Measured before the lane: a ledger lock held 4 s
from another process kept ``/healthz`` waiting 3.5 s, and every stream of the worker with it.

The lane first takes the locks the work needs without waiting (``try_hold``). Free, as they nearly
always are, the work runs at once on the loop, holding them: no thread and no hop, the hot path as it
was. Held elsewhere, the work goes to one of the lane's threads, which waits for them while the loop
serves everything else; only the request that needs the work waits, as it must. A PostgreSQL
ledger, whose every write is a network round trip, is never held on the loop: its work always runs
in the threads.

What a thread started runs to its end, also when the request that awaited it was cancelled (its
client went away, the drain cut it): the events it records and the settlements it writes are never
dropped halfway. What it made that the cancelled request will not use (a reservation) is given back
by ``undo``. :meth:`Lane.close` waits for all of it before the ledger and the log close.

The loop's own thread is named to the stores (``never_wait_on``, :meth:`Lane.start`), so a write
there that no hold covers - a call site the lane does not wrap - cannot wait either: it raises
:class:`~hive_core.errors.WouldWait` (for its request a 503 ``gateway_busy``) while the lock is held
elsewhere: loud, where it used to stall the worker silently.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

__all__ = ["LANE_THREADS", "Holdable", "Lane"]

T = TypeVar("T")

#: threads that wait for a lock held elsewhere (each request or batch that meets one takes one;
#: more wait in line)
LANE_THREADS = 8

Report = Callable[[BaseException, "str | None"], None]


class Holdable(Protocol):
    """A store whose write locks can be taken without waiting (the ledger, the rate limiter)."""

    def try_hold(self) -> bool:
        """Take the locks if free now; True when this thread holds them until :meth:`unhold`."""
        ...  # pragma: no cover

    def unhold(self) -> None:
        """Let go of what :meth:`try_hold` took."""
        ...  # pragma: no cover

    def never_wait_on(self, thread: int | None) -> None:
        """A write on ``thread`` that would wait raises instead."""
        ...  # pragma: no cover


class Lane:
    """Runs work on the loop while its stores' locks are free, in a thread that may wait otherwise;
    what fails where nobody awaits it goes to ``report`` (the operator's line)."""

    def __init__(self, report: Report, *, threads: int = LANE_THREADS) -> None:
        self.report = report
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="hive-lane")
        self._loop_thread: int | None = None
        self._stores: tuple[Holdable, ...] = ()
        #: how many works went to the threads (a lock was held elsewhere, or the ledger is remote)
        self.waited = 0

    def start(self, stores: Sequence[Holdable]) -> None:
        """In the loop's thread: from now on no write of ``stores`` waits there (``never_wait_on``)."""
        self._loop_thread = threading.get_ident()
        self._stores = tuple(stores)
        for store in self._stores:
            store.never_wait_on(self._loop_thread)

    @staticmethod
    def _hold(stores: Sequence[Holdable]) -> bool:
        taken: list[Holdable] = []
        for store in stores:
            if not store.try_hold():
                for held in reversed(taken):
                    held.unhold()
                return False
            taken.append(store)
        return True

    @staticmethod
    def _unhold(stores: Sequence[Holdable]) -> None:
        for store in reversed(stores):
            store.unhold()

    async def run(self, stores: Sequence[Holdable], fn: Callable[..., T], *args: object,
                  undo: Callable[[T], object] | None = None) -> T:
        """``fn(*args)``, holding the locks of ``stores``: now, when they are free; else in a thread
        that waits for them. Cancelled meanwhile, the thread still finishes, and ``undo`` takes its
        result (what the request will no longer use)."""
        if self._hold(stores):
            try:
                return fn(*args)
            finally:
                self._unhold(stores)
        self.waited += 1
        done = self._pool.submit(fn, *args)
        try:
            return await asyncio.shield(asyncio.wrap_future(done))
        except asyncio.CancelledError:
            if undo is not None:
                done.add_done_callback(lambda finished: self._undo(stores, undo, finished))
            raise

    def _undo(self, stores: Sequence[Holdable], undo: Callable[[T], object], finished: Future[T]) -> None:
        if finished.cancelled() or finished.exception() is not None:
            return  # it made nothing
        if threading.get_ident() == self._loop_thread:  # it had finished when the cancel came
            self.run_soon(stores, undo, finished.result())
            return
        try:
            undo(finished.result())  # in the thread that made it, which may wait
        except Exception as exc:
            self.report(exc, None)

    def run_soon(self, stores: Sequence[Holdable], fn: Callable[..., object], *args: object) -> None:
        """``fn(*args)`` as :meth:`run` does it, not awaited: at once when the locks are free, else
        queued for a thread. What it raises goes to ``report``."""
        if self._hold(stores):
            try:
                fn(*args)
            except Exception as exc:
                self.report(exc, None)
            finally:
                self._unhold(stores)
            return
        self.waited += 1
        self._pool.submit(self._reported, fn, *args)

    def _reported(self, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self.report(exc, None)

    async def close(self) -> None:
        """Wait until every work the threads took has ended (before the ledger and the log close)."""
        await asyncio.to_thread(self._pool.shutdown, wait=True)
        for store in self._stores:
            store.never_wait_on(None)
