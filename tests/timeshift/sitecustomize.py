"""Moves the clock of every Python process the tests start (see ``tests/plugins/clock.py``).

``PYTEST_CLOCK_SHIFT_S`` (set by the test session when ``HIVE_TEST_NOW`` is given) is the offset
between the moved clock and the real one; this process travels there too, and keeps ticking, so a
CLI, emulator or writer child reads the same moved time as the test that started it. Only this
directory's presence on ``PYTHONPATH`` (set by the same plugin) brings this file in.
"""

import os

_shift = os.environ.get("PYTEST_CLOCK_SHIFT_S")
if _shift:
    import time

    import time_machine

    time_machine.travel(time.time() + float(_shift), tick=True).start()
