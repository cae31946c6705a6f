"""Readers against a compaction running at the same time, without the store lock.

A child process compacts the store's days over and over (each run rewrites a day into a new file and
deletes the old ones: ``compact(day=D, min_files=1)``) while readers read continuously: the library
(``queries.connect`` + counts, with a pause between the listing and the query) and the CLIs
(``hive-jobs sql``, ``hive-jobs summary``, ``hive-jobs verify --no-repair``). Every read must see every event exactly once, and no
read may fail. Before the fix, readers failed with ``No files found`` / ``FileNotFoundError`` and
could count a compaction's output beside its inputs.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import queries
from hive_core.store.datadir import DataDir
from hive_core.store.events import Usage
from ingest.compact import compact
from ingest.log import EventLog
from tests.cases import T0, api_call

REPO = Path(__file__).resolve().parents[1]
DAYS, FILES_PER_DAY, REQUESTS_PER_FILE = 4, 3, 40
COST = 0.25  # exact in binary: sums compare exactly
READ_SECONDS = 10.0


def _store(data_dir: Path) -> int:
    """Several small files per day of api_call and usage events; returns the number of requests."""
    n = 0
    for d in range(DAYS):
        for f in range(FILES_PER_DAY):
            with EventLog(data_dir, writer=f"w{d}x{f}") as log:
                for _ in range(REQUESTS_PER_FILE):
                    ts = T0 + timedelta(days=d, seconds=n)
                    log.record(api_call(n, ts=ts))
                    log.record(Usage(ts=ts, request_id=f"r{n}", model="openai/gpt-4o", cost_usd=COST,
                                     cost_source="billed", prompt_tokens=10, completion_tokens=5))
                    n += 1
    return n


def _compact_loop(data_dir: Path, seconds: float, runs: object) -> None:
    """Compact the days round-robin until ``seconds`` pass (bounded in count too)."""
    days = [(T0 + timedelta(days=d)).date() for d in range(DAYS)]
    end = time.monotonic() + seconds
    while time.monotonic() < end and runs.value < 100_000:  # type: ignore[attr-defined]
        compact(data_dir, day=days[runs.value % DAYS], min_files=1)  # type: ignore[attr-defined]
        runs.value += 1  # type: ignore[attr-defined]


@pytest.fixture
def compactor(fork_ctx) -> Iterator[Callable[[Path], Callable[[], int]]]:  # type: ignore[no-untyped-def]
    """``start(data_dir)`` starts the compaction loop on ``data_dir`` in a child process and returns
    a function that tells how many compactions it has run so far; the child is stopped at the end."""
    children = []

    def start(data_dir: Path) -> Callable[[], int]:
        runs = fork_ctx.Value("i", 0)
        child = fork_ctx.Process(target=_compact_loop, args=(data_dir, READ_SECONDS + 5, runs))
        child.start()
        children.append(child)
        return lambda: int(runs.value)

    try:
        yield start
    finally:  # whatever the test did, no child outlives it
        for child in children:
            child.terminate()
            child.join(10)
            if child.is_alive():
                child.kill()
                child.join()


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys\nfrom hive_cli.hive_jobs import main\nmain(sys.argv[1:])\n"
    return subprocess.run([sys.executable, "-c", code, "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def _cli_reader(data_dir: Path, args: list[str], expected: re.Pattern[str], end: float, failures: list[str],
                reads: list[str]) -> None:
    while time.monotonic() < end:
        result = _cli(data_dir, *args)
        if result.returncode != 0 or not expected.fullmatch(result.stdout) or result.stderr:
            failures.append(f"{args[0]}: exit {result.returncode}, stdout {result.stdout[-300:]!r}, "
                            f"stderr {result.stderr[-300:]!r}")
        reads.append(args[0])


def test_readers_see_every_event_once_during_compactions(data_dir: Path, compactor) -> None:  # type: ignore[no-untyped-def]
    n = _store(data_dir)
    sql = ["sql", "select count(*) as n, sum(cost_usd) as usd from usage", "--format", "csv"]
    summary = ["summary", "--period", f"{T0.date()}..{(T0 + timedelta(days=DAYS - 1)).date()}"]
    verify = ["verify", "--no-repair"]  # without the store lock: it reads beside the compactions
    baseline = {"sql": _cli(data_dir, *sql), "summary": _cli(data_dir, *summary)}
    for result in baseline.values():
        assert result.returncode == 0 and not result.stderr, result.stderr
    assert baseline["sql"].stdout.splitlines()[-1] == f"{n},{n * COST}"
    expected = {"sql": re.compile(re.escape(baseline["sql"].stdout)),
                "summary": re.compile(re.escape(baseline["summary"].stdout)),
                "verify": re.compile(rf"verified \d+ files, {2 * n:,} events: ok\n")}
    runs = compactor(data_dir)
    end = time.monotonic() + READ_SECONDS
    failures: list[str] = []
    cli_reads: list[str] = []
    threads = [threading.Thread(target=_cli_reader, args=(data_dir, args, expected[args[0]], end, failures, cli_reads))
               for args in (sql, summary, verify)]
    for thread in threads:
        thread.start()
    library_reads = 0
    try:
        while time.monotonic() < end:
            with queries.connect(data_dir, warn=False) as store:
                time.sleep(random.uniform(0, 0.02))  # let a compaction delete what was listed
                calls = queries.run_sql(store, "select count(*), count(distinct request_id) from api_calls").fetchall()
                usage = store.con.sql("select count(*), sum(cost_usd) from usage").fetchall()  # no retry here
            if calls != [(n, n)] or usage != [(n, n * COST)]:
                failures.append(f"library: api_calls {calls}, usage {usage}, expected {n}")
            library_reads += 1
    finally:
        for thread in threads:
            thread.join()
    assert not failures, f"{len(failures)} bad reads of {library_reads + len(cli_reads)}, first: {failures[:3]}"
    assert library_reads >= 3 and len(set(cli_reads)) == 3, (library_reads, cli_reads)
    assert runs() >= 20, f"only {runs()} compactions ran while the readers read"
    assert _on_disk_once(data_dir) == n
    print(f"{runs()} compactions; {library_reads} library reads, {len(cli_reads)} CLI runs "
          f"({', '.join(f'{cli_reads.count(c)} {c}' for c in ('sql', 'summary', 'verify'))}); every count exact")


def _on_disk_once(data_dir: Path) -> int:
    """After the compactions: each event in one file, read with Hive's rules."""
    with queries.connect(data_dir) as store:
        (count,) = queries.run_sql(store, "select count(distinct event_id) from api_calls").fetchone()
    return int(count)


def test_a_stalled_compaction_is_counted_once(data_dir: Path) -> None:
    """The state a compactor leaves when it stalls after its commit: journal, output and inputs all
    present. Readers count the output only, also when they list in the middle of the clean-up."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    n = _store(data_dir)
    partition = next(DataDir(data_dir).event_type("api_call").glob("date=*"))
    inputs = sorted(p.name for p in partition.glob("*.parquet"))
    per_day = sum(pq.read_metadata(partition / name).num_rows for name in inputs)
    (partition / ".compact-out-000001.json").write_text(json.dumps({"output": "out-000001.parquet", "inputs": inputs}))
    pq.write_table(pa.concat_tables([pq.read_table(partition / name) for name in inputs]), partition / "out-000001.parquet")
    for name in inputs:  # the clean-up, one deletion at a time: every intermediate state reads right
        with queries.connect(data_dir) as store:
            assert queries.run_sql(store, "select count(*) from api_calls").fetchone() == (n,)
        os.unlink(partition / name)
    assert per_day == FILES_PER_DAY * REQUESTS_PER_FILE
