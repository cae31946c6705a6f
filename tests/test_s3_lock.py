"""The job lock in object storage: conditional writes against a real S3-compatible server (moto)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from hive_core.errors import DataError, LockHeld, StorageError
from hive_core.settings import Settings
from hive_core.store.conditional import object_lock, put_if_absent
from hive_core.store.lock import job_lock
from hive_core.store.objects import ObjectPath, as_object

#: N processes increment a counter object read-modify-write under the lock: lost updates show a race
_COUNTER = """
import sys
from hive_core.settings import Settings
from hive_core.store.lock import job_lock
datadir = Settings.from_env({}, data_dir=sys.argv[1]).datadir
counter = datadir.state / "counter"
for _ in range(int(sys.argv[2])):
    with job_lock(datadir, "rollup", timeout_s=120):
        value = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(value + 1))
"""

_HOLD = """
import sys, time
from hive_core.store.conditional import object_lock
from hive_core.store.objects import parse_url
with object_lock(parse_url(sys.argv[1]), timeout_s=30, lease_s=float(sys.argv[2])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_put_if_absent_lets_one_writer_win(s3_root: str) -> None:
    path = as_object(Settings.from_env({}, data_dir=s3_root).data_dir) / "state" / "journal.json"
    assert put_if_absent(path, b"first")
    assert not put_if_absent(path, b"second")
    assert path.read_bytes() == b"first"


def test_processes_under_the_lock_never_interleave(s3_root: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _COUNTER, s3_root, "5"]) for _ in range(4)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    datadir = Settings.from_env({}, data_dir=s3_root).datadir
    assert (datadir.state / "counter").read_text() == "20"
    assert not datadir.lock("rollup").exists()  # released


def test_a_held_lock_refuses_a_second_run_and_a_killed_holders_lease_lapses(s3_root: str) -> None:
    lock = as_object(Settings.from_env({}, data_dir=s3_root).datadir.lock("rollup"))
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(lock), "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match="another run holds"), object_lock(lock, timeout_s=0, lease_s=2):
            pass
        time.sleep(3)  # the holder renews every 2/3 s: alive, it keeps the lock past its lease
        with pytest.raises(LockHeld), object_lock(lock, timeout_s=0, lease_s=2):
            pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        with object_lock(lock, timeout_s=30, lease_s=2):  # free once the dead holder's lease lapsed
            assert lock.exists()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_job_lock_takes_the_object_lock(s3_root: str) -> None:
    datadir = Settings.from_env({}, data_dir=s3_root).datadir
    with job_lock(datadir, "rollup", timeout_s=0) as path:
        assert isinstance(path, ObjectPath) and path.exists()
        with pytest.raises(LockHeld), job_lock(datadir, "rollup", timeout_s=0):
            pass
    assert not path.exists()


def test_a_holder_whose_lock_another_run_replaced_or_removed_is_told_when_it_releases(s3_root: str) -> None:
    """Releasing deletes only the version this holder wrote: a lock object another run took over
    (or removed) means the two may have run at once, and the holder says so instead of deleting it."""
    lock = as_object(Settings.from_env({}, data_dir=s3_root).datadir.lock("rollup"))
    with pytest.raises(DataError, match="may have taken it"), object_lock(lock, timeout_s=0):
        lock.write_bytes(b'{"host": "another"}')  # a takeover by another host
    assert lock.read_bytes() == b'{"host": "another"}', "the other run's lock is left alone"
    lock.unlink()
    with pytest.raises(DataError, match="lapsed"), object_lock(lock, timeout_s=0, lease_s=1.5):
        lock.unlink()  # every renewal fails (no such object) until the lease would have lapsed
        time.sleep(2.5)


def test_an_unconditional_write_refused_by_the_server_is_an_error(s3_root: str) -> None:
    """A missing bucket is the bucket's error (never 'no such object', which callers take for a
    file a compaction removed), and a write the server refuses is never taken for a lost condition."""
    with pytest.raises(StorageError, match="NoSuchBucket"):
        ObjectPath("s3", "hive-no-such-bucket/data/x").write_bytes(b"x")
    with pytest.raises(StorageError, match="NoSuchBucket"):
        ObjectPath("s3", "hive-no-such-bucket/data/x").read_bytes()
