from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hive_core.layout import parse_file_name
from ingest.log import EventLog
from tests.cases import T0, api_call
from tests.plugins.store import glob_count, request_ids


def test_record_and_flush_writes_one_file_per_type_and_date(data_dir: Path) -> None:
    from datetime import timedelta

    with EventLog(data_dir, max_events=1000) as log:
        for i in range(10):
            log.record(api_call(i, ts=T0 + timedelta(days=i % 2)))
        assert log.pending == 10
        assert log.flush() == 10 and log.pending == 0
    files = sorted((data_dir / "events" / "api_call").glob("date=*/*.parquet"))
    assert [f.parent.name for f in files] == ["date=2026-11-20", "date=2026-11-21"]
    assert all(parse_file_name(f.name) is not None for f in files)
    assert sum(pq.read_metadata(f).num_rows for f in files) == 10


def test_flush_on_size(data_dir: Path) -> None:
    with EventLog(data_dir, max_events=100) as log:
        for i in range(250):
            log.record(api_call(i))
        assert log.pending == 50
    assert glob_count(data_dir) == 250


def test_flush_on_age(data_dir: Path) -> None:
    log = EventLog(data_dir, max_age_s=0.1)
    log.record(api_call(1))
    deadline = time.monotonic() + 5
    while glob_count(data_dir) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert glob_count(data_dir) == 1
    log.close()


def test_flush_at_interpreter_exit_and_on_sigterm(data_dir: Path) -> None:
    script = (
        "import sys, time\n"
        "from ingest.log import EventLog\n"
        "from tests.cases import api_call\n"
        "log = EventLog(sys.argv[1], max_events=10**9, max_age_s=3600)\n"
        "for i in range(500): log.record(api_call(i))\n"
        "print('ready', flush=True)\n"
        "if sys.argv[2] == 'wait': time.sleep(60)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    exit_dir, term_dir = data_dir / "exit", data_dir / "term"
    done = subprocess.run([sys.executable, "-c", script, str(exit_dir), "exit"], cwd=repo, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert glob_count(exit_dir) == 500
    child = subprocess.Popen([sys.executable, "-c", script, str(term_dir), "wait"], cwd=repo, stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM
    child.stdout.close()
    assert glob_count(term_dir) == 500


def _write_forever(data_dir: Path, trial: int, report_fd: int) -> None:
    log = EventLog(data_dir, max_events=10**9, max_age_s=3600, writer=f"trial{trial}")
    i = 0
    while True:
        for _ in range(random.randint(1, 400)):
            log.record(api_call(i, request_id=f"t{trial}-{i}"))
            i += 1
        log.flush()
        os.write(report_fd, f"{i}\n".encode())


@pytest.mark.slow
def test_kill_9_writer_loses_and_duplicates_nothing(data_dir: Path, fork_ctx) -> None:  # type: ignore[no-untyped-def]
    durable: dict[int, int] = {}
    for trial in range(50):
        read_fd, write_fd = os.pipe()
        child = fork_ctx.Process(target=_write_forever, args=(data_dir, trial, write_fd))
        child.start()
        os.close(write_fd)
        time.sleep(random.uniform(0.02, 0.25))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        with os.fdopen(read_fd) as reports:
            lines = reports.read().split()
        durable[trial] = int(lines[-1]) if lines else 0
        glob_count(data_dir)  # plain DuckDB over the glob never fails, whatever instant the kill hit
    assert sum(1 for count in durable.values() if count) >= 40, "the writers were killed before writing"
    seen = Counter(request_ids(data_dir))
    assert all(n == 1 for n in seen.values()), "an event was written twice"
    for trial, count in durable.items():
        missing = [i for i in range(count) if seen[f"t{trial}-{i}"] != 1]
        assert not missing, f"trial {trial}: flushed events lost: {missing[:5]}"
    assert glob_count(data_dir) == sum(seen.values())


def _write_n(data_dir: Path, worker: int, n: int) -> None:
    with EventLog(data_dir, max_events=3000) as log:
        for i in range(n):
            log.record(api_call(i, request_id=f"w{worker}-{i}"))


@pytest.mark.slow
def test_eight_concurrent_writers(data_dir: Path, fork_ctx) -> None:  # type: ignore[no-untyped-def]
    workers = [fork_ctx.Process(target=_write_n, args=(data_dir, w, 10_000)) for w in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    ids = request_ids(data_dir)
    assert len(ids) == 80_000 and len(set(ids)) == 80_000
    assert glob_count(data_dir) == 80_000


def test_write_table_validates_against_the_schema(data_dir: Path) -> None:
    import pyarrow as pa

    from hive_core.errors import SchemaMismatch
    from hive_core.events import ApiCall, arrow_schema

    good = pa.Table.from_pylist([api_call(1).model_dump()], schema=arrow_schema(ApiCall))
    with EventLog(data_dir) as log:
        assert log.write_table("api_call", good) == 1
        with pytest.raises(SchemaMismatch, match="missing columns"):
            log.write_table("api_call", good.drop_columns(["event_id"]))
        wrong_type = good.set_column(good.schema.get_field_index("type"), "type", pa.array(["usage"]))
        with pytest.raises(SchemaMismatch, match="another type"):
            log.write_table("api_call", wrong_type)
    assert glob_count(data_dir) == 1


def _record_until_killed(data_dir: Path, report_fd: int) -> None:
    """Record in a tight loop with tiny buffers, so SIGTERM mostly lands inside record()/flush()."""
    log = EventLog(data_dir, max_events=7, max_age_s=3600)
    i = 0
    os.write(report_fd, b"go\n")
    while True:
        log.record(api_call(i, request_id=f"s-{i}"))
        i += 1


@pytest.mark.slow
def test_sigterm_inside_record_or_flush_loses_and_duplicates_nothing(data_dir: Path, fork_ctx) -> None:  # type: ignore[no-untyped-def]
    for trial in range(20):
        target = data_dir / f"t{trial}"
        read_fd, write_fd = os.pipe()
        child = fork_ctx.Process(target=_record_until_killed, args=(target, write_fd))
        child.start()
        os.close(write_fd)
        with os.fdopen(read_fd) as ready:
            assert ready.readline() == "go\n"
        time.sleep(random.uniform(0.01, 0.1))
        os.kill(child.pid, signal.SIGTERM)
        child.join(timeout=30)
        assert child.exitcode == 128 + signal.SIGTERM
        ids = request_ids(target)
        assert len(ids) == len(set(ids)), f"trial {trial}: an event was written twice"
        numbers = sorted(int(i.split("-")[1]) for i in ids)
        assert numbers == list(range(len(numbers))), f"trial {trial}: a buffered event was lost"
