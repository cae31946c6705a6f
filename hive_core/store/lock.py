"""File locks: the one ``fcntl.flock`` helper (:func:`file_lock`) and the job lock built on it.

Every lock between Hive processes goes through :func:`file_lock`: a read-modify-write of a shared
file (config, circuits, ledger), an append (content), an import (spills), a job
(:func:`job_lock` on ``<data>/state/<name>.lock``, so overlapping cron runs never interleave).

The kernel releases a ``flock`` when its holder exits or dies, so a crashed run never leaves a stale
lock behind (unlike a pid file). A lock file is never deleted: deleting it would let a second
process lock a fresh inode while the first still holds the old one. A ``flock`` belongs to one open
file, so two ``file_lock`` of one path exclude each other inside one process too.

    with job_lock(settings.datadir, "rollup", timeout_s=30):
        ...  # raises LockHeld after 30 s if another run still holds it
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from hive_core.errors import DataError, LockHeld
from hive_core.store.datadir import DataDir, is_remote

__all__ = ["DEFAULT_LOCK_TIMEOUT_S", "READ_ONLY_ERRNOS", "STORE_LOCK", "file_lock", "job_lock", "unwritable"]

#: the lock of every job that rewrites files of the store: rollup, compact, verify's repairs.
#: One name, so a compaction never deletes the inputs a rollup is reading, and a repair never
#: rolls back the journal of a compaction that is still running.
STORE_LOCK = "rollup"

#: seconds a second run waits for the first before giving up with LockHeld
DEFAULT_LOCK_TIMEOUT_S = 60.0
_POLL_S = 0.05


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool = False, timeout_s: float | None = None) -> Iterator[int]:
    """Hold an exclusive (or ``shared``) ``flock`` on ``path``, created with its folders if missing.

    ``timeout_s=None`` waits as long as it takes; a number polls until then (0: do not wait) and
    raises :class:`~hive_core.errors.LockHeld` naming the file. Yields the open descriptor (read-only
    for a shared lock, so a read-only store can still be read under one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, (os.O_RDONLY if shared else os.O_RDWR) | os.O_CREAT, 0o644)
    try:
        operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        if timeout_s is None:
            fcntl.flock(fd, operation)
        else:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, operation | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockHeld(f"{path} is locked by another process; waited {timeout_s:g} s, "
                                       "try again later") from None
                    time.sleep(_POLL_S)
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def job_lock(datadir: DataDir, name: str, *, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Hold the exclusive lock ``state/<name>.lock`` (``DataDir.lock``); wait up to ``timeout_s`` (0: do
    not wait). In object storage (``s3://``) the lock is an object written with ``If-None-Match: *``,
    a lease renewed while held (:func:`hive_core.store.conditional.object_lock`)."""
    path = datadir.lock(name)
    if is_remote(path):
        from hive_core.store.conditional import object_lock
        from hive_core.store.objects import as_object

        with object_lock(as_object(path), timeout_s=timeout_s):
            yield path
        return
    with contextlib.ExitStack() as stack:
        try:
            fd = stack.enter_context(file_lock(path, timeout_s=timeout_s))
        except LockHeld:
            raise LockHeld(f"another {name} run holds {path}{_holder(path)}; waited {timeout_s:g} s, "
                           "try again later") from None
        # Who holds it, for the message a waiting run prints (informational only: a full disk that
        # cannot take these few bytes must not stop the job that holds the lock).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path


def _holder(path: Path) -> str:
    try:
        pid = path.read_bytes()[:32].decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


#: errors that mean the store is read-only (as opposed to full): read-only work can still go on
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})

#: errors that mean "this store cannot be written now", and what to do about them
_FIXES = {errno.EROFS: "make the data directory writable", errno.EACCES: "make the data directory writable",
          errno.EPERM: "make the data directory writable", errno.ENOSPC: "free some space",
          errno.EDQUOT: "free some space"}


def unwritable(job: str, exc: OSError, data_dir: Path) -> DataError:
    """The one line a job prints when a file of the store cannot be written (a read-only data
    directory, a full disk): which file, why, what to do. Jobs write whole files only (temporary,
    rename), so a stopped job leaves nothing torn, and its next run redoes what it did not finish."""
    where = exc.filename or f"writing under {data_dir}"
    fix = _FIXES.get(exc.errno or 0, "check the data directory")
    return DataError(f"{job} stopped: {where}: {exc.strerror or exc}: {fix} and run it again "
                     "(no file is left half-written)")
