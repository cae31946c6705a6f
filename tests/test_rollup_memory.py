"""Bounded memory (issue 15): the rollup works in batches of days sized by HIVE_MEMORY_LIMIT, and its
files do not depend on the batches; DuckDB gets the same limit."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from hive_core.settings import Settings
from jobs.rollup.batches import MAX_BATCH_BYTES, batch_bytes, day_batches
from jobs.rollup.daily import rollup
from tests.cases import DAY0, write_history

D = [DAY0 + timedelta(days=i) for i in range(6)]


def _files(data_dir: Path) -> dict[str, bytes]:
    rollups = data_dir / "rollups"
    return {str(p.relative_to(rollups)): p.read_bytes() for p in sorted(rollups.rglob("*.parquet"))}


def test_batches_cut_runs_by_bytes_and_never_split_a_day() -> None:
    sizes = {d: 10 for d in D}
    days = [D[0], D[1], D[2], D[4], D[5]]  # two runs
    assert day_batches(days, sizes, 1_000) == [(D[0], D[2]), (D[4], D[5])]
    assert day_batches(days, sizes, 20) == [(D[0], D[1]), (D[2], D[2]), (D[4], D[5])]
    assert day_batches(days, sizes, 5) == [(d, d) for d in days]  # a day over the cap is its own batch
    assert day_batches([date.max], {date.max: 1}, 1) == [(date.max, date.max)]  # no overflow past the last day


def test_the_batch_follows_the_memory_limit_up_to_a_cap() -> None:
    assert batch_bytes(100 * 1000**3) == MAX_BATCH_BYTES
    assert batch_bytes(Settings.from_env({"HIVE_MEMORY_LIMIT": "128MB"}).memory_limit) == 64 * 1000**2


def test_the_files_do_not_depend_on_the_batches(tmp_path: Path) -> None:
    one, many = Settings(data_dir=tmp_path / "one"), Settings(data_dir=tmp_path / "many")
    for settings in (one, many):
        write_history(settings.data_dir, days=len(D), n=40)
        junk = settings.data_dir / "events" / "api_call" / f"date={D[2]}" / "junk-000001.parquet"
        junk.write_bytes(b"not parquet")  # skipped, and reported, whatever the batches
    whole = rollup(one, rebuild=True)
    daily = rollup(many, rebuild=True, max_batch_bytes=1)  # every day a query of its own
    assert whole.rolled_up == daily.rolled_up == D
    assert _files(one.data_dir) == _files(many.data_dir) and _files(one.data_dir)
    assert [p.name for p, _ in whole.skipped] == [p.name for p, _ in daily.skipped] == ["junk-000001.parquet"]


def test_duckdb_gets_the_memory_limit(tmp_path: Path) -> None:
    from queries import connect

    write_history(tmp_path, days=1, n=5)
    with connect(tmp_path, warn=False, memory_limit=300 * 1000**2) as store:
        limit = store.con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert limit is not None and limit[0] in {"286.1 MiB", "300.0 MB"}, limit
