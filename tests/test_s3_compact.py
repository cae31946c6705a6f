"""Compaction and verify on a real S3-compatible server (moto, tests/plugins/s3.py): the local
store's protocol tests (tests/test_compact.py, tests/test_readers_during_compaction.py) on objects,
including kill -9 and two concurrent compactions (fewer trials than locally: each is slower)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hive_core.store.conditional import create_object, head_version
from hive_core.store.datadir import DataDir
from hive_core.store.objects import as_object
from ingest import compact, verify
from ingest.compact import recover_partition
from ingest.compact_remote import partition_journal
from tests.cases import T0, api_call
from tests.plugins.env import REPO
from tests.plugins.objstore import (
    COMPACT,
    COMPACT_DAYS,
    data_root,
    journals,
    objects,
    partition,
    plain_rows,
    read_ids,
    small_files,
)

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_compact_then_verify_on_s3(s3_root: str) -> None:
    root = data_root(s3_root)
    n = small_files(root)
    assert compact(root, now=NOW).partitions == 0  # just written, on the server's clock: not closed yet
    report = compact(root, day=COMPACT_DAYS[0])
    report2 = compact(root, day=COMPACT_DAYS[1])
    assert (report.partitions + report2.partitions, report.files_in + report2.files_in, report.events + report2.events,
            report.skipped + report2.skipped) == (2, 6, n, [])
    for day in COMPACT_DAYS:
        (name,) = objects(partition(root, day))  # one object a day: no journal, no input left
        with (partition(root, day) / name).open_input() as source:
            ts = pq.read_table(source).column("ts").to_pylist()
        assert ts == sorted(ts)
    assert read_ids(root, warn=False) == Counter(f"r{i}" for i in range(n))
    assert plain_rows(root) == n
    checked = verify(root)
    assert (checked.ok, checked.files, checked.events, checked.repaired) == (True, 2, n, [])
    assert compact(root, day=COMPACT_DAYS[0]).partitions == 0  # nothing left to merge


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "hive-jobs"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180)


def test_compact_then_verify_on_s3_cli(s3_root: str, s3_env: dict[str, str], tmp_path: Path) -> None:
    n = small_files(data_root(s3_root))
    done = _cli(tmp_path, "--data-dir", s3_root, "compact", "--date", COMPACT_DAYS[0].isoformat())
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"compacted 1 partitions: 3 files -> 1, {n // 2:,} events\n"
    done = _cli(tmp_path, "--data-dir", s3_root, "verify")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"verified 4 files, {n:,} events: ok\n", "")
    missing = _cli(tmp_path, "--data-dir", "s3://hive-no-such-bucket/data", "compact")
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    for result in (done, missing):
        assert s3_env["AWS_SECRET_ACCESS_KEY"] not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing local: no "s3:" directory


def _damage() -> dict[str, bytes]:
    """Foreign and broken entries of a store: relative path -> content."""
    import io

    import pyarrow as pa

    from hive_core.store.events import ApiCall, arrow_schema

    def parquet(table: pa.Table) -> bytes:
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()

    day = f"events/api_call/date={COMPACT_DAYS[0].isoformat()}"
    good = parquet(pa.Table.from_pylist([api_call(i, ts=T0).model_dump() for i in range(5)], schema=arrow_schema(ApiCall)))
    late = pa.Table.from_pylist([api_call(900 + i, ts=T0 + timedelta(days=3)).model_dump() for i in range(2)],
                                schema=arrow_schema(ApiCall))
    return {f"{day}/good-000001.parquet": good,
              f"{day}/copy-000001.parquet": good,  # a copy under a writer's name: duplicate event ids
              f"{day}/copy of good-000001.parquet": good,  # a stray
              f"{day}/junk-000001.parquet": b"this is not parquet at all",
              f"{day}/foreign-000001.parquet": parquet(pa.table({"x": [1, 2]})),
              f"{day}/late-000001.parquet": parquet(late.cast(late.schema.set(late.schema.get_field_index("ts"),
                                                                              pa.field("ts", pa.timestamp("ns"))))),
              "events/api_call/loose-000001.parquet": good,
              "events/nonsense/x.parquet": good}


def _relative(report: object, base: str) -> list[tuple[str, str]]:
    return sorted((p.path.replace(base, "<root>"), p.message.replace(base, "<root>")) for p in report.problems)  # type: ignore[attr-defined]


def test_verify_reports_corrupt_and_foreign_objects_as_locally(s3_root: str, data_dir: Path) -> None:
    root = data_root(s3_root)
    for name, data in _damage().items():  # the same bytes in both stores
        (data_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / name).write_bytes(data)
        (as_object(root) / name).write_bytes(data)
    local, remote = verify(data_dir), verify(root)
    assert _relative(remote, str(root)) == _relative(local, str(data_dir))
    assert (remote.files, remote.events, remote.quarantined) == (local.files, local.events, local.quarantined)
    assert not remote.ok and remote.quarantined == 2
    messages = " | ".join(p.message for p in remote.problems)
    for expected in ("not a Parquet file", "missing columns", "stray", "occurs 2 times", "quarantined",
                     "outside a date=", "not an event type directory"):
        assert expected in messages
    assert compact(root, day=COMPACT_DAYS[0]).partitions == 1  # corrupt, foreign and quarantined objects left as they are
    assert (as_object(root) / f"events/api_call/date={COMPACT_DAYS[0].isoformat()}/junk-000001.parquet").exists()


def test_recover_rolls_a_committed_compaction_forward_and_an_uncommitted_one_back(s3_root: str) -> None:
    root = data_root(s3_root)
    n = small_files(root, files_per_day=2)
    where = DataDir(root).partition("api_call", COMPACT_DAYS[0])  # typed a Path, as the library takes it
    partition = as_object(where)
    inputs = objects(partition)
    journal = partition_journal(where)
    journal.write_text(json.dumps({"output": "missing-000001.parquet", "inputs": inputs}))
    assert "rolled back" in recover_partition(where)[0]
    fence = head_version(partition / "missing-000001.parquet")
    assert fence is not None and fence.tombstone  # a late PUT of the output can no longer land
    assert create_object(partition / "missing-000001.parquet", b"PAR1 late") is None
    assert read_ids(root, warn=False) == Counter(f"r{i}" for i in range(n))  # the tombstone is no data, no stray
    assert verify(root, repair=False).problems == []
    with (partition / inputs[0]).open_input() as a, (partition / inputs[1]).open_input() as b:
        import pyarrow as pa

        merged = pa.concat_tables([pq.read_table(a), pq.read_table(b)])
    journal.write_text(json.dumps({"output": "out-000001.parquet", "inputs": inputs}))
    sink = pa.BufferOutputStream()
    pq.write_table(merged, sink)
    (partition / "out-000001.parquet").write_bytes(sink.getvalue().to_pybytes())
    for name in inputs:  # a stalled clean-up, one deletion at a time: every state reads right
        assert read_ids(root, warn=False) == Counter(f"r{i}" for i in range(n))
        (partition / name).unlink()
    journal.write_text(json.dumps({"output": "out-000001.parquet", "inputs": inputs}))
    assert "rolled forward" in recover_partition(where)[0]
    assert objects(partition) == ["missing-000001.parquet", "out-000001.parquet"]  # the fresh tombstone stays
    assert read_ids(root, warn=False) == Counter(f"r{i}" for i in range(n))


@pytest.mark.slow
def test_kill_9_compaction_loses_and_duplicates_nothing_on_s3(s3_server: object, s3_env: dict[str, str]) -> None:
    days = [d.isoformat() for d in COMPACT_DAYS]
    probe = data_root(f"s3://{s3_server.create_bucket()}/data")  # type: ignore[attr-defined]
    small_files(probe)
    done = subprocess.run([sys.executable, "-c", COMPACT, str(probe), *days], cwd=REPO, timeout=300,
                          capture_output=True, text=True)
    duration = float(done.stdout.split()[-1])  # the compactions alone, imports done
    interrupted = 0
    for trial in range(10):
        root = data_root(f"s3://{s3_server.create_bucket()}/data")  # type: ignore[attr-defined]
        n = small_files(root)
        expected = Counter(f"r{i}" for i in range(n))
        child = subprocess.Popen([sys.executable, "-c", COMPACT, str(root), *days], cwd=REPO,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(random.uniform(0, duration))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        interrupted += bool(journals(root)) or len({len(objects(partition(root, d))) for d in COMPACT_DAYS}) > 1
        assert read_ids(root, warn=False) == expected, f"trial {trial}: readers saw a loss or a duplicate"
        left = verify(root, repair=False)
        assert (left.problems, left.events) == ([], n), f"trial {trial}: {left.problems}"
        for day in COMPACT_DAYS:  # the next run repairs whatever the killed one left
            compact(root, day=day)
        assert read_ids(root, warn=False) == expected
        assert plain_rows(root) == n, f"trial {trial}: plain readers disagree after repair"
        assert journals(root) == []
    print(f"{interrupted} of 10 kills landed mid-compaction")
    assert interrupted >= 1, f"only {interrupted} of 10 kills landed mid-compaction"


#: compacts one day over and over (a single file too: min_files=1), for argv[3] seconds
_LOOP = """
import sys, time
from collections import Counter
from datetime import date
from hive_core.settings import Settings
from ingest import compact
root = Settings.from_env({}, data_dir=sys.argv[1]).data_dir
day, end, outcomes = date.fromisoformat(sys.argv[2]), time.monotonic() + float(sys.argv[3]), Counter()
while time.monotonic() < end:
    report = compact(root, day=day, min_files=1)
    outcomes["won"] += report.partitions
    outcomes.update(reason.split(":")[0] for _path, reason in report.skipped)
    outcomes.update(line.split(": ")[-1].split(" (")[0] for line in report.repaired)
