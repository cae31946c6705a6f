"""File locks: shared or exclusive, across processes, wait up to a timeout, released when the holder dies;
the job lock built on them."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from hive_core.errors import LockHeld
from hive_core.store.datadir import DataDir
from hive_core.store.lock import file_lock, job_lock


def _hold(root: Path, seconds: float, ready: Any) -> None:
    with job_lock(DataDir(root), "rollup", timeout_s=0):
        ready.set()
        time.sleep(seconds)


def test_second_holder_gives_up_after_the_timeout(tmp_path: Path, fork_ctx: Any) -> None:
    ready = fork_ctx.Event()
    child = fork_ctx.Process(target=_hold, args=(tmp_path, 2.0, ready))
    child.start()
    try:
        assert ready.wait(10)
        start = time.monotonic()
        with pytest.raises(LockHeld, match=f"another rollup run holds .* \\(pid {child.pid}\\)"), \
                job_lock(DataDir(tmp_path), "rollup", timeout_s=0.3):
            pass
        assert 0.25 < time.monotonic() - start < 1.5
    finally:
        child.join()


def test_waiter_gets_the_lock_when_the_holder_finishes(tmp_path: Path, fork_ctx: Any) -> None:
    ready = fork_ctx.Event()
    child = fork_ctx.Process(target=_hold, args=(tmp_path, 0.3, ready))
    child.start()
    assert ready.wait(10)
    with job_lock(DataDir(tmp_path), "rollup", timeout_s=10):
        child.join(5)
        assert child.exitcode == 0  # we only got the lock once the holder let go


def test_lock_of_a_killed_holder_is_free(tmp_path: Path, fork_ctx: Any) -> None:
    ready = fork_ctx.Event()
    child = fork_ctx.Process(target=_hold, args=(tmp_path, 60, ready))
    child.start()
    assert ready.wait(10)
    os.kill(child.pid, 9)  # type: ignore[arg-type]
    child.join()
    with job_lock(DataDir(tmp_path), "rollup", timeout_s=1):
        pass


def test_different_jobs_do_not_block_each_other(tmp_path: Path) -> None:
    with job_lock(DataDir(tmp_path), "rollup", timeout_s=0), job_lock(DataDir(tmp_path), "alerts", timeout_s=0):
        assert DataDir(tmp_path).lock("rollup").exists() and DataDir(tmp_path).lock("alerts").exists()


def test_lock_can_be_taken_again_after_release(tmp_path: Path) -> None:
    with job_lock(DataDir(tmp_path), "rollup", timeout_s=0):
        pass
    with job_lock(DataDir(tmp_path), "rollup", timeout_s=0):
        pass


def test_shared_locks_coexist_and_keep_an_exclusive_one_out(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "file.lock"  # folders are created
    with file_lock(path, shared=True, timeout_s=0), file_lock(path, shared=True, timeout_s=0), \
            pytest.raises(LockHeld, match=f"{path} is locked by another process; waited 0.1 s"), \
            file_lock(path, timeout_s=0.1):
        pass
    with file_lock(path, timeout_s=0):
        pass


def _hold_file(path: Path, seconds: float, ready: Any) -> None:
    with file_lock(path):
        ready.set()
        time.sleep(seconds)


def test_file_lock_without_timeout_waits_for_the_holder(tmp_path: Path, fork_ctx: Any) -> None:
    path = tmp_path / "file.lock"
    ready = fork_ctx.Event()
    child = fork_ctx.Process(target=_hold_file, args=(path, 0.3, ready))
    child.start()
    assert ready.wait(10)
    with file_lock(path, shared=True):
        child.join(5)
        assert child.exitcode == 0  # the shared lock came only once the exclusive holder let go


def test_a_lock_held_inside_the_job_is_not_taken_for_the_job_lock(tmp_path: Path) -> None:
    with pytest.raises(LockHeld, match="inner"), job_lock(DataDir(tmp_path), "rollup", timeout_s=0):
        raise LockHeld("inner")
