"""A parsed copy of a data file, pickled beside it and used only while the file is unchanged.

The catalog JSON takes ~10 ms to parse and the ranking Parquet needs pyarrow (~140 ms to import);
their parsed forms unpickle in a millisecond or two. The cache is keyed by the source file's
``mtime_ns`` and size plus a format version, so a re-synced or re-ranked file is re-read. Caches
live in the user's own data directory (the same trust boundary as the data itself); an unreadable
or stale cache, or one that cannot be written (a read-only directory), only costs speed.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hive_core.atomic import write_bytes_atomic

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
    """Store the parsed value beside its source; a cache that cannot be written is simply skipped."""
    with contextlib.suppress(OSError):
        write_bytes_atomic(cache, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
