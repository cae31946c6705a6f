"""The event types' Arrow schemas for readers, without importing pydantic.

Readers of the store (``queries``, ``ingest.verify``) need only each type's column names and
types, but building the pydantic classes in :mod:`hive_core.store.events` costs about 0.1 s of every
``hive-jobs`` start. The schemas derived from those classes are cached as serialized Arrow schemas
under the user's cache directory, keyed by a hash of ``events.py``'s source and the pyarrow
version: any edit to the classes changes the key, so the cache can never disagree with them. A
missing or unreadable cache (or an unwritable cache directory) only means the classes are
imported, as before. (The range of a valid ``ts`` is a leaf constant: ``hive_core.store.layout.TS_MIN``.)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from hive_core.store.atomic import write_bytes_atomic

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["cache_path", "event_schemas"]

def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hive"


def cache_path() -> Path:
    """Where the schemas of the current ``events.py`` are cached."""
    import pyarrow as pa

    events_py = Path(__file__).with_name("events.py")  # its sibling; find_spec costs 5 ms more
    digest = hashlib.sha256(events_py.read_bytes() + pa.__version__.encode()).hexdigest()[:20]
    return _cache_dir() / f"event-schemas-{digest}.arrow"


@cache
def event_schemas() -> dict[str, pa.Schema]:
    """Event type name -> Arrow schema, exactly :func:`hive_core.store.events.arrow_schema` of each class
    (from the cache, once per process; ``event_schemas.cache_clear()`` forgets them)."""
    import pyarrow as pa

    path = cache_path()
    with contextlib.suppress(OSError, pa.ArrowException, KeyError, TypeError, ValueError):
        table = pa.ipc.open_file(path).read_all()
        return {
            name: pa.ipc.read_schema(pa.py_buffer(blob))
            for name, blob in zip(table["type"].to_pylist(), table["schema"].to_pylist(), strict=True)
        }
    from hive_core.store.events import EVENT_TYPES, arrow_schema

    schemas = {name: arrow_schema(cls) for name, cls in EVENT_TYPES.items()}
    table = pa.table({"type": list(schemas), "schema": [s.serialize().to_pybytes() for s in schemas.values()]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    with contextlib.suppress(OSError):  # an unwritable cache directory only costs the import next time
        write_bytes_atomic(path, sink.getvalue().to_pybytes())
    return schemas
