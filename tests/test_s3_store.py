"""The event log and its readers on a real S3-compatible server (moto, tests/plugins/s3.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import queries
from hive_core.settings import Settings
from hive_core.store.event_files import list_event_files
from ingest import EventLog
from tests.cases import api_call
from tests.plugins.env import REPO
from tests.plugins.objstore import WRITER, data_root, killed_writer_trial, read_ids

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_event_log_writes_objects_that_sql_reads(s3_root: str, tmp_path: Path) -> None:
    root = Settings.from_env({}, data_dir=s3_root).data_dir
    with EventLog(root, max_events=10**9, max_age_s=3600, writer="w1") as log:
        for i in range(25):
            log.record(api_call(i, ts=T0 + timedelta(minutes=i)))
            if i % 10 == 9:
                log.flush()  # one object per flush (a size flush's batch depends on its thread's timing)
    listing = list_event_files(root, "api_call")
    assert [p.name for p in listing.files] == ["w1-000001.parquet", "w1-000002.parquet", "w1-000003.parquet"]
    with queries.connect(root) as store:
        assert store.execute("SELECT count(*) FROM api_calls").fetchone() == (25,)
    assert not list(tmp_path.iterdir())


def test_a_listing_of_some_days_reads_only_their_partitions(s3_root: str) -> None:
    root = Settings.from_env({}, data_dir=s3_root).data_dir
    with EventLog(root, max_events=10**9, max_age_s=3600, writer="w1") as log:
        for day in range(4):  # one file per day
            for i in range(10):
                log.record(api_call(day * 10 + i, ts=T0 + timedelta(days=day, minutes=i)))
            log.flush()
    whole = list_event_files(root, "api_call")
    some = list_event_files(root, "api_call", days=(T0.date() + timedelta(days=1), T0.date() + timedelta(days=2)))
    assert len(whole.files) == 4
    assert some.files == whole.files[1:3] and set(some.stats) == set(whole.files[1:3])


def test_concurrent_writers_lose_and_repeat_nothing(s3_root: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, s3_root, f"w{i}", "70"], cwd=REPO) for i in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    ids = read_ids(data_root(s3_root))
    assert set(ids.values()) == {1} and ids.total() == 3 * 70


@pytest.mark.parametrize("trial", range(3))
def test_a_writer_killed_at_any_instant_leaves_whole_objects_only(s3_root: str, trial: int) -> None:
    killed_writer_trial(s3_root, f"k{trial}", within=(0.5, 2.0))


def test_a_command_not_taught_object_storage_refuses_in_one_line(s3_root: str, s3_env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    env = {**os.environ, "HIVE_DATA_DIR": s3_root}
    for args in (["hive", "budget", "set", "--daily", "5"], ["hive-jobs", "rebuild-ledger"]):
        done = subprocess.run([str(Path(sys.executable).parent / args[0]), *args[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, (args, done.stderr)
        assert "object storage" in done.stderr and len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
        assert s3_env["AWS_SECRET_ACCESS_KEY"] not in done.stderr + done.stdout
        if args[1] == "rebuild-ledger":  # the ledger has a home for a bucket: say which
            assert "set HIVE_LEDGER_URL" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_hive_jobs_sql_reads_the_bucket(s3_root: str, tmp_path: Path) -> None:
    root = Settings.from_env({}, data_dir=s3_root).data_dir
    with EventLog(root, writer="w1") as log:
        for i in range(5):
            log.record(api_call(i, ts=T0 + timedelta(minutes=i)))
    done = subprocess.run([str(Path(sys.executable).parent / "hive-jobs"), "--data-dir", s3_root, "sql",
                           "SELECT count(*) AS n FROM api_calls", "--format", "json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"n": 5' in done.stdout.replace('"n":5', '"n": 5')
    assert list(tmp_path.iterdir()) == []


def test_spilled_events_go_back_into_the_bucket_exactly_once(s3_root: str, tmp_path: Path) -> None:
    import pyarrow as pa

    from hive_core.store.events import arrow_schema
    from ingest.files import write_atomic
    from ingest.spill import import_spills, pending_spills, spill_events

    root, roots = Settings.from_env({}, data_dir=s3_root).data_dir, [tmp_path / "spill"]
    parts = []
    for seq in range(3):
        calls = [api_call(seq * 10 + i, ts=T0 + timedelta(days=seq)) for i in range(10)]
        table = pa.Table.from_pylist([e.model_dump() for e in calls], schema=arrow_schema(type(calls[0])))
        parts.append(("api_call", calls[0].ts.date(), f"s1-{seq + 1:06d}.parquet", table))
    spill_events(root, "s1", parts, roots=roots)
    # an import interrupted after writing its first file, before deleting the spilled copy
    (_type, day, name, table) = parts[0]
    write_atomic(table, Settings.from_env({}, data_dir=s3_root).datadir.partition("api_call", day) / name)

    done = import_spills(root, roots=roots)

    assert (done.files, done.events, done.duplicates) == (3, 20, 10)
    assert pending_spills(root, roots=roots) == []
    ids = read_ids(root)
    assert set(ids.values()) == {1} and ids.total() == 30
    assert import_spills(root, roots=roots).files == 0
