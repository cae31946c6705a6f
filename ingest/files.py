"""Atomic Parquet files: write under a temporary name in the same directory, fsync, rename.

A reader sees either no file or the whole file, whatever instant the writer dies at; the temporary
file a killed writer leaves behind is never read (``hive_core.store.layout.is_temporary``) and is removed
by ``verify`` and ``compact``.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from hive_core.store.atomic import atomic_file

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["write_atomic"]

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

    with atomic_file(path, overwrite=overwrite) as sink:
        pq.write_table(
            table,
            sink,
            compression=compression,
            row_group_size=row_group_size,
            use_dictionary=list(dictionary) if dictionary is not None
            else [n for n in table.column_names if n not in UNIQUE_COLUMNS],
        )
