"""The object-store trials, written once for every backend: the S3 suite (moto, tests/test_s3_*.py)
and the Azure one (Azurite, tests/test_az_store.py) run the same child scripts and read the store
back with the same helpers, each with its own number of trials.

The child scripts (run with ``python -c SCRIPT <data dir url> ...``): :data:`WRITER` records events
for ever, :data:`COUNTER` increments a counter under the job lock, :data:`HOLD` holds a lock object,
:data:`COMPACT` compacts days, :data:`ROLLUP` rebuilds the rollup one day per batch. The trials that
kill one of them at a random instant are :func:`killed_writer_trial`, :func:`held_lock_trial` and
:func:`killed_rollup_trial`; ``rollup_reference`` (a fixture) is what a local rollup of the same
history writes, to compare a store's files with.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hive_core.settings import Settings
from hive_core.store.objects import ObjectPath
from tests.cases import DAY0, T0, api_call, write_history
from tests.plugins.env import REPO

__all__ = ["AS_OF", "COMPACT", "COMPACT_DAYS", "COUNTER", "HOLD", "ROLLUP", "ROLLUP_DAYS", "WRITER", "data_root", "held_lock_trial",
           "journals", "killed_rollup_trial", "killed_writer_trial", "local_files", "lock_holder", "object_files",
           "objects", "partition", "plain_rows", "read_ids", "rollup_reference", "rollup_settings", "small_files"]

def data_root(url: str) -> Path:
    """The data directory of ``url`` as the settings hand it out (an ``ObjectPath`` typed a ``Path``)."""
    return Settings.from_env({}, data_dir=url).data_dir


def read_ids(root: Path, *, warn: bool = True) -> Counter[str]:
    """Every request_id as Hive's readers see it (DuckDB over the listing's pyarrow datasets)."""
    import queries

    with queries.connect(root, warn=warn) as store:
        return Counter(r for (r,) in store.execute("SELECT request_id FROM api_calls").fetchall())


# -- the event log --------------------------------------------------------------------------------

#: a writer that records events for ever (or argv[3] of them), printing how many were flushed each time flush() returned
WRITER = """
import sys
from datetime import UTC, datetime, timedelta
from hive_core.settings import Settings
from ingest import EventLog
from tests.cases import api_call
root = Settings.from_env({}, data_dir=sys.argv[1]).data_dir
count, limit = 0, int(sys.argv[3])
with EventLog(root, max_events=10**9, max_age_s=3600, writer=sys.argv[2]) as log:
    while limit == 0 or count < limit:
        for _ in range(7):
            log.record(api_call(count, ts=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=count),
                                request_id=f"{sys.argv[2]}-{count}"))
            count += 1
        log.flush()
        print(count, flush=True)
"""


def killed_writer_trial(url: str, writer: str, within: tuple[float, float]) -> None:
    """A :data:`WRITER` killed with SIGKILL at a random instant ``within`` seconds (after its first
    flush at the earliest) left no torn object, and every flush that returned is there, once."""
    from hive_core.store.event_files import list_event_files

    proc = subprocess.Popen([sys.executable, "-c", WRITER, url, writer, "0"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    flushed = 0
    deadline = time.monotonic() + random.uniform(*within)
    while time.monotonic() < deadline or flushed == 0:
        flushed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert list_event_files(data_root(url), "api_call").skipped == []  # each PUT is whole or absent
    ids = read_ids(data_root(url))
    assert set(ids.values()) <= {1} and ids.total() >= flushed


# -- the job lock ---------------------------------------------------------------------------------

#: N processes increment a counter object read-modify-write under the lock: lost updates show a race
COUNTER = """
import sys
from hive_core.settings import Settings
from hive_core.store.lock import job_lock
datadir = Settings.from_env({}, data_dir=sys.argv[1]).datadir
counter = datadir.state / "counter"
for _ in range(int(sys.argv[2])):
    with job_lock(datadir, "rollup", timeout_s=120):
        value = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(value + 1))
