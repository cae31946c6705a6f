"""How a Hive process ends on SIGTERM: the same way as on Ctrl-C, with its own exit status.

SIGTERM (``systemctl stop``, ``docker stop``, ``timeout``, ``kill``) is turned into
:class:`Terminated`, raised in the main thread by the event log's handler (``ingest.log``), once no
log is inside its record/flush critical section. ``Terminated`` is both:

* a :class:`KeyboardInterrupt` to the code it unwinds, so every path written for Ctrl-C runs: a
  stream being read is cancelled and recorded as ``cancelled`` with its partial usage, a budget
  reservation is settled to that usage, ``with`` blocks close the event log (which writes its
  buffer). Nothing needs a second, SIGTERM-only cleanup path that could drift from the first;
* a :class:`SystemExit` with status 143 (128 + SIGTERM) to the interpreter, so a process that does
  not catch it - a plain script that records events - exits 143 silently, running ``atexit``.

The CLIs print one line, ``terminated``, and exit 143 (``hive_cli.lazy.run_cli``).

Asynchronous code runs through :func:`run_async` instead of ``asyncio.run``: there SIGTERM cancels
the main task once, the way ``asyncio.run`` treats Ctrl-C, and :class:`Terminated` is raised when
it has unwound. (An exception raised inside the event loop instead makes ``asyncio.run`` cancel
every task directly *and* through the ``gather`` awaiting them: the second cancellation can
interrupt a stream's cleanup before it records how the request ended.)

This module imports nothing of ours, and asyncio only inside :func:`run_async`: the CLIs import it
at start-up.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["TERMINATED_EXIT_STATUS", "Terminated", "run_async"]

T = TypeVar("T")

#: the exit status of a process ended by SIGTERM, as a shell reports it
TERMINATED_EXIT_STATUS = 128 + signal.SIGTERM


class Terminated(SystemExit, KeyboardInterrupt):
    """The process received SIGTERM: unwind like Ctrl-C, exit with status 143."""

    def __init__(self) -> None:
        super().__init__(TERMINATED_EXIT_STATUS)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, where SIGTERM cancels ``main`` like Ctrl-C does, then raises
    :class:`Terminated` (see the module doc). A second SIGTERM while it unwinds is ignored."""
    import asyncio

    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(main)  # signals are delivered to the main thread only
    terminated = False

    async def guarded() -> T:
        nonlocal terminated
        task = asyncio.current_task()
        assert task is not None

        def on_sigterm() -> None:
            nonlocal terminated
            if not terminated:
                terminated = True
                task.cancel()

        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGTERM)  # sets SIG_DFL: put the previous one back
            signal.signal(signal.SIGTERM, previous)

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if terminated:
            raise Terminated() from None
        raise
