"""Files Hive's writer did not write: stray copies, pandas and Polars files, rows dated elsewhere.

Readers follow the file-name rule (only ``<writer>-<seq>.parquet`` is data), accept what casts
losslessly (nanosecond ``ts`` that are whole microseconds, ``large_string``), and quarantine the
rest row by row - reported the same way by ``verify``, ``hive-jobs sql`` and the rollup. Each
test goes through the library and the CLI.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest

import queries
from hive_cli.hive_jobs import main as jobs_main
from hive_core.settings import Settings
from hive_core.store.events import ApiCall, arrow_schema
from ingest import compact, verify
from ingest.log import EventLog
from jobs.rollup.daily import rollup
from tests.cases import T0, api_call

DAY = T0.date()


def _store(data_dir: Path, files: int = 3, per_file: int = 20) -> Path:
    """``files`` Hive files of api_call events on T0's day; returns the partition."""
    n = 0
    for f in range(files):
        with EventLog(data_dir, writer=f"w{f}") as log:
            for _ in range(per_file):
                log.record(api_call(n, ts=T0 + timedelta(seconds=n)))
                n += 1
    return next((data_dir / "events" / "api_call").glob("date=*"))


def _count(data_dir: Path) -> int:
    with queries.connect(data_dir, warn=False) as store:
        return int(queries.run_sql(store, "select count(*) from api_calls").fetchone()[0])


