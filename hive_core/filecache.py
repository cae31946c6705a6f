"""A parsed copy of a data file, pickled beside it and used only while the file is unchanged.

The catalog JSON takes ~10 ms to parse and the ranking Parquet needs pyarrow (~140 ms to import);
their parsed forms unpickle in a millisecond or two. The cache is keyed by the source file's
``mtime_ns`` and size plus a format version, so a re-synced or re-ranked file is re-read. Caches
live in the user's own data directory (the same trust boundary as the data itself); an unreadable
or stale cache, or one that cannot be written (a read-only directory), only costs speed.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["cached_parse"]

T = TypeVar("T")


def cached_parse(path: Path, version: int, parse: Callable[[Path], T]) -> T:
    """``parse(path)``, or its cached result when ``.<name>.pickle`` matches the file.

    Raises ``FileNotFoundError`` when ``path`` does not exist; whatever ``parse`` raises passes through.
    """
    stat = path.stat()
    key = (version, stat.st_mtime_ns, stat.st_size)
    cache = path.with_name(f".{path.name}.pickle")
    # Anything wrong with the cache (missing, truncated, from an older Hive) means: parse again.
    with contextlib.suppress(Exception):
        with cache.open("rb") as fh:
            cached_key, value = pickle.load(fh)
        if cached_key == key:
            return value  # type: ignore[no-any-return]
    value = parse(path)
    _write_atomic(cache, (key, value))
    return value


def _write_atomic(cache: Path, value: object) -> None:
    """Temporary file in the same directory, then ``os.replace``; give up quietly on OSError."""
    # pid + id make the name unique per writer; tempfile is not imported (it costs ~5 ms at start-up).
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.{id(value):x}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cache)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
