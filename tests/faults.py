"""Real storage faults for tests: a full disk and a read-only directory, made with mounts.

* :func:`full_disk` mounts a small tmpfs and fills it to the last byte (``ENOSPC`` for any write
  that needs a new block; what already exists stays readable);
* :func:`read_only` bind-mounts a directory onto itself read-only (``EROFS``). ``chmod 0555``
  would not do for root, who ignores permission bits; it is the fallback when not root (``EACCES``);
* :func:`refuse_spend` makes the budget ledger refuse to write spend (settlements fail, the rest works).

Mounts need privileges (root with CAP_SYS_ADMIN, as in CI): root without them skips the test with
that reason. The mount is undone whatever happens (lazily when a process still uses it).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["FILLER", "allow_spend", "fill", "full_disk", "read_only", "refuse_spend"]

#: the file that fills a full disk (delete it to free the space)
FILLER = ".filler"


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} is not permitted here ({done.stderr.strip()}): "
                    "the storage-fault tests need root with mount privileges")


def _unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, timeout=30).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def fill(directory: Path) -> Path:
    """Write zeros into ``directory/.filler`` until the file system is full; returns the filler."""
    filler = directory / FILLER
    chunk = b"\0" * 4096
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)
    return filler


@contextmanager
def full_disk(mount_point: Path, size: str = "1M", *, prepare: object = None) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``mount_point`` (created), filled after ``prepare(mount_point)`` ran."""
    mount_point.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount_point))
    try:
        if callable(prepare):
            prepare(mount_point)
        fill(mount_point)
        yield mount_point
    finally:
        _unmount(mount_point)


@contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """``directory`` (existing) made read-only, contents kept, for the block. As root a read-only bind
    mount; as anyone else the write bits are removed (which binds them), restored whatever happens."""
    if os.geteuid() != 0:
        with _without_write_bits(directory):
            yield directory
        return
    _mount("--bind", str(directory), str(directory))
    try:
        _mount("-o", "remount,ro,bind", str(directory))
        yield directory
    finally:
        _unmount(directory)


@contextmanager
def _without_write_bits(directory: Path) -> Iterator[None]:
    modes = {p: p.stat().st_mode for p in [directory, *directory.rglob("*")]}
    for p, mode in modes.items():
        p.chmod(mode & ~0o222)
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def refuse_spend(ledger: Path) -> None:
    """From now on the SQLite budget ledger at ``ledger`` cannot write spend: a trigger aborts it
    inside SQLite, as a full table would. A settlement then fails (its transaction rolls back); a
    reservation or a release still works."""
    import contextlib
    import sqlite3

    from hive_core.budget.ledger import Ledger

    Ledger(ledger).close()  # its tables exist
    with contextlib.closing(sqlite3.connect(ledger)) as con:
        for verb in ("INSERT", "UPDATE"):
            con.execute(f"CREATE TRIGGER spend_{verb.lower()}_fails BEFORE {verb} ON spend "
                        "BEGIN SELECT RAISE(ABORT, 'no room for spend'); END")
        con.commit()


def allow_spend(ledger: Path) -> None:
    """Undo :func:`refuse_spend`: the ledger at ``ledger`` writes spend again."""
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(ledger)) as con:
        for verb in ("INSERT", "UPDATE"):
            con.execute(f"DROP TRIGGER spend_{verb.lower()}_fails")
        con.commit()