print(dict(outcomes), flush=True)
"""


@pytest.mark.slow
def test_two_concurrent_compactions_cannot_both_win(s3_root: str) -> None:
    root = data_root(s3_root)
    n = small_files(root)
    expected = Counter(f"r{i}" for i in range(n))
    procs = [subprocess.Popen([sys.executable, "-c", _LOOP, s3_root, COMPACT_DAYS[0].isoformat(), "12"], cwd=REPO,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    reads, bad = 0, []
    while any(p.poll() is None for p in procs):
        seen = read_ids(root, warn=False)
        reads += 1
        if seen != expected:
            bad.append(sorted((seen - expected) + (expected - seen))[:5])
    outcomes = [json.loads(p.communicate()[0].replace("'", '"')) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert not bad, f"{len(bad)} of {reads} reads saw a loss or a duplicate: {bad[:3]}"
    assert all(o.get("won", 0) >= 1 for o in outcomes), outcomes
    contended = sum(v for o in outcomes for k, v in o.items() if k != "won")
    print(f"{reads} reads exact; outcomes {outcomes}")
    assert contended >= 1, f"the two compactions never met: {outcomes}"
    compact(root, day=COMPACT_DAYS[0])
    assert read_ids(root, warn=False) == expected and plain_rows(root) == n
    checked = verify(root)
    assert (checked.problems, checked.events) == ([], n)
