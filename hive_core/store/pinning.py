"""Files held open so that a listing's snapshot outlives their deletion.

A pinned listing (:func:`hive_core.store.event_files.list_event_files` with ``pin``) opens every
file it lists and keeps the descriptor; readers open the file again through the descriptor's name
(``/proc/self/fd/N``, or ``/dev/fd/N`` on macOS: :data:`FD_DIR`), which reaches the same file after
a compaction deleted it. The disk space of a deleted file is released when its descriptor is closed.

A listing may need more descriptors than the process may open: the soft limit is raised to the hard
one the first time it is in the way, :data:`RESERVE` descriptors stay free for DuckDB's own opens,
and past that :class:`OutOfDescriptors` tells the listing to name its files by path instead.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

__all__ = ["FD_DIR", "RESERVE", "OutOfDescriptors", "open_pinned"]

#: where an open descriptor has a name that opens the same file (Linux, macOS); None: no pinning
FD_DIR = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd" if sys.platform == "darwin" else None

#: descriptors a pinned listing leaves free (DuckDB's own opens, sockets, logs)
RESERVE = 256


class OutOfDescriptors(Exception):
    """Too many files to hold open at once."""


def open_pinned(path: Path) -> int:
    """A read-only descriptor of ``path``, keeping :data:`RESERVE` descriptors free (the soft limit
    is raised to the hard one the first time it is in the way); :class:`OutOfDescriptors` past that."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        if exc.errno != errno.EMFILE:
            raise
        fd = -1
    if 0 <= fd < _soft_limit() - RESERVE:
        return fd
    if fd >= 0:
        os.close(fd)
    if not _raise_soft_limit():
        raise OutOfDescriptors(str(path))
    return open_pinned(path)


def _soft_limit() -> int:
    import resource  # only where descriptors have names (FD_DIR): Linux, macOS

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 2**31 if soft == resource.RLIM_INFINITY else int(soft)


def _raise_soft_limit() -> bool:
    """Raise this process's soft limit on open files to its hard limit; whether it went up."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return False
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return True