"""

#: holds the lock object argv[1] (lease argv[2] s, renewed) until killed
HOLD = """
import sys, time
from hive_core.store.conditional import object_lock
from hive_core.store.objects import parse_url
with object_lock(parse_url(sys.argv[1]), timeout_s=30, lease_s=float(sys.argv[2])):
    print("held", flush=True)
    time.sleep(600)
"""


@contextmanager
def lock_holder(lock: ObjectPath, lease_s: float) -> Iterator[subprocess.Popen[str]]:
    """A :data:`HOLD` process that holds ``lock`` (it has said so); killed at the end if still alive."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), str(lease_s)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def held_lock_trial(lock: ObjectPath) -> None:
    """A lock a live :data:`HOLD` process holds (2 s lease) is refused, also past its lease (the
    holder renews it); once the holder is killed with SIGKILL its lease lapses and the lock is free."""
    from hive_core.errors import LockHeld
    from hive_core.store.conditional import object_lock

    with lock_holder(lock, lease_s=2) as holder:
        with pytest.raises(LockHeld, match="another run holds"), object_lock(lock, timeout_s=0, lease_s=2):
            pass
        time.sleep(3)  # the holder renews every 2/3 s: alive, it keeps the lock past its lease
        with pytest.raises(LockHeld, match="another run holds"), object_lock(lock, timeout_s=0, lease_s=2):
            pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        with object_lock(lock, timeout_s=30, lease_s=2):  # free once the dead holder's lease lapsed
            assert lock.exists()
        assert not lock.exists()  # released


# -- compaction -----------------------------------------------------------------------------------

#: the days :func:`small_files` writes
COMPACT_DAYS = [T0.date(), T0.date() + timedelta(days=1)]

#: compacts the given days of the store in order (a child killed with SIGKILL at a random instant)
COMPACT = """
import sys, time
from datetime import date
import duckdb, numpy, pyarrow.compute, pyarrow.parquet
import hive_core.store.events
from hive_core.settings import Settings
from hive_core.store.conditional import server_now
from hive_core.store.event_files import list_event_files
from ingest import compact
root = Settings.from_env({}, data_dir=sys.argv[1]).data_dir
server_now(root), list_event_files(root, "api_call")  # warm: clients, imports, footer checks
print("ready", flush=True)
started = time.perf_counter()
for day in sys.argv[2:]:
    compact(root, day=date.fromisoformat(day))
print(time.perf_counter() - started, flush=True)
"""


def small_files(root: Path, files_per_day: int = 3, per_file: int = 20) -> int:
    """``files_per_day`` small event files on each of :data:`COMPACT_DAYS`; the number of events."""
    from ingest import EventLog

    n = 0
    for d in range(len(COMPACT_DAYS)):
        for f in range(files_per_day):
            with EventLog(root, writer=f"w{d}x{f}") as log:
                for _ in range(per_file):
                    log.record(api_call(n, ts=T0 + timedelta(days=d, seconds=n)))
                    n += 1
    return n


def plain_rows(root: Path) -> int:
    """Rows of every non-empty ``*.parquet`` object under events/, read by pyarrow without Hive's rules."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from hive_core.store.datadir import DataDir
    from hive_core.store.objects import as_object

    base = as_object(DataDir(root).events)
    infos = base.filesystem.get_file_info(pafs.FileSelector(base.key, recursive=True))
    return sum(pq.read_metadata(i.path, filesystem=base.filesystem).num_rows for i in infos
               if i.type == pafs.FileType.File and i.path.endswith(".parquet") and i.size)


def partition(root: Path, day: date) -> ObjectPath:
    from hive_core.store.datadir import DataDir
    from hive_core.store.objects import as_object

    return as_object(DataDir(root).partition("api_call", day))


def objects(where: ObjectPath) -> list[str]:
    return sorted(p.name for p in where.iterdir())


def journals(root: Path) -> list[str]:
    """The compaction journals left in :data:`COMPACT_DAYS`' partitions."""
    return [p.name for day in COMPACT_DAYS for p in partition(root, day).iterdir() if p.name.startswith(".compact-")]


# -- the rollup -----------------------------------------------------------------------------------

