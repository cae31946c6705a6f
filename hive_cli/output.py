"""Writing a query result as a table, CSV, JSON or Parquet (``hive-jobs sql``)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import IO, Any

__all__ = ["DEFAULT_MAX_ROWS", "format_table", "write_result"]

#: rows a table shows before it says how many more there are (``hive-jobs sql --max-rows``)
DEFAULT_MAX_ROWS = 200


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_table(columns: list[str], rows: list[tuple[Any, ...]], *, total: int | None = None) -> str:
    """An aligned plain-text table; numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row[i], int | float) or row[i] is None for row in rows) and rows != [] for i in range(len(columns))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    shown = len(rows)
    if total is not None and total > shown:
        out.append(f"({shown} of {total} rows shown; use --format csv/json/parquet for all)")
    else:
        out.append(f"({shown} row{'s' if shown != 1 else ''})")
    return "\n".join(out)


def write_result(result: Any, fmt: str, out: Path | None, *, max_rows: int = DEFAULT_MAX_ROWS) -> None:
    """Write a DuckDB result (after ``execute``) in ``fmt`` to ``out`` or stdout."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        assert out is not None
        table = result.fetch_arrow_table()
        pq.write_table(table, out)
        print(f"wrote {table.num_rows} rows to {out}", file=sys.stderr)
        return
    columns = [d[0] for d in result.description or []]
    sink: IO[str] = open(out, "w", newline="") if out else sys.stdout  # noqa: SIM115
    try:
        if fmt == "table":
            rows = result.fetchmany(max_rows + 1)
            total = None
            if len(rows) > max_rows:
                rows = rows[:max_rows]
                total = max_rows + 1 + len(result.fetchall())
            sink.write(format_table(columns, rows, total=total) + "\n")
        elif fmt == "csv":
            writer = csv.writer(sink)
            writer.writerow(columns)
            while batch := result.fetchmany(10_000):
                writer.writerows(batch)
        else:
            rows = [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
            json.dump(rows, sink, default=str, indent=2)
            sink.write("\n")
    finally:
        if out:
            sink.close()
