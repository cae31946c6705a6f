from __future__ import annotations

import contextlib
import json
import os
import random
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hive_core.store.atomic import TEMP_GRACE_S
from hive_core.store.events import ApiCall, arrow_schema
from ingest.compact import compact, recover_partition
from ingest.log import EventLog
from tests.cases import T0, api_call
from tests.plugins.store import glob_count, request_ids

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def _small_files(data_dir: Path, days: int = 3, files_per_day: int = 6, per_file: int = 50) -> int:
    n = 0
    for d in range(days):
        for f in range(files_per_day):
            with EventLog(data_dir, writer=f"w{d}x{f}") as log:
                for _ in range(per_file):
                    log.record(api_call(n, ts=T0 + timedelta(days=d, seconds=n)))
                    n += 1
    for path in (data_dir / "events").rglob("*.parquet"):
        age(path, 2 * TEMP_GRACE_S)
    return n


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` old on the filesystem's own clock (never the test's clock)."""
    mtime = path.stat().st_mtime - seconds
    os.utime(path, (mtime, mtime))


def test_compact_merges_closed_days_into_one_sorted_file(data_dir: Path) -> None:
    n = _small_files(data_dir)
    report = compact(data_dir, now=NOW)
    assert (report.partitions, report.files_in, report.files_out, report.events) == (3, 18, 3, n)
    files = sorted((data_dir / "events" / "api_call").glob("date=*/*.parquet"))
    assert len(files) == 3
    ts = pq.read_table(files[0]).column("ts").to_pylist()
    assert ts == sorted(ts)
    assert sorted(request_ids(data_dir)) == sorted(f"r{i}" for i in range(n))
    assert compact(data_dir, now=NOW).partitions == 0  # nothing left to merge


def test_compact_leaves_today_and_recent_files_alone(data_dir: Path) -> None:
    _small_files(data_dir, days=1)
    assert compact(data_dir, now=T0 + timedelta(hours=1)).partitions == 0  # still today
    for path in (data_dir / "events").rglob("*.parquet"):
        os.utime(path)  # written just now (filesystem clock): a late writer may still be adding
    assert compact(data_dir, now=NOW).partitions == 0


def test_compact_reads_older_schema_versions(data_dir: Path) -> None:
    _small_files(data_dir, days=1, files_per_day=1)
    partition = next((data_dir / "events" / "api_call").glob("date=*"))
    old = pa.Table.from_pylist([api_call(999, ts=T0).model_dump()], schema=arrow_schema(ApiCall))
    pq.write_table(old.drop_columns(["generation_id", "fallback_index"]), partition / "old-000001.parquet")
    assert compact(data_dir, day=T0.date()).events == 51
    assert "r999" in request_ids(data_dir)


def test_recover_rolls_a_committed_compaction_forward_and_an_uncommitted_one_back(data_dir: Path) -> None:
    _small_files(data_dir, days=1, files_per_day=2)
    partition = next((data_dir / "events" / "api_call").glob("date=*"))
    inputs = sorted(p.name for p in partition.glob("*.parquet"))
    (partition / ".compact-x.json").write_text(json.dumps({"output": "missing-000001.parquet", "inputs": inputs}))
    assert "rolled back" in recover_partition(partition)[0]
    assert sorted(p.name for p in partition.glob("*.parquet")) == inputs
    merged = pa.concat_tables([pq.read_table(partition / n) for n in inputs])
    pq.write_table(merged, partition / "out-000001.parquet")
    (partition / ".compact-y.json").write_text(json.dumps({"output": "out-000001.parquet", "inputs": inputs}))
    assert len(request_ids(data_dir)) == 100  # readers already skip the superseded inputs
    assert "rolled forward" in recover_partition(partition)[0]
    assert [p.name for p in partition.glob("*.parquet")] == ["out-000001.parquet"]
    assert glob_count(data_dir) == 100


#: the file-system steps of compaction's protocol, counted and killed at: journal and output
#: (temporary file fsynced, renamed, directory fsynced), the inputs' deletion, the journal's
STEPS = ("replace", "unlink", "fsync")


@contextlib.contextmanager
def _counted_steps(at_step: Callable[[int], None]) -> Iterator[None]:
    """Every ``os.replace``, ``os.unlink`` and ``os.fsync`` in this process, numbered from 1:
    ``at_step(n)`` runs just before the n-th, and with ``-n`` just after it."""
    count = [0]
    originals = {name: getattr(os, name) for name in STEPS}

    def counted(name: str) -> Callable[..., object]:
        def step(*args: object, **kwargs: object) -> object:
            count[0] += 1
            n = count[0]
            at_step(n)
            try:
                return originals[name](*args, **kwargs)
            finally:
                at_step(-n)
        return step

    for name in STEPS:
        setattr(os, name, counted(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(os, name, original)


def _compact_in_child(data_dir: Path, kill_at: int) -> None:
    """compact(), SIGKILLed at its ``abs(kill_at)``-th file-system step: just before it (``kill_at``
    > 0) or just after it (< 0), whether it succeeded or raised."""

    def at_step(n: int) -> None:
        if n == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    with _counted_steps(at_step):
        compact(data_dir, now=NOW)


def _mid_protocol(data_dir: Path) -> bool:
    """Whether a killed compaction left work for the repair: a journal, a temp file, or a day
    compacted while another was not."""
    leftovers = list(data_dir.rglob(".compact-*.json")) + list(data_dir.rglob(".*.tmp"))
    per_day = [len(list(p.glob("*.parquet"))) for p in (data_dir / "events" / "api_call").glob("date=*")]
    return bool(leftovers) or (1 in per_day and any(n > 1 for n in per_day))


@pytest.mark.slow
def test_kill_9_compaction_loses_and_duplicates_nothing(tmp_path: Path, fork_ctx) -> None:  # type: ignore[no-untyped-def]
    """A compaction SIGKILLed at any step of its protocol (just before or just after any rename,
    deletion or fsync of a whole run): readers see every event once meanwhile, and the next run
    repairs what it left. Killed at a point of the run, not at a time, so a faster or slower
    machine kills at the same places (a random instant mostly landed before or after the run)."""
    probe = tmp_path / "probe"
    _small_files(probe, days=2, files_per_day=5, per_file=40)
    steps = [0]
    with _counted_steps(lambda n: steps.__setitem__(0, max(steps[0], n))):
        compact(probe, now=NOW)
    assert steps[0] >= 20, f"a whole run takes {steps[0]} file-system steps: fewer than its protocol has"
    interrupted = 0
    for trial in range(50):
        data_dir = tmp_path / f"t{trial}"
        n = _small_files(data_dir, days=2, files_per_day=5, per_file=40)
        kill_at = random.randint(1, steps[0]) * random.choice((1, -1))
        child = fork_ctx.Process(target=_compact_in_child, args=(data_dir, kill_at))
        child.start()
        child.join(timeout=120)
        assert child.exitcode == -signal.SIGKILL, f"trial {trial}: the child was not killed at step {kill_at}"
        interrupted += _mid_protocol(data_dir)
        expected = Counter(f"r{i}" for i in range(n))
        assert Counter(request_ids(data_dir)) == expected, f"trial {trial} (step {kill_at}): readers saw a loss or a duplicate"
        compact(data_dir, now=NOW)  # the next run repairs whatever the killed one left
        assert Counter(request_ids(data_dir)) == expected
        assert glob_count(data_dir) == n, f"trial {trial}: plain readers disagree after repair"
        assert not list(data_dir.rglob(".compact-*.json"))
    print(f"{interrupted} of 50 kills left work for the repair ({steps[0]} steps)")
    assert interrupted >= 25, f"only {interrupted} of 50 kills left work for the repair"


def test_compacted_days_stay_readable_by_date(data_dir: Path) -> None:
    _small_files(data_dir, days=2)
    compact(data_dir, now=NOW)
    import duckdb

    rows = duckdb.sql(
        f"select date, count(*) from read_parquet('{data_dir}/events/api_call/**/*.parquet', hive_partitioning=true) group by 1 order by 1"
    ).fetchall()
    assert [(r[0] if isinstance(r[0], date) else date.fromisoformat(str(r[0])), r[1]) for r in rows] == [
        (date(2026, 11, 20), 300), (date(2026, 11, 21), 300)]


def test_a_stray_entry_is_reported_and_left_while_its_day_is_compacted(data_dir: Path) -> None:
    """A dangling link (an entry that cannot be stat'ed, as a temporary renamed away meanwhile): the
    day is still compacted; the link is reported as a stray and left untouched."""
    n = _small_files(data_dir, days=1)
    partition = next((data_dir / "events" / "api_call").glob("date=*"))
    (partition / "gone").symlink_to(partition / "nowhere")
    report = compact(data_dir, now=NOW)
    assert (report.partitions, report.events) == (1, n)
    assert [(p.name, r) for p, r in report.skipped] == [("gone", "stray: not an event file name (<writer>-<seq>.parquet); never read")]
    assert (partition / "gone").is_symlink()


def test_a_naive_nanosecond_file_is_checked_and_its_bad_rows_left_alone(data_dir: Path) -> None:
    """pandas' default ``ts`` (naive ``timestamp[ns]``): DuckDB reads it as TIMESTAMP_NS, which the row
    rules once compared with a TIMESTAMPTZ and failed on (compaction and verify stopped with an error)."""
    n = _small_files(data_dir, days=1, files_per_day=2)
    partition = next((data_dir / "events" / "api_call").glob("date=*"))
    rows = pa.Table.from_pylist([api_call(900, ts=T0).model_dump(), api_call(901, ts=T0 + timedelta(days=2)).model_dump()],
                                schema=arrow_schema(ApiCall))
    ts = rows.schema.get_field_index("ts")
    pq.write_table(rows.cast(rows.schema.set(ts, pa.field("ts", pa.timestamp("ns")))), partition / "pandas-000001.parquet")
    report = compact(data_dir, day=T0.date())
    assert (report.partitions, report.events) == (1, n)
    assert [(p.name, r) for p, r in report.skipped] == [
        ("pandas-000001.parquet", "1 ts outside its partition's UTC day (quarantined): left as is")]
    import queries

    with queries.connect(data_dir, warn=False) as store:  # the views leave the quarantined row out
        seen = sorted(r for (r,) in store.execute("SELECT request_id FROM api_calls").fetchall())
    assert seen == sorted([f"r{i}" for i in range(n)] + ["r900"])
