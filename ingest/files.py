"""Atomic Parquet files: write under a temporary name in the same directory, fsync, rename.

A reader sees either no file or the whole file, whatever instant the writer dies at; the temporary
file a killed writer leaves behind is never read (``hive_core.layout.is_temporary``) and is removed
by ``verify`` and ``compact``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from hive_core.atomic import fsync_dir
from hive_core.layout import temporary_name

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["fsync_dir", "write_atomic"]

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
) -> None:
    """Write ``table`` to ``path`` so that the file appears complete or not at all.

    Without ``overwrite`` an existing file is an error (names are unique per writer; a clash means
    a bug, and silently replacing events would lose them).
    """
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(temporary_name(path.name))
    try:
        with open(tmp, "wb") as sink:
            pq.write_table(
                table,
                sink,
                compression=compression,
                row_group_size=row_group_size,
                use_dictionary=[n for n in table.column_names if n not in UNIQUE_COLUMNS],
            )
            sink.flush()
            os.fsync(sink.fileno())
        if not overwrite and path.exists():
            raise FileExistsError(f"refusing to replace {path}")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