ROLLUP_DAYS = 6
#: the clock of every rollup run: the day after the history (the rankings' window covers it)
AS_OF = datetime(DAY0.year, DAY0.month, DAY0.day, 12, tzinfo=UTC) + timedelta(days=ROLLUP_DAYS)

#: a rollup of one day per batch (many writes to kill it between), as `hive-jobs rollup` runs it
ROLLUP = """
import sys
from hive_core.selection.rankings import load_rankings
from hive_core.settings import Settings
from jobs.pipeline import POST_STEPS
from jobs.rollup.daily import rollup
rollup(Settings.from_env({"HIVE_AS_OF": sys.argv[2]}, data_dir=sys.argv[1]), rebuild=True, max_batch_bytes=1,
       steps=POST_STEPS)
print("done", flush=True)
"""


def rollup_settings(data_dir: str) -> Settings:
    return Settings.from_env({"HIVE_AS_OF": AS_OF.isoformat()}, data_dir=data_dir)


def _ranking_rows(data: bytes) -> list[dict[str, object]]:
    """The ranking table's rows but their ``computed_at`` (the clock moves on between two runs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, object]] = pq.read_table(pa.BufferReader(data)).drop_columns(["computed_at"]).to_pylist()
    return rows


def local_files(root: Path) -> dict[str, object]:
    """Every rollup file under a local data directory (bytes) and the ranking table (rows)."""
    files: dict[str, object] = {str(p.relative_to(root)): p.read_bytes()
                                for p in sorted((root / "rollups").rglob("*.parquet"))}
    files["rankings"] = _ranking_rows((root / "rankings" / "rankings.parquet").read_bytes())
    return files


def object_files(root: object) -> dict[str, object]:
    """The same, of a data directory in object storage (one recursive LIST, then one GET each)."""
    from hive_core.store.objects import as_object

    remote = as_object(root)
    names = sorted(obj.key[len(remote.key) + 1:] for obj, _size in remote.walk())
    files: dict[str, object] = {n: (remote / n).read_bytes()
                                for n in names if n.startswith("rollups/") and n.endswith(".parquet")}
    if "rankings/rankings.parquet" in names:
        files["rankings"] = _ranking_rows((remote / "rankings" / "rankings.parquet").read_bytes())
    return files


@pytest.fixture
def rollup_reference(tmp_path: Path) -> dict[str, object]:
    """The files a local rollup writes for ``write_history`` of :data:`ROLLUP_DAYS` days (in ``tmp_path/local``)."""
    from jobs.pipeline import rollup

    settings = rollup_settings(str(tmp_path / "local"))
    write_history(settings.data_dir, days=ROLLUP_DAYS, n=20)
    rollup(settings)
    return local_files(settings.data_dir)


def killed_rollup_trial(url: str, reference: dict[str, object], within_s: float) -> None:
    """A :data:`ROLLUP` rebuild killed with SIGKILL at a random instant ``within_s`` seconds after it
    took its lock (mid-run, never after it): the lock stays held until its lease lapses, and the next
    ordinary run finishes the job, ending with ``reference``'s files."""
    from hive_core.errors import LockHeld
    from hive_core.store.conditional import object_lock
    from hive_core.store.objects import as_object
    from jobs.pipeline import rollup

    settings = rollup_settings(url)
    lock = as_object(settings.datadir.lock("rollup"))
    proc = subprocess.Popen([sys.executable, "-c", ROLLUP, url, AS_OF.isoformat()], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not lock.exists():  # it holds the lock: the run has begun
        assert proc.poll() is None and time.monotonic() < deadline, "the rollup never took its lock"
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, within_s))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert proc.stdout is not None and proc.stdout.read() == ""  # killed mid-run, not after it
    proc.stdout.close()

    # the dead run's lock lapses after its lease (shortened here: the lease itself is test_s3_lock's)
    with pytest.raises(LockHeld):
        rollup(settings, lock_timeout_s=0)
    with object_lock(lock, timeout_s=60, lease_s=1):
        pass
    rollup(settings)  # an ordinary run finishes what the killed one began
    assert object_files(settings.data_dir) == reference
    assert rollup(settings).rolled_up == []
