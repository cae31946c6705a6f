"""Helpers to read an event store back the way a user would: plain DuckDB over the glob."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest


def glob_count(data_dir: Path, event_type: str = "*") -> int:
    """``select count(*) from '<data>/events/<type>/**/*.parquet'`` with plain DuckDB (no Hive code)."""
    pattern = data_dir / "events" / event_type / "**" / "*.parquet"
    if not list((data_dir / "events").glob(f"{event_type}/*/*.parquet")):
        return 0
    return int(duckdb.sql(f"select count(*) from '{pattern}'").fetchall()[0][0])


def request_ids(data_dir: Path, event_type: str = "api_call") -> list[str]:
    """Every request_id in the store as Hive's readers see it (corrupt/superseded files skipped)."""
    from hive_core.store.event_files import list_event_files

    files = [str(p) for p in list_event_files(data_dir, event_type).files]
    if not files:
        return []
    return [r[0] for r in duckdb.execute("select request_id from read_parquet($f)", {"f": files}).fetchall()]


@pytest.fixture
def fork_ctx():  # type: ignore[no-untyped-def]
    """A fork-based multiprocessing context: children start in milliseconds with imports warm."""
    import multiprocessing

    return multiprocessing.get_context("fork")