def _cli(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    try:
        jobs_main(["--data-dir", str(data_dir), *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _sql_count(capsys: pytest.CaptureFixture[str], data_dir: Path) -> tuple[int, str]:
    code, out, err = _cli(capsys, data_dir, "sql", "select count(*) as n from api_calls", "--format", "csv")
    assert code == 0, err
    return int(out.splitlines()[-1]), err


def _foreign(partition: Path, name: str, rows: list[dict[str, object]], ts: pa.Array | None = None) -> Path:
    """A file written with pyarrow (bypassing Hive's writer), optionally with another ``ts`` column."""
    table = pa.Table.from_pylist(rows, schema=arrow_schema(ApiCall))
    if ts is not None:
        table = table.set_column(table.schema.get_field_index("ts"), "ts", ts)
    pq.write_table(table, partition / name)
    return partition / name


def _rows(first: int, n: int, ts: datetime = T0) -> list[dict[str, object]]:
    return [api_call(first + i, ts=ts).model_dump() for i in range(n)]


def test_stray_copies_are_never_read_nor_compacted(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partition = _store(data_dir)
    good = sorted(partition.glob("*.parquet"))[0]
    strays = [partition / f"{good.name}.bak", partition / f"{good.name}~", partition / "backup",
              partition / f"copy of {good.name}", partition / f".{good.name}", partition / "old" / good.name]
    (partition / "old").mkdir()
    for stray in strays:
        shutil.copy(good, stray)
    assert _count(data_dir) == 60
    count, err = _sql_count(capsys, data_dir)
    assert count == 60
    assert sorted(re.findall(r"warning: skipped (.*): stray", err)) == sorted(
        str(p) for p in [*strays[:5], partition / "old"])
    copied = good.read_bytes()
    report = compact(data_dir, day=DAY)
    assert report.events == 60 and all(s.read_bytes() == copied for s in strays)
    assert _count(data_dir) == 60
    problems = {p.path for p in verify(data_dir).problems}
    assert {str(p) for p in [*strays[:5], partition / "old"]} <= problems
    code, out, _ = _cli(capsys, data_dir, "verify")
    assert code == 1 and out.count(": stray: ") == 6


def test_a_copy_under_a_writer_name_is_folded_in_once(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partition = _store(data_dir)
    shutil.copy(sorted(partition.glob("*.parquet"))[0], partition / "copy-000001.parquet")
    assert _count(data_dir) == 80  # the views do not de-duplicate (3x the rollup's time) ...
    code, out, _ = _cli(capsys, data_dir, "verify")
    assert code == 1 and out.count("occurs 2 times") == 20  # ... verify says so
    shutil.copytree(data_dir, data_dir.parent / "twin")
    report = compact(data_dir, day=DAY)
    assert _count(data_dir) == 60
    assert (report.events, report.duplicates) == (60, 20)
    assert _cli(capsys, data_dir, "verify")[0] == 0
    code, out, _ = _cli(capsys, data_dir.parent / "twin", "compact", "--date", str(DAY))
    assert code == 0 and out.endswith("4 files -> 1, 60 events (20 duplicate rows dropped)\n")
    assert _count(data_dir.parent / "twin") == 60


def _ns(values: list[int]) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.timestamp("ns", tz="UTC"))


def test_nanosecond_timestamps_read_and_compact_losslessly(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partition = _store(data_dir, files=1)
    micros = [int(T0.timestamp() * 1_000_000) + 1_000 * i + 7 for i in range(10)]
    _foreign(partition, "pandas-000001.parquet", _rows(100, 10), ts=_ns([us * 1000 for us in micros]))
    with queries.connect(data_dir) as store:
        rows = queries.run_sql(store, "select typeof(ts), epoch_us(ts) from api_calls where length(request_id) = 4 "
                                      "order by ts").fetchall()
    assert rows == [("TIMESTAMP WITH TIME ZONE", us) for us in micros]
    assert _sql_count(capsys, data_dir) == (30, "")
    assert verify(data_dir).ok
    assert compact(data_dir, day=DAY).events == 30
    merged = pq.read_table(next(partition.glob("*.parquet")))
    assert merged.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    foreign = merged.filter(pa.compute.is_in(merged["request_id"], pa.array([f"r{100 + i}" for i in range(10)])))
    assert sorted(foreign["ts"].cast(pa.int64()).to_pylist()) == micros


def test_naive_and_millisecond_timestamps_read_as_utc(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A naive ``ts`` means UTC (Hive's convention); milliseconds are whole microseconds."""
    partition = _store(data_dir, files=1)
    millis = [int(T0.timestamp() * 1000) + i for i in range(3)]
    _foreign(partition, "naive-000001.parquet", _rows(100, 3), ts=pa.array(millis, pa.int64()).cast(pa.timestamp("ms")))
    with queries.connect(data_dir) as store:
        rows = queries.run_sql(store, "select epoch_ms(ts) from api_calls where length(request_id) = 4 order by 1")
        assert [r[0] for r in rows.fetchall()] == millis
    assert _sql_count(capsys, data_dir) == (23, "") and verify(data_dir).ok
    assert compact(data_dir, day=DAY).events == 23 and _count(data_dir) == 23


def test_sub_microsecond_timestamps_are_quarantined_not_truncated(data_dir: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    partition = _store(data_dir, files=2)
    ns = int(T0.timestamp() * 1_000_000_000)
    foreign = _foreign(partition, "pandas-000001.parquet", _rows(100, 4),
                       ts=_ns([ns + 1_000, ns + 2_001, ns + 3_000, ns + 4_999]))
    assert _count(data_dir) == 42
    count, err = _sql_count(capsys, data_dir)
    assert count == 42 and "2 events quarantined in 1 file (2 ts finer than a microsecond)" in err
    report = compact(data_dir, day=DAY)  # before: every compact failed (the cast would lose data)
    assert report.events == 40 and foreign.exists()
    assert any(path == foreign and "quarantined" in reason for path, reason in report.skipped)
    assert _count(data_dir) == 42
    found = verify(data_dir)
    assert found.quarantined == 2 and not found.ok
    assert [p.message for p in found.problems if p.path == str(foreign)] == [
        "2 events quarantined (2 ts finer than a microsecond): readers leave them out"]


def test_polars_large_string_files_are_read_like_plain_duckdb_reads_them(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partition = _store(data_dir, files=1)
    table = pa.Table.from_pylist(_rows(100, 5), schema=arrow_schema(ApiCall))
    pl.from_arrow(table).write_parquet(partition / "polars-000001.parquet")  # type: ignore[union-attr]
    assert pq.read_schema(partition / "polars-000001.parquet").field("model").type == pa.large_string()
    plain = duckdb.sql(f"select count(*) from '{partition}/*.parquet'").fetchall()
    assert plain == [(25,)] and _count(data_dir) == 25
    assert _sql_count(capsys, data_dir) == (25, "")
    assert verify(data_dir).ok
    assert compact(data_dir, day=DAY).events == 25 and _count(data_dir) == 25


def _quarantine_store(data_dir: Path) -> tuple[Path, int]:
    """A Hive store of 40 events and a foreign file with 6 rows, 4 of them quarantined: dated the next
    day, dated 9999-12-31, without ts; returns the foreign file and the quarantined count."""
    partition = _store(data_dir, files=2)
    rows = _rows(100, 6)
    ts = [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), T0 + timedelta(days=1),
          T0 + timedelta(days=1, hours=1), datetime(9999, 12, 31, tzinfo=UTC), None]
    return _foreign(partition, "foreign-000001.parquet", rows, ts=pa.array(ts, pa.timestamp("us", tz="UTC"))), 4


def test_quarantined_rows_are_reported_the_same_way_everywhere(data_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    foreign, quarantined = _quarantine_store(data_dir)
    line = ("4 events quarantined in 1 file (1 without ts, 1 ts outside 2000..2199, "
            "2 ts outside its partition's UTC day): left out; `hive-jobs verify` lists them")
    count, err = _sql_count(capsys, data_dir)
    assert count == 42 and err.splitlines() == [f"warning: skipped {data_dir / 'events'}: {line}"]
    with queries.connect(data_dir, warn=False) as store:
        assert queries.run_sql(store, "select count(*) from api_calls").fetchone() == (42,)
        assert store.quarantine().total == quarantined
    found = verify(data_dir)
    assert (found.events, found.quarantined) == (42, quarantined)
    code, out, _ = _cli(capsys, data_dir, "verify")
    assert code == 1 and f"{foreign}: 4 events quarantined" in out
    assert out.splitlines()[-1] == "verified 3 files, 42 events (4 quarantined): 1 problem(s)"
    settings = Settings(data_dir=data_dir)
    report = rollup(settings)
    assert report.skipped == [(data_dir / "events", line)]
    code, _, err = _cli(capsys, data_dir, "rollup", "--rebuild")
    assert code == 0 and err.splitlines() == [f"warning: skipped {data_dir / 'events'}: {line}"]
    day = pq.read_table(data_dir / "rollups" / "daily" / f"date={DAY}" / "part.parquet")
    assert sum(day["attempts"].to_pylist()) == 42  # the rollup counts what sql counts
    assert compact(data_dir, day=DAY).events == 40 and foreign.exists()  # never folded in
