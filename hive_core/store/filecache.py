"""A parsed copy of a data file, kept as JSON in the data directory's cache and used only while the
file is unchanged.

The catalog JSON takes ~10 ms to parse and the ranking Parquet needs pyarrow (~140 ms to import);
their parsed forms load from the cache in a millisecond or two.

Where and how (each choice closes a hole the pickle beside the source had):

* The cache is JSON read back into plain values only (str, numbers, lists, tuples, dicts,
  ``Decimal``, ``date``, ``datetime``, ``frozenset``): reading it cannot run code. A pickle can, and
  one planted beside a shared catalog would have run in every ``hive`` that loaded that catalog.
* It lives in ``<data>/cache/`` (``DataDir.cache``; directory ``0700``, files ``0600``), never beside
  the source, so a source outside the data directory (a shared catalog) gets no file written
  next to it. One cache file per source: ``<sha256 of the source's absolute path>.json``.
* It is used only when its key - the source's absolute path, size and ``mtime_ns`` plus the
  caller's format version - matches the file now, so a re-synced or re-ranked file is re-read.

Callers that hold richer objects give an ``encode``/``decode`` pair (to and from plain values). A
cache that is missing, stale, unreadable or not what ``decode`` expects is parsed again; one that
cannot be written (a read-only directory) only costs speed. Without a ``cache_dir`` nothing is
cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from hive_core.store.atomic import PRIVATE_MODE, atomic_file

__all__ = ["cache_file", "cached_parse"]

T = TypeVar("T")

def cache_file(path: Path | str, directory: Path) -> Path:
    """The cache file in ``directory`` (``DataDir.cache``) for the source file ``path``."""
    absolute = os.path.abspath(path)  # not resolve(): a syscall per path component, on every load
    return directory / f"{hashlib.sha256(absolute.encode('utf-8', 'surrogateescape')).hexdigest()[:32]}.json"


def cached_parse(
    path: Path,
    version: int,
    parse: Callable[[Path], T],
    *,
    cache_dir: Path | None = None,
    encode: Callable[[T], Any] | None = None,
    decode: Callable[[Any], T] | None = None,
) -> T:
    """``parse(path)``, or its cached result when the cache in ``cache_dir`` matches the file.

    ``encode`` turns the parsed value into plain values and ``decode`` back (by default the value
    is stored as it is: it must then be made of the plain types the module docstring lists).
    Raises ``FileNotFoundError`` when ``path`` does not exist; whatever ``parse`` raises passes through.
    """
    stat = path.stat()
    if cache_dir is None:
        return parse(path)
    cache = cache_file(path, cache_dir)
    key = [version, stat.st_size, stat.st_mtime_ns, os.path.abspath(path)]
    # Anything wrong with the cache (missing, truncated, from an older Hive, tampered) means: parse again.
    with contextlib.suppress(Exception):
        document = json.loads(cache.read_bytes(), object_hook=_from_plain)
        if document["key"] == key:
            value = document["value"]
            return decode(value) if decode is not None else value
    value = parse(path)
    _store(cache, key, encode(value) if encode is not None else value)
    return value


def _store(cache: Path, key: list[Any], value: Any) -> None:
    """Write the cache file (0600, in a 0700 directory); a cache that cannot be written is skipped."""
    try:
        text = json.dumps({"key": key, "value": _to_plain(value)}, separators=(",", ":"))
    except (TypeError, ValueError):
        return  # a value of a type this cache does not store: no cache, still correct
    with contextlib.suppress(OSError):
        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if cache.parent.stat().st_mode & 0o077:
            os.chmod(cache.parent, 0o700)
        with atomic_file(cache, mode=PRIVATE_MODE) as sink:
            sink.write(text.encode())


# Plain values as JSON: lists and scalars as they are, everything else as a one-key tagged object.
# Dicts are always tagged ("$map" with [key, value] pairs), so keys may be tuples and no stored
# object can be mistaken for a tag.


def _to_plain(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [_to_plain(v) for v in value]}
    if isinstance(value, dict):
        return {"$map": [[_to_plain(k), _to_plain(v)] for k, v in value.items()]}
    if isinstance(value, frozenset):
        return {"$frozenset": [_to_plain(v) for v in value]}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):  # before date: a datetime is a date
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    raise TypeError(f"cannot cache a {type(value).__name__}")


_TAGS: dict[str, Callable[[Any], Any]] = {
    "$tuple": tuple,
    "$map": lambda pairs: {k: v for k, v in pairs},
    "$frozenset": frozenset,
    "$decimal": Decimal,
    "$datetime": datetime.fromisoformat,
    "$date": date.fromisoformat,
}


def _from_plain(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        ((tag, inner),) = obj.items()
        convert = _TAGS.get(tag)
        if convert is not None:
            return convert(inner)
    return obj  # the envelope {"key", "value"}
