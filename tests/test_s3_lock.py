"""The job lock in object storage: conditional writes against a real S3-compatible server (moto)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from hive_core.errors import DataError, LockHeld, StorageError
from hive_core.settings import Settings
from hive_core.store.conditional import object_lock, put_if_absent
from hive_core.store.lock import job_lock
from hive_core.store.objects import ObjectPath, as_object
from tests.plugins.env import REPO
from tests.plugins.objstore import COUNTER, cut_upload_trial, held_lock_trial, lost_answer_lock_trial
from tests.plugins.proxies import AnswerDroppingProxy
from tests.plugins.s3 import S3Server


def test_put_if_absent_lets_one_writer_win(s3_root: str) -> None:
    path = as_object(Settings.from_env({}, data_dir=s3_root).data_dir) / "state" / "journal.json"
    assert put_if_absent(path, b"first")
    assert not put_if_absent(path, b"second")
    assert path.read_bytes() == b"first"


def test_processes_under_the_lock_never_interleave(s3_root: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER, s3_root, "5"], cwd=REPO) for _ in range(4)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    datadir = Settings.from_env({}, data_dir=s3_root).datadir
    assert (datadir.state / "counter").read_text() == "20"
    assert not datadir.lock("rollup").exists()  # released


def test_a_held_lock_refuses_a_second_run_and_a_killed_holders_lease_lapses(s3_root: str) -> None:
    lock = as_object(Settings.from_env({}, data_dir=s3_root).datadir.lock("rollup"))
    held_lock_trial(lock)


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


@pytest.mark.parametrize("header", ["if-none-match", "if-match"])
def test_a_lock_write_whose_answer_was_lost_is_this_holders_own(s3_root: str, s3_server: S3Server,
                                                                  monkeypatch: pytest.MonkeyPatch, header: str) -> None:
    """The SDK retries a PUT whose answer it lost; when the first attempt had landed, the retry is
    refused by the object it wrote. Taking the lock (If-None-Match) and renewing it (If-Match) read
    such a refusal back as their own write: before, the taker waited out its own lease as 'another
    run holds', and the renewer reported its lock lost at the end of a finished job."""
    proxy = AnswerDroppingProxy(s3_server.endpoint, b"PUT", f"\r\n{header}:".encode())
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        lost_answer_lock_trial(s3_root, lambda: proxy.dropped, renewing=header == "if-match")
    finally:
        proxy.close()


def test_an_upload_cut_short_stores_nothing(s3_root: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PUT whose body stops halfway (a writer killed mid-request, a lost connection) stores
    nothing, and the SDK's retry creates the whole object."""
    cut_upload_trial(s3_root, s3_server.endpoint, b"PUT", rb"\r\nif-none-match:",
                     lambda endpoint: monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint))
