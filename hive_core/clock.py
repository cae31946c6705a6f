"""The one clock of the library: what "now" and "today" mean, in UTC, passed in explicitly.

Every decision that depends on the time of day - which UTC day a rollup, budget period, report or
alert covers, whether a day is closed for compaction, how old a cache is - takes a :data:`Clock`
(``Callable[[], datetime]`` returning an aware UTC datetime). Library functions accept ``now=`` or
``clock=``; the CLIs pass ``Settings.clock``, which is the system clock unless ``--as-of`` /
``HIVE_AS_OF`` starts it at another instant (reproducible reports, backfills, the test suite's moved
clock). A clock started at an instant keeps ticking at the real rate, so durations stay real.

SQL never asks the database for the time (no ``current_date`` / ``now()``): "today" is a bound
parameter computed from the clock.

File ages are *not* measured with this clock: file mtimes come from the filesystem's clock, so
:func:`filesystem_now` gives the mtime of a probe file in the same directory. A moved clock (or a
network filesystem whose server clock is skewed) then never makes a live temporary look dead.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

__all__ = ["Clock", "as_of_clock", "filesystem_now", "parse_instant", "system_clock", "today"]

Clock = Callable[[], datetime]

#: the process's monotonic origin (taken when this module is first imported, at start-up in every
#: CLI): every as-of clock of one process ticks from it, so settings built later agree
_ORIGIN = time.monotonic()


def system_clock() -> datetime:
    """The system's time, in UTC."""
    return datetime.now(UTC)


def as_of_clock(instant: datetime) -> Clock:
    """A clock that read ``instant`` at this process's start (:data:`_ORIGIN`) and ticks at the real rate."""
    start = instant.astimezone(UTC)

    def now() -> datetime:
        return start + timedelta(seconds=time.monotonic() - _ORIGIN)

    return now


def today(clock: Clock = system_clock) -> date:
    """The current UTC day."""
    return clock().date()


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant (``2026-12-31T23:59:00Z``, an offset, or a bare date = its UTC midnight).

    A time without an offset is taken as UTC. Raises ``ValueError`` with a readable message.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 instant (e.g. 2026-12-31T23:59:00Z or 2026-12-31)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def filesystem_now(directory: Path) -> float | None:
    """The filesystem's "now" for ``directory``: the mtime of a probe file created there and removed.

    Compare file mtimes with this, never with a :data:`Clock`. ``None`` when no probe can be written
    (a read-only or missing directory): the caller then treats ages as unknown and leaves files alone.
    The probe's name is a temporary's (``.*.tmp``), so even a killed process leaves nothing readers see.
    """
    probe = directory / f".clock-probe-{os.getpid()}-{time.monotonic_ns()}.tmp"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError:
        return None
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)
