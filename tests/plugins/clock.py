"""The suite's clock: the real one, or ``HIVE_TEST_NOW=<ISO instant>`` for the whole run.

With ``HIVE_TEST_NOW`` set, the test process travels to that instant before any test module is
imported (``time-machine``, ticking at the real rate), and every Python process the tests start
follows: ``tests/timeshift`` goes first on ``PYTHONPATH`` and its ``sitecustomize`` travels by the
same offset (``PYTEST_CLOCK_SHIFT_S``). Wall-clock readers (``datetime.now``, ``time.time``,
``date.today``) then agree across processes; ``time.monotonic`` and sleeps are untouched, so
threads, timeouts and event loops behave (libfaketime broke ``Event.wait`` and ``time.sleep``).

File mtimes still come from the kernel's real clock: the library never compares them with its clock
(``hive_core.clock.filesystem_now``), and tests set old mtimes relative to the file's own mtime.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from hive_core.clock import parse_instant

TIMESHIFT_DIR = Path(__file__).resolve().parents[1] / "timeshift"
_traveller: Any = None


def pytest_configure(config: pytest.Config) -> None:
    global _traveller
    text = os.environ.get("HIVE_TEST_NOW", "").strip()
    if not text or _traveller is not None:
        return
    try:
        instant = parse_instant(text)
    except ValueError as exc:
        raise pytest.UsageError(f"HIVE_TEST_NOW: {exc}") from None
    import time_machine

    shift = instant.timestamp() - time.time()
    os.environ["PYTEST_CLOCK_SHIFT_S"] = repr(shift)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TIMESHIFT_DIR), os.environ.get("PYTHONPATH")) if p)
    _traveller = time_machine.travel(instant, tick=True)
    _traveller.start()


def pytest_report_header(config: pytest.Config) -> str:
    from datetime import UTC, datetime

    moved = " (moved by HIVE_TEST_NOW)" if _traveller is not None else ""
    return f"clock: {datetime.now(UTC).isoformat(timespec='seconds')}{moved}"


def pytest_unconfigure(config: pytest.Config) -> None:
    global _traveller
    if _traveller is not None:
        _traveller.stop()
        _traveller = None
