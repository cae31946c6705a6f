"""The event types' Arrow schemas and the range of valid ``ts`` for readers, without importing pydantic.

Readers of the store (``queries``, ``ingest.verify``) need only each type's column names and
types and the range :data:`hive_core.events.TS_MIN` .. :data:`hive_core.events.TS_MAX` (rows of
foreign files outside it are quarantined), but building the pydantic classes in
:mod:`hive_core.events` costs about 0.1 s of every ``hive-jobs`` start. What is derived from those
classes is cached as serialized Arrow schemas (the range in the table's metadata) under the user's
cache directory, keyed by a hash of ``events.py``'s source and the pyarrow version: any edit to the
classes changes the key, so the cache can never disagree with them. A missing, unreadable or older
cache (or an unwritable cache directory) only means the classes are imported, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from hive_core.atomic import write_bytes_atomic

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Derived", "cache_path", "derived", "event_schemas", "ts_range"]

_TS_MIN, _TS_MAX = b"ts_min", b"ts_max"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hive"


def cache_path() -> Path:
    """Where the schemas of the current ``events.py`` are cached."""
    import pyarrow as pa

    events_py = Path(__file__).with_name("events.py")  # its sibling; find_spec costs 5 ms more
    digest = hashlib.sha256(events_py.read_bytes() + pa.__version__.encode()).hexdigest()[:20]
    return _cache_dir() / f"event-schemas-{digest}.arrow"


class Derived(NamedTuple):
    """What readers take from :mod:`hive_core.events`."""

    schemas: dict[str, pa.Schema]
    ts_min: datetime
    ts_max: datetime


def event_schemas() -> dict[str, pa.Schema]:
    """Event type name -> Arrow schema, exactly :func:`hive_core.events.arrow_schema` of each class."""
    return derived().schemas


def ts_range() -> tuple[datetime, datetime]:
    """``(TS_MIN, TS_MAX)`` of :mod:`hive_core.events`: the half-open range of a valid event ``ts``."""
    found = derived()
    return found.ts_min, found.ts_max


@cache
def derived() -> Derived:
    """The schemas and the ``ts`` range, from the cache (once per process; ``derived.cache_clear()``
    forgets them)."""
    import pyarrow as pa

    path = cache_path()
    with contextlib.suppress(OSError, pa.ArrowException, KeyError, TypeError, ValueError):
        table = pa.ipc.open_file(path).read_all()
        meta = table.schema.metadata  # None in a cache written before the range was kept: rebuilt
        bounds = (datetime.fromisoformat(meta[_TS_MIN].decode()), datetime.fromisoformat(meta[_TS_MAX].decode()))
        schemas = {
            name: pa.ipc.read_schema(pa.py_buffer(blob))
            for name, blob in zip(table["type"].to_pylist(), table["schema"].to_pylist(), strict=True)
        }
        return Derived(schemas, *bounds)
    from hive_core.events import EVENT_TYPES, TS_MAX, TS_MIN, arrow_schema

    schemas = {name: arrow_schema(cls) for name, cls in EVENT_TYPES.items()}
    table = pa.table({"type": list(schemas), "schema": [s.serialize().to_pybytes() for s in schemas.values()]})
    table = table.replace_schema_metadata({_TS_MIN: TS_MIN.isoformat(), _TS_MAX: TS_MAX.isoformat()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    with contextlib.suppress(OSError):  # an unwritable cache directory only costs the import next time
        write_bytes_atomic(path, sink.getvalue().to_pybytes())
    return Derived(schemas, TS_MIN, TS_MAX)
