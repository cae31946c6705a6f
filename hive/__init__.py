"""Hive as a library, in one import: a Session that records into the event log and reads the store.

    import hive
    with hive.Session.from_env() as session:
        print(session.chat("Say hi", model="openai/gpt-4o-mini", max_tokens=20).text)

``Session`` (:mod:`hive.session`) sends (``chat``, ``stream``, ``ask`` and, through ``aio()``, their
async twins) with recording, budgets and the circuit breaker on; ``Store`` (:mod:`hive.store`) reads
what was recorded, as DuckDB relations or Polars LazyFrames. ``AskOptions`` and ``SelectionRequest``
shape an ``ask``; errors are :mod:`hive_core.errors`' one tree (``BudgetExceeded``, ``RateLimited``, ...).
Heavy libraries (httpx, duckdb, polars, pyarrow) load on first use, not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hive.session import Session
from hive.store import Store
from hive_core.ask import AskOptions, AskResult
from hive_core.errors import BudgetExceeded, HiveError

if TYPE_CHECKING:
    from hive_core.selection.selector import SelectionRequest

__all__ = ["AskOptions", "AskResult", "BudgetExceeded", "HiveError", "SelectionRequest", "Session", "Store"]


def __getattr__(name: str) -> Any:
    # the selector's module loads the catalog's (~150 ms): only when a caller names it
    if name == "SelectionRequest":
        from hive_core.selection.selector import SelectionRequest

        return SelectionRequest
    raise AttributeError(f"module 'hive' has no attribute {name!r}")
