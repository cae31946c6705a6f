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


def test_a_batch_reads_only_the_rollups_event_types(tmp_path: Path) -> None:
    """A batch's store lists and registers the three event types the rollup reads, not the seven
    others (each of a year's batches paid for them); one batch or many, the run reports the same
    skipped files: those of the types it reads."""
    import pytest

    from hive_core.errors import QueryError
    from jobs.rollup.batches import ROLLUP_VIEWS
    from queries import connect, run_sql

    one, many = Settings(data_dir=tmp_path / "one"), Settings(data_dir=tmp_path / "many")
    for settings in (one, many):
        write_history(settings.data_dir, days=len(D), n=20)
        for kind in ("api_call", "selection"):
            partition = settings.data_dir / "events" / kind / f"date={D[1]}"
            partition.mkdir(parents=True, exist_ok=True)
            (partition / "junk-000001.parquet").write_bytes(b"not parquet")
    with connect(one.data_dir, warn=False, views=ROLLUP_VIEWS) as store:
        assert list(store.files) == ["api_call", "usage", "stream_outcome"]
        (calls,) = run_sql(store, "SELECT count(*) FROM api_calls").fetchone()
        assert calls > 0
        with pytest.raises(QueryError):
            run_sql(store, "SELECT count(*) FROM selections")
    with connect(one.data_dir, warn=False) as store:  # every view by default
        assert [p.parent.parent.name for p, _ in store.skipped] == ["api_call", "selection"]
        assert [p.parent.parent.name for p, _ in store.skipped_of(ROLLUP_VIEWS)] == ["api_call"]
    whole = rollup(one, rebuild=True)
    daily = rollup(many, rebuild=True, max_batch_bytes=1)
    assert [str(p.relative_to(one.data_dir)) for p, _ in whole.skipped] == \
        [str(p.relative_to(many.data_dir)) for p, _ in daily.skipped] == [f"events/api_call/date={D[1]}/junk-000001.parquet"]
    assert _files(one.data_dir) == _files(many.data_dir)
