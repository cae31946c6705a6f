"""Helpers to read an event store back the way a user would: plain DuckDB over the glob; the
budget ledger's settled spend; and :class:`ListSink`, an event sink that keeps events in memory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

if TYPE_CHECKING:
    from hive_core.store.events import Event

__all__ = ["ListSink", "events", "glob_count", "ledger_spend", "request_ids"]


class ListSink:
    """Collects events in memory (the EventLog round trip is tested in test_tracking)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        self.events.append(event)

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


def events(data_dir: Path, event_type: str, columns: str) -> list[tuple[Any, ...]]:
    """``columns`` of every ``event_type`` event in the store, in time order (plain DuckDB)."""
    glob = str(data_dir / "events" / event_type / "*" / "*.parquet")
    if not list((data_dir / "events" / event_type).glob("*/*.parquet")):
        return []
    return duckdb.sql(f"SELECT {columns} FROM read_parquet('{glob}') ORDER BY ts").fetchall()


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


def ledger_spend(data_dir: Path) -> float:
    """Settled spend of the global scope, all days, as the budget ledger holds it."""
    from hive_core.budget.ledger import Ledger
    from hive_core.store.datadir import DataDir

    with Ledger(DataDir(data_dir).ledger) as ledger:
        return sum(usd for (scope, _day), usd in ledger.spend_by_day().items() if scope == "global")


@pytest.fixture
def fork_ctx():  # type: ignore[no-untyped-def]
    """A fork-based multiprocessing context: children start in milliseconds with imports warm."""
    import multiprocessing

    return multiprocessing.get_context("fork")
