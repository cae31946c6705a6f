"""The one way Hive opens DuckDB: in memory, in UTC, and silent.

Every DuckDB connection Hive opens (the event views of ``queries.connect``, the checks of ``verify``
and ``compact``) comes from :func:`open_duckdb`, so all of them run with the same session settings:
``TimeZone = 'UTC'`` (the store's days are UTC days, whatever the machine's zone) and no progress
bar (DuckDB draws one on stdout once a query runs for 2 s: cron would mail it, and it would break
a ``--json`` document). duckdb is imported inside the function, so importing this module is free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["open_duckdb"]


def open_duckdb() -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection with Hive's session settings (see the module docstring)."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # it prints to stdout after 2 s, and cron mails stdout
    except BaseException:
        con.close()
        raise
    return con
