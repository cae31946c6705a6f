"""The circuit breaker: opening, cool-down, the single half-open probe, state across processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hive_core.selection.health import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from hive_core.store.datadir import DataDir
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL
from tests.plugins.processes import stopped


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def breaker(path: Path, clock: Clock, **kwargs: float) -> CircuitBreaker:
    return CircuitBreaker(DataDir(path), clock=clock, **kwargs)  # type: ignore[arg-type]


def tripped(path: Path, **kwargs: float) -> tuple[Clock, CircuitBreaker]:
    """A breaker whose circuit of "m" has just opened (one failure trips it, 30 s cool-down), and its clock."""
    clock = Clock()
    cb = breaker(path, clock, failure_threshold=1, cooldown_s=30, **kwargs)
    cb.record_failure("m")
    return clock, cb


def write_state(root: Path, text: str) -> None:
    """Put ``text`` where the breaker of the data directory ``root`` keeps its state."""
    DataDir(root).state.mkdir(parents=True, exist_ok=True)
    DataDir(root).circuits.write_text(text)


def test_opens_after_consecutive_failures(tmp_path: Path) -> None:
    clock = Clock()
    cb = breaker(tmp_path, clock, failure_threshold=3)
    for _ in range(2):
        cb.record_failure("m")
    assert cb.state("m") == CLOSED and cb.allow("m")
    cb.record_failure("m")
    assert cb.state("m") == OPEN and not cb.allow("m")
    assert cb.blocked() == frozenset({"m"})
    assert cb.allow("other") and cb.state("other") == CLOSED


def test_success_resets_consecutive_count(tmp_path: Path) -> None:
    cb = breaker(tmp_path, Clock(), failure_threshold=3, min_calls=100)
    for _ in range(5):
        cb.record_failure("m")
        cb.record_failure("m")
        cb.record_success("m")
    assert cb.state("m") == CLOSED


def test_opens_on_failure_rate_over_window(tmp_path: Path) -> None:
    cb = breaker(tmp_path, Clock(), failure_threshold=100, failure_rate=0.5, min_calls=10)
    for _ in range(5):
        cb.record_failure("m")
        cb.record_success("m")
    assert cb.state("m") == CLOSED  # the rate is checked when a failure arrives: 5 of 9 then
    cb.record_failure("m")
    assert cb.state("m") == OPEN  # 6 of 11 failed


def test_old_outcomes_leave_the_window(tmp_path: Path) -> None:
    clock = Clock()
    cb = breaker(tmp_path, clock, failure_threshold=100, min_calls=4, window_s=60)
    for _ in range(3):
        cb.record_failure("m")
        cb.record_success("m")
    clock.now += 120
    cb.record_failure("m")
    assert cb.state("m") == CLOSED


def test_a_success_is_written_only_while_it_changes_what_a_decision_reads(tmp_path: Path) -> None:
    """After a failure, successes are written while it is among the recent outcomes (the rate is
    computed over them); once it left them - by count or by age - a success writes nothing, as for a
    model that never failed. Before, every later success rewrote the file (~1.3 ms, on a gateway's loop)."""
    clock = Clock()
    cb = breaker(tmp_path, clock, failure_threshold=100, min_calls=4, window=3, window_s=60)
    state = DataDir(tmp_path).circuits

    def written(record: Any) -> bool:
        before = state.stat().st_ino  # every write replaces the file
        record("m")
        return state.stat().st_ino != before

    cb.record_failure("m")
    assert [written(cb.record_success) for _ in range(5)] == [True, True, True, False, False]  # pushed out
    assert written(cb.record_failure)
    assert written(cb.record_success)  # ends the failures in a row
    clock.now += 61
    assert not written(cb.record_success)  # the failure aged out of the window
    # the rate still counts the successes it needs: 2 of 4 recent outcomes failed
    cb2 = breaker(tmp_path / "rate", clock, failure_threshold=100, failure_rate=0.5, min_calls=4, window=4)
    for record in (cb2.record_failure, cb2.record_success, cb2.record_success, cb2.record_failure):
        record("m")
    assert cb2.state("m") == OPEN
    cb3 = breaker(tmp_path / "rate3", clock, failure_threshold=100, failure_rate=0.6, min_calls=4, window=4)
    for record in (cb3.record_failure, cb3.record_success, cb3.record_success, cb3.record_failure):
        record("m")
    assert cb3.state("m") == CLOSED


def test_a_success_after_another_processs_failure_is_written(tmp_path: Path) -> None:
    """The hot path reuses its read for refresh_s; a failure another process recorded meanwhile must
    still be ended by this process's success (found in review: interleaved failures tripped it)."""
    clock = Clock()
    a = breaker(tmp_path, clock, failure_threshold=5, min_calls=100, window=2)
    b = breaker(tmp_path, clock, failure_threshold=5, min_calls=100, window=2)
    a.record_failure("m")
    a.record_success("m")
    a.record_success("m")  # the failure left the window: settled in a's view
    for _ in range(5):
        assert a.allow("m")  # a's hot-path read, reused for refresh_s
        b.record_failure("m")
        a.record_success("m")
        a.record_success("m")
    assert a.state("m") == CLOSED


def test_half_open_single_probe_then_close(tmp_path: Path) -> None:
    clock, cb = tripped(tmp_path)
    clock.now += 29
    assert not cb.allow("m")
    clock.now += 2
    assert cb.state("m") == HALF_OPEN
    assert cb.allow("m")  # the probe
    assert not cb.allow("m") and "m" in cb.blocked()  # everyone else waits for it
    cb.record_success("m")
    assert cb.state("m") == CLOSED and cb.allow("m") and not cb.blocked()


def test_failed_probe_reopens_for_a_full_cooldown(tmp_path: Path) -> None:
    clock, cb = tripped(tmp_path)
    clock.now += 31
    assert cb.allow("m")
    cb.record_failure("m")
    assert cb.state("m") == OPEN
    clock.now += 29
    assert not cb.allow("m")


def test_lost_probe_times_out(tmp_path: Path) -> None:
    clock, cb = tripped(tmp_path, probe_timeout_s=60)
    clock.now += 31
    assert cb.allow("m")
    clock.now += 61
    assert cb.allow("m")  # the first probe's process never reported back


def test_state_survives_across_instances_and_processes(tmp_path: Path) -> None:
    cb = CircuitBreaker(DataDir(tmp_path), failure_threshold=2)
    cb.record_failure("m")
    code = (
        "import sys; from hive_core.selection.health import CircuitBreaker; from hive_core.store.datadir import DataDir; "
        "cb = CircuitBreaker(DataDir(sys.argv[1]), failure_threshold=2); cb.record_failure('m'); "
        "print(cb.state('m'))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == OPEN
    assert cb.state("m") == OPEN and not CircuitBreaker(DataDir(tmp_path)).allow("m")


_FAIL_MANY = (
    "import sys; from hive_core.selection.health import CircuitBreaker; from hive_core.store.datadir import DataDir; "
    "cb = CircuitBreaker(DataDir(sys.argv[1]), failure_threshold=10_000, min_calls=10_000, window=10_000); "
    "[cb.record_failure('m') for _ in range(25)]"
)


def test_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    # plain subprocesses: a multiprocessing "spawn" context left its resource tracker running
    procs = [subprocess.Popen([sys.executable, "-c", _FAIL_MANY, str(tmp_path)]) for _ in range(4)]
    with stopped(procs):
        codes = [p.wait(timeout=60) for p in procs]
    assert codes == [0, 0, 0, 0]
    cb = CircuitBreaker(DataDir(tmp_path))
    entry = cb._read()["m"]
    assert entry["consecutive"] == 100


def test_damaged_state_file_is_treated_as_empty(tmp_path: Path) -> None:
    write_state(tmp_path, "{broken")
    cb = CircuitBreaker(DataDir(tmp_path), failure_threshold=1, warn=lambda line: None)
    assert cb.allow("m") and cb.state("m") == CLOSED
    cb.record_failure("m")
    assert cb.state("m") == OPEN


def test_late_failures_do_not_extend_an_open_circuit(tmp_path: Path) -> None:
    clock, cb = tripped(tmp_path)
    clock.now += 20
    cb.record_failure("m")  # a call that was in flight when the circuit opened
    clock.now += 11
    assert cb.state("m") == "half-open" and cb.allow("m")


def test_a_released_probe_is_free_at_once(tmp_path: Path) -> None:
    """A probe call that failed through the caller's fault (a bad key, a network outage) gives the
    probe back: the model is not blocked for probe_timeout_s on no evidence."""
    clock, cb = tripped(tmp_path, probe_timeout_s=60)
    other = breaker(tmp_path, clock, failure_threshold=1, cooldown_s=30, probe_timeout_s=60)
    clock.now += 31
    assert cb.allow("m") and not other.allow("m")
    other.release("m")  # it holds no probe: releases nothing
    assert not other.allow("m")
    cb.release("m")
    assert cb.state("m") == HALF_OPEN and other.allow("m")  # the next caller probes now
    assert not cb.allow("m")


MALFORMED = {
    "an entry that is a string": '{"m": "x"}',
    "a non-numeric opened_at": '{"m": {"state": "open", "opened_at": "soon"}}',
    "an unknown state": '{"m": {"state": "ajar"}}',
    "malformed outcomes": '{"m": {"state": "closed", "outcomes": [[1]]}}',
    "a list": "[1, 2]",
    "not JSON": "{broken",
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=list(MALFORMED))
def test_a_malformed_state_file_is_set_aside_with_one_line(tmp_path: Path, text: str) -> None:
    write_state(tmp_path, text)
    lines: list[str] = []
    cb = CircuitBreaker(DataDir(tmp_path), failure_threshold=1, warn=lines.append)
    assert cb.allow("m") and cb.state("m") == CLOSED and cb.blocked() == frozenset()
    assert DataDir(tmp_path).circuits_aside.read_text() == text  # kept for a look
    assert len(lines) == 1 and str(DataDir(tmp_path).circuits) in lines[0] and "circuits reset" in lines[0]
    cb.record_failure("m")
    assert cb.state("m") == OPEN and CircuitBreaker(DataDir(tmp_path), warn=lines.append).state("m") == OPEN
    assert len(lines) == 1


def test_a_malformed_file_that_cannot_be_moved_is_ignored(tmp_path: Path) -> None:
    write_state(tmp_path, '{"m": "x"}')
    DataDir(tmp_path).circuits_aside.mkdir()  # os.replace onto a directory fails, as on a read-only disk
    (DataDir(tmp_path).circuits_aside / "keep").touch()
    lines: list[str] = []
    cb = CircuitBreaker(DataDir(tmp_path), warn=lines.append)
    assert cb.allow("m") and cb.blocked() == frozenset() and cb.allow("m")
    assert len(lines) == 1 and "delete it" in lines[0]


def test_ask_with_a_malformed_state_file(emulator: Any, tmp_path: Path) -> None:
    """`hive ask` on a corrupt circuits.json: answers, one warning line naming the file, no traceback."""
    data = tmp_path / "data"
    env = hive_env(emulator, data)
    write_state(data, json.dumps({MODEL: "x", "other/model": {"state": "open"}}))
    done = run_cli("hive", ["ask", "hi", "--model", MODEL, "--fallback", "openai/gpt-4o", "--max-tokens", "8"], env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (warning,) = [line for line in done.stderr.splitlines() if "circuits.json" in line]
    assert warning.startswith("warning: ignoring unreadable") and "circuits reset" in warning
    assert DataDir(data).circuits_aside.exists()


def test_a_state_that_cannot_be_written_is_soft(tmp_path: Path) -> None:
    """On a disk that refuses writes (here: the lock file cannot be opened) the breaker still
    decides on what it reads, forgets what it cannot save, and says so once - never a traceback."""
    clock = Clock()
    breaker(tmp_path, clock, failure_threshold=1, cooldown_s=30).record_failure("down")
    DataDir(tmp_path).circuits_lock.unlink()
    DataDir(tmp_path).circuits_lock.mkdir()
    lines: list[str] = []
    cb = CircuitBreaker(DataDir(tmp_path), failure_threshold=1, cooldown_s=30, clock=clock, warn=lines.append)
    assert not cb.allow("down") and cb.allow("m")
    cb.record_failure("m")
    cb.record_success("down")
    clock.now += 31
    assert cb.allow("down")  # half-open: the probe cannot be claimed, the call goes ahead
    cb.release("down")
    assert cb.state("m") == CLOSED and len(lines) == 1 and "not saved" in lines[0]


def test_hot_path_reuses_its_read_for_refresh_s(tmp_path: Path) -> None:
    """allow/record_success of an untroubled model reuse what they read for ``refresh_s`` (no stat
    per call): this instance's own changes still count at once, another's once ``refresh_s`` passed."""
    clock = Clock()
    cb = breaker(tmp_path, clock, failure_threshold=3, refresh_s=3600)
    assert cb.allow("m")  # read: no state file yet
    cb.record_failure("m")  # its own change...
    cb.record_success("m")  # ...is seen: the success resets the count
    assert json.loads(DataDir(tmp_path).circuits.read_text())["m"]["consecutive"] == 0

    assert cb.allow("n")  # read after its own write
    other = breaker(tmp_path, clock, failure_threshold=3)
    other.record_failure("n")
    cb.record_success("n")  # within refresh_s: the other's first failure of "n" is not read yet
    assert json.loads(DataDir(tmp_path).circuits.read_text())["n"]["consecutive"] == 1
    cb.refresh_s = 0
    cb.record_success("n")
    assert json.loads(DataDir(tmp_path).circuits.read_text())["n"]["consecutive"] == 0
