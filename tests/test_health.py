"""The circuit breaker: opening, cool-down, the single half-open probe, state across processes."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

from hive_core.health import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def breaker(path: Path, clock: Clock, **kwargs: float) -> CircuitBreaker:
    return CircuitBreaker(path, clock=clock, **kwargs)  # type: ignore[arg-type]


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


def test_half_open_single_probe_then_close(tmp_path: Path) -> None:
    clock = Clock()
    cb = breaker(tmp_path, clock, failure_threshold=1, cooldown_s=30)
    cb.record_failure("m")
    clock.now += 29
    assert not cb.allow("m")
    clock.now += 2
    assert cb.state("m") == HALF_OPEN
    assert cb.allow("m")  # the probe
    assert not cb.allow("m") and "m" in cb.blocked()  # everyone else waits for it
    cb.record_success("m")
    assert cb.state("m") == CLOSED and cb.allow("m") and not cb.blocked()


def test_failed_probe_reopens_for_a_full_cooldown(tmp_path: Path) -> None:
    clock = Clock()
    cb = breaker(tmp_path, clock, failure_threshold=1, cooldown_s=30)
    cb.record_failure("m")
    clock.now += 31
    assert cb.allow("m")
    cb.record_failure("m")
    assert cb.state("m") == OPEN
    clock.now += 29
    assert not cb.allow("m")


def test_lost_probe_times_out(tmp_path: Path) -> None:
    clock = Clock()
    cb = breaker(tmp_path, clock, failure_threshold=1, cooldown_s=30, probe_timeout_s=60)
    cb.record_failure("m")
    clock.now += 31
    assert cb.allow("m")
    clock.now += 61
    assert cb.allow("m")  # the first probe's process never reported back


def test_state_survives_across_instances_and_processes(tmp_path: Path) -> None:
    cb = CircuitBreaker(tmp_path, failure_threshold=2)
    cb.record_failure("m")
    code = (
        "import sys; from hive_core.health import CircuitBreaker; "
        "cb = CircuitBreaker(sys.argv[1], failure_threshold=2); cb.record_failure('m'); "
        "print(cb.state('m'))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == OPEN
    assert cb.state("m") == OPEN and not CircuitBreaker(tmp_path).allow("m")


def _fail_many(path: str) -> None:
    cb = CircuitBreaker(path, failure_threshold=10_000, min_calls=10_000, window=10_000)
    for _ in range(25):
        cb.record_failure("m")


def test_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_fail_many, args=(str(tmp_path),)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    cb = CircuitBreaker(tmp_path)
    entry = cb._read()["m"]
    assert entry["consecutive"] == 100


def test_damaged_state_file_is_treated_as_empty(tmp_path: Path) -> None:
    (tmp_path / "circuits.json").write_text("{broken")
    cb = CircuitBreaker(tmp_path, failure_threshold=1)
    assert cb.allow("m") and cb.state("m") == CLOSED
    cb.record_failure("m")
    assert cb.state("m") == OPEN


def test_late_failures_do_not_extend_an_open_circuit(tmp_path: Path) -> None:
    clock = Clock()
    cb = breaker(tmp_path, clock, failure_threshold=1, cooldown_s=30)
    cb.record_failure("m")
    clock.now += 20
    cb.record_failure("m")  # a call that was in flight when the circuit opened
    clock.now += 11
    assert cb.state("m") == "half-open" and cb.allow("m")
