"""Named SQL over the event store, and the one query runner (``connect``, ``named_table``, lookups).

``load(name)`` returns the text of ``queries/<name>.sql`` (e.g. ``"views/api_calls"``);
``connect(data_dir)`` opens DuckDB with every event view registered (see :mod:`queries.connect`);
``named_table(store, name, params)`` runs a named query as an Arrow table and ``run_sql(store, sql,
params)`` any SQL (retried over a fresh listing when a compaction removed a file meanwhile);
``request_model(store, request_id)`` looks one request up (:mod:`queries.lookup`).
SQL takes DuckDB ``$name`` parameters only; values are bound, never formatted into the text.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from queries.connect import Store, connect, named_table, run_sql
from queries.lookup import request_model

__all__ = ["Store", "connect", "load", "named_table", "names", "request_model", "run_sql"]

ROOT = Path(__file__).resolve().parent


@cache
def load(name: str) -> str:
    """The SQL text of a named query (``views/usage``, ``reports/cost_by_day``, ...)."""
    path = (ROOT / f"{name}.sql").resolve()
    if ROOT not in path.parents or not path.is_file():
        raise KeyError(f"no query named {name!r}; known: {', '.join(names())}")
    return path.read_text()


def names() -> list[str]:
    """Every named query, as ``<folder>/<stem>``."""
    return sorted(str(p.relative_to(ROOT).with_suffix("")) for p in ROOT.rglob("*.sql"))
