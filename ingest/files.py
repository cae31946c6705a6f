"""Atomic Parquet files: write under a temporary name in the same directory, fsync, rename.

A reader sees either no file or the whole file, whatever instant the writer dies at; the temporary
file a killed writer leaves behind is never read (``hive_core.store.layout.is_temporary``) and is removed
by ``verify`` and ``compact``.

In object storage (an ``s3://`` data directory, :mod:`hive_core.store.objects`) the file is written
to memory and sent in one PUT: an object appears whole or not at all, so there is no temporary
name and nothing for a killed writer to leave behind.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.store.atomic import atomic_file
from hive_core.store.datadir import is_remote

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["parquet_bytes", "write_atomic"]

#: Row groups of ~128k rows keep DuckDB's parallel scan busy without bloating footers.
DEFAULT_ROW_GROUP_SIZE = 128 * 1024
#: Unique per row: dictionary-encoding them only costs time (it halves flush throughput).
UNIQUE_COLUMNS = frozenset({"event_id", "request_id", "generation_id", "supersedes"})


def write_atomic(
    table: pa.Table,
    path: Path,
    *,
    compression: str = "zstd",
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    overwrite: bool = False,
    dictionary: Collection[str] | None = None,
) -> None:
    """Write ``table`` to ``path`` so that the file appears complete or not at all.

    Without ``overwrite`` an existing file is an error (names are unique per writer; a clash means
    a bug, and silently replacing events would lose them). ``dictionary``: the columns to
    dictionary-encode (default: all but :data:`UNIQUE_COLUMNS`).
    """
    import pyarrow.parquet as pq

    if is_remote(path):
        # Names are unique per writer (as locally, where an existing name is refused): one PUT.
        path.write_bytes(parquet_bytes(table, compression=compression, row_group_size=row_group_size,
                                       dictionary=dictionary))
        return
    with atomic_file(path, overwrite=overwrite) as local:
        pq.write_table(table, local, **_options(table, compression, row_group_size, dictionary))


def parquet_bytes(table: pa.Table, *, compression: str = "zstd", row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
                  dictionary: Collection[str] | None = None) -> bytes:
    """``table`` encoded as :func:`write_atomic` encodes it, in memory: the body of one PUT (a
    compaction's output goes through a conditional PUT of its own)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_options(table, compression, row_group_size, dictionary))
    return bytes(sink.getvalue().to_pybytes())


def _options(table: pa.Table, compression: str, row_group_size: int, dictionary: Collection[str] | None) -> dict[str, Any]:
    return {"compression": compression, "row_group_size": row_group_size,
            "use_dictionary": list(dictionary) if dictionary is not None
            else [n for n in table.column_names if n not in UNIQUE_COLUMNS]}
