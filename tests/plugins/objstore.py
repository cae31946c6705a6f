"""The object-store trials, written once for every backend: the S3 suite (moto, tests/test_s3_*.py),
the Azure one (Azurite, tests/test_az_store.py) and the GCS one (Google's storage-testbench,
tests/test_gs_store.py) run the same child scripts and read the store back with the same helpers,
each with its own number of trials; the Azure and GCS suites run the same whole trials (the last
section), the S3 suite fuller versions of each.

The child scripts (run with ``python -c SCRIPT <data dir url> ...``): :data:`WRITER` records events
for ever, :data:`COUNTER` increments a counter under the job lock, :data:`HOLD` holds a lock object,
:data:`COMPACT` compacts days, :data:`ROLLUP` rebuilds the rollup one day per batch and kills itself
at a chosen write. The trials that kill one of them at a random instant or write are
:func:`killed_writer_trial`, :func:`held_lock_trial` and :func:`killed_rollup_trial`;
``rollup_reference`` (a fixture) is what a local rollup of the same history writes, to compare a
store's files with.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hive_core.settings import Settings
from hive_core.store.objects import ObjectPath
from tests.cases import DAY0, T0, api_call, write_history
from tests.plugins.env import REPO

__all__ = ["AS_OF", "COMPACT", "COMPACT_DAYS", "COUNTER", "HOLD", "ROLLUP", "ROLLUP_DAYS", "ROLLUP_WRITES", "WRITER", "compact_verify_cli_trial",
           "conditional_primitives_trial", "counter_lock_trial", "cut_upload_trial", "data_root", "event_log_trial", "held_lock_trial",
           "journals", "killed_compaction_trial", "killed_rollup_trial", "killed_writer_trial", "local_files",
           "lock_holder", "lost_answer_lock_trial", "object_files", "objects", "partition", "plain_rows", "prune_trial", "read_ids",
           "reports_trial", "rollup_reference", "rollup_settings", "rollup_trial", "small_files"]

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

#: a rollup of one day per batch, as `hive-jobs rollup` runs it, that kills itself with SIGKILL at its
#: argv[3]-th write to the store (a PUT or DELETE; the 1st takes the lock), just before it is sent
#: (argv[4] "before") or at a random instant while it is sent or just after (argv[4] "during": the write
#: then waits for the kill, so the run never goes past it)
ROLLUP = """
import os, random, signal, sys, threading, time
from hive_core.selection.rankings import load_rankings
from hive_core.settings import Settings
from hive_core.store.backends import backend
from jobs.pipeline import POST_STEPS
from jobs.rollup.daily import rollup
settings = Settings.from_env({"HIVE_AS_OF": sys.argv[2]}, data_dir=sys.argv[1])
store, kill_at, phase, writes = type(backend(settings.data_dir.scheme)), int(sys.argv[3]), sys.argv[4], 0

def killing(write):
    def counted(*args, **kwargs):
        global writes
        writes += 1
        if writes != kill_at:
            return write(*args, **kwargs)
        if phase == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        threading.Timer(random.uniform(0.0, 0.05), os.kill, (os.getpid(), signal.SIGKILL)).start()
        try:
            write(*args, **kwargs)
        finally:
            time.sleep(60)  # a write that fails dies here too, before anything else runs
    return counted

store.put, store.delete = killing(store.put), killing(store.delete)
rollup(settings, rebuild=True, max_batch_bytes=1, steps=POST_STEPS)
print("done", writes, flush=True)
"""

#: the writes of a :data:`ROLLUP` run: the lock, a file per day, the month's two, the state, the
#: ranking table, the lock's release (a run of over 20 s would add the lock's renewal: runs take ~1 s)
ROLLUP_WRITES = 1 + ROLLUP_DAYS + 2 + 1 + 1 + 1


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


def killed_rollup_trial(url: str, reference: dict[str, object]) -> None:
    """A :data:`ROLLUP` rebuild killed with SIGKILL at a random one of its writes after it took its lock
    (before it is sent, while it is sent or just after; never the lock's release, so mid-run, never
    after it): the lock stays held until its lease lapses, and the next ordinary run finishes the job,
    ending with ``reference``'s files. (Killing at a write, not at a random time, keeps a fast machine
    from finishing the run first.)"""
    from hive_core.errors import LockHeld
    from hive_core.store.conditional import object_lock
    from hive_core.store.objects import as_object
    from jobs.pipeline import rollup

    settings = rollup_settings(url)
    lock = as_object(settings.datadir.lock("rollup"))
    kill_at, phase = random.randint(2, ROLLUP_WRITES - 1), random.choice(["before", "during"])
    with subprocess.Popen([sys.executable, "-c", ROLLUP, url, AS_OF.isoformat(), str(kill_at), phase], cwd=REPO,
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert (proc.returncode, out) == (-signal.SIGKILL, ""), (
        f"the rollup was to die at write {kill_at} of {ROLLUP_WRITES} ({phase}); ROLLUP_WRITES is out of date?")
    assert lock.exists()

    # the dead run's lock lapses after its lease (shortened here: the lease itself is test_s3_lock's)
    with pytest.raises(LockHeld):
        rollup(settings, lock_timeout_s=0)
    with object_lock(lock, timeout_s=60, lease_s=1):
        pass
    rollup(settings)  # an ordinary run finishes what the killed one began
    assert object_files(settings.data_dir) == reference
    assert rollup(settings).rolled_up == []


# -- whole trials the Azure and GCS suites both run (the S3 suite has fuller versions of each) ---------

def event_log_trial(url: str, cwd: Path) -> None:
    """One writer's flushes are objects whose events SQL reads; three writer processes at once lose
    and duplicate nothing; nothing is written locally (``cwd`` stays empty: no folder named ``az:``)."""
    from hive_core.store.event_files import list_event_files
    from ingest import EventLog

    root = data_root(url)
    with EventLog(root, max_events=10**9, max_age_s=3600, writer="w1") as log:
        for i in range(25):
            log.record(api_call(i, ts=T0 + timedelta(minutes=i)))
            if i % 10 == 9:
                log.flush()  # one object per flush (a size flush's batch depends on its thread's timing)
    assert [p.name for p in list_event_files(root, "api_call").files] == [
        "w1-000001.parquet", "w1-000002.parquet", "w1-000003.parquet"]
    assert read_ids(root).total() == 25
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, f"w{i + 2}", "35"], cwd=REPO) for i in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    ids = read_ids(root)
    assert set(ids.values()) == {1} and ids.total() == 25 + 3 * 35
    assert not list(cwd.iterdir())


def conditional_primitives_trial(url: str) -> None:
    """Create-if-absent, read and head of one version, delete only that version, the tombstone that
    fences a late writer; ages and "now" on the server's clock; an object name with spaces and
    non-ASCII characters."""
    import os

    from hive_core.store.conditional import (
        create_object,
        delete_if_match,
        head_version,
        put_tombstone,
        read_version,
        server_now,
    )
    from hive_core.store.objects import as_object

    base = as_object(data_root(url))
    journal = base / "state" / "journal.json"
    first = create_object(journal, b"first")
    assert first is not None and create_object(journal, b"second") is None  # If-None-Match: *
    got = read_version(journal)
    assert got is not None and got[0] == b"first" and got[1].etag == first and not got[1].tombstone
    head = head_version(journal)
    assert head is not None and (head.etag, head.size, head.tombstone) == (first, 5, False)
    # ages and "now" are the server's clock, whatever this host's says (HIVE_TEST_NOW moves ours, not the server's)
    real_now = time.time() - float(os.environ.get("PYTEST_CLOCK_SHIFT_S", "0"))
    assert abs(head.age_s) < 5 and abs(server_now(journal) - real_now) < 5
    journal.write_bytes(b"rewritten")  # another writer replaced it: the version read is stale
    assert not delete_if_match(journal, first)
    assert journal.read_bytes() == b"rewritten"
    current = head_version(journal)
    assert current is not None and current.etag != first
    assert delete_if_match(journal, current.etag) and not journal.exists()
    assert not delete_if_match(journal, current.etag) and head_version(journal) is None and read_version(journal) is None
    fence = base / "events" / "out-000001.parquet"
    assert put_tombstone(fence) and not put_tombstone(fence)
    marked = head_version(fence)
    assert marked is not None and marked.tombstone and marked.size == 0
    assert create_object(fence, b"PAR1 late") is None  # the tombstone fences a late writer
    odd = base / "state" / "a name with spaces, ü & #.json"  # one path segment, encoded in each request
    assert create_object(odd, b"x") is not None and odd.read_bytes() == b"x"
    assert [p.name for p in (base / "state").iterdir()] == [odd.name]


def counter_lock_trial(url: str) -> None:
    """Three processes under the job lock never interleave (no lost update); the lock is released,
    and a killed holder's lease lapses (:func:`held_lock_trial`)."""
    from hive_core.store.objects import as_object

    procs = [subprocess.Popen([sys.executable, "-c", COUNTER, url, "3"], cwd=REPO) for _ in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    datadir = Settings.from_env({}, data_dir=url).datadir
    assert (datadir.state / "counter").read_text() == "9"
    lock = as_object(datadir.lock("rollup"))
    assert not lock.exists()  # released
    held_lock_trial(lock)


def compact_verify_cli_trial(url: str, missing_url: str, cwd: Path, secrets: tuple[str, ...] = ()) -> None:
    """``hive-jobs compact`` and ``verify`` through the CLI; a store that does not exist (``missing_url``)
    is one line that names it, with none of ``secrets``; nothing is written in ``cwd``."""
    from tests.plugins.cli import BIN

    n = small_files(data_root(url))
    jobs = [str(BIN / "hive-jobs"), "--data-dir", url]
    done = subprocess.run([*jobs, "compact", "--date", COMPACT_DAYS[0].isoformat()], cwd=cwd,
                          capture_output=True, text=True, timeout=180)
    assert (done.returncode, done.stdout) == (0, f"compacted 1 partitions: 3 files -> 1, {n // 2:,} events\n"), done.stderr
    done = subprocess.run([*jobs, "verify"], cwd=cwd, capture_output=True, text=True, timeout=180)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"verified 4 files, {n:,} events: ok\n", "")
    missing = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", missing_url, "compact"],
                             cwd=cwd, capture_output=True, text=True, timeout=180)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert missing_url.split("/")[2] in missing.stderr and "Traceback" not in missing.stderr
    assert not any(s in missing.stdout + missing.stderr for s in secrets)
    assert list(cwd.iterdir()) == []


def _killed_mid_compaction(new_url: Callable[[], str], day: int) -> tuple[Path, int]:
    """A store (``new_url()``: an empty one) whose compaction of both days was killed just after the
    journal of ``COMPACT_DAYS[day]`` appeared (a fresh store again when the compaction outran the
    poll), and its number of events."""
    from hive_core.store.objects import as_object

    for _attempt in range(10):  # five in a row outran the poll once, in a full run on a loaded machine
        root = data_root(new_url())
        n = small_files(root)
        watched = as_object(partition(root, COMPACT_DAYS[day]))
        child = subprocess.Popen([sys.executable, "-c", COMPACT, str(root), *(d.isoformat() for d in COMPACT_DAYS)],
                                 cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        while child.poll() is None and not any(p.name.startswith(".compact-") for p in watched.iterdir()):
            pass
        time.sleep(random.uniform(0.0, 0.03))
        with suppress(ProcessLookupError):  # it finished meanwhile: seen below
            os.kill(child.pid, signal.SIGKILL)
        killed = child.wait() == -signal.SIGKILL and child.stdout.read() == ""  # it had not finished
        child.stdout.close()
        if killed:
            return root, n
    raise AssertionError("ten compactions in a row finished before their journal was seen")


def killed_compaction_trial(new_url: Callable[[], str], day: int) -> None:
    """A compaction killed with SIGKILL mid-way through ``COMPACT_DAYS[day]``: readers see no loss and
    no duplicate, verify finds nothing wrong, and the next runs finish or undo what it left."""
    from ingest import compact, verify

    root, n = _killed_mid_compaction(new_url, day)
    expected = Counter(f"r{i}" for i in range(n))
    assert read_ids(root, warn=False) == expected, "readers saw a loss or a duplicate"
    left = verify(root, repair=False)
    assert (left.problems, left.events) == ([], n)
    for each in COMPACT_DAYS:  # the next run repairs whatever the killed one left
        compact(root, day=each)
    assert read_ids(root, warn=False) == expected and plain_rows(root) == n and journals(root) == []
    assert verify(root, repair=False).problems == []


def rollup_trial(url: str, reference: dict[str, object]) -> None:
    """A rollup writes the files a local rollup of the same history writes and releases its lock;
    a rebuild killed at a random one of its writes is finished by the next run (:func:`killed_rollup_trial`)."""
    from jobs.pipeline import rollup

    settings = rollup_settings(url)
    write_history(settings.data_dir, days=ROLLUP_DAYS, n=20)
    assert len(rollup(settings).rolled_up) == ROLLUP_DAYS
    assert object_files(settings.data_dir) == reference
    assert not settings.datadir.lock("rollup").exists()  # the store's job lock, released
    killed_rollup_trial(url, reference)


def prune_trial(url: str) -> None:
    """Prune removes the event objects of old days whose rollup exists, never one whose rollup is
    missing, and leaves every rollup as it was."""
    from hive_core.store.objects import as_object
    from jobs.pipeline import rollup
    from jobs.rollup.prune import MIN_KEEP_DAYS, prune

    days = MIN_KEEP_DAYS + 4
    now = AS_OF - timedelta(days=ROLLUP_DAYS) + timedelta(days=days)
    settings = Settings.from_env({"HIVE_AS_OF": now.isoformat()}, data_dir=url)
    data = settings.datadir
    write_history(settings.data_dir, days=days, n=2)
    rollup(settings)
    rollups = {p.key: p.read_bytes() for p, _ in as_object(data.rollups).walk() if p.name.endswith(".parquet")}
    missing = now.date() - timedelta(days=days)  # the first day: its rollup deleted, so it must stay
    gone = as_object(data.rollup_day(missing))
    gone.unlink()

    report = prune(data, keep_days=MIN_KEEP_DAYS, now=now)

    assert [d for d, _ in report.refused] == [missing] and len(report.pruned) == days - MIN_KEEP_DAYS - 1
    for day in report.pruned:
        assert not as_object(data.partition("api_call", day)).walk()
    assert as_object(data.partition("api_call", missing)).walk()
    assert {p.key: p.read_bytes() for p, _ in as_object(data.rollups).walk() if p.name.endswith(".parquet")} == {
        k: v for k, v in rollups.items() if k != gone.key}  # rollups untouched


def reports_trial(url: str, tmp_path: Path, secrets: tuple[str, ...] = ()) -> None:
    """``hive-jobs report --out <url>/shared-reports`` writes into the store the very bytes a local
    report of the same history has, says where, shows none of ``secrets``, and writes nothing locally."""
    from hive_core.settings import location
    from hive_core.store.objects import as_object
    from tests.plugins.cli import BIN

    now = AS_OF  # the day after write_history's days
    settings = Settings.from_env({"HIVE_AS_OF": now.isoformat()}, data_dir=url)
    write_history(settings.data_dir, days=ROLLUP_DAYS, n=20)
    local = Settings.from_env({"HIVE_AS_OF": now.isoformat()}, data_dir=str(tmp_path / "local"))
    write_history(local.data_dir, days=ROLLUP_DAYS, n=20)
    yesterday = (now.date() - timedelta(days=1)).isoformat()
    env = {**os.environ, "HIVE_AS_OF": now.isoformat()}
    work = tmp_path / "cwd"
    work.mkdir()
    written = {}
    for name, data_dir, out in (("store", url, f"{url}/shared-reports"),
                                ("local", local.data_dir, tmp_path / "local-reports")):
        done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", str(data_dir), "report", "--period",
                               "yesterday", "--format", "md", "--out", str(out)], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert not any(s in done.stdout + done.stderr for s in secrets)
        written[name] = done.stderr.strip()
    assert written["store"] == f"{url}/shared-reports/hive-day-{yesterday}.md"
    assert as_object(location(written["store"])).read_bytes() == Path(written["local"]).read_bytes()
    assert list(work.iterdir()) == []  # never a local folder named after the scheme


def lost_answer_lock_trial(url: str, dropped: Callable[[], int], *, renewing: bool) -> None:
    """The store's client, pointed at an :class:`~tests.plugins.proxies.AnswerDroppingProxy` (``dropped``:
    its count of withheld answers) armed for the lock's create (``renewing`` False) or its renewal,
    retries the write whose answer was lost and is refused by the object its first attempt wrote:
    the lock takes that refusal for its own write (before, the taker waited out its own lease as
    'another run holds', and the renewer reported its lock lost at the end of a finished job)."""
    from hive_core.store.conditional import object_lock
    from hive_core.store.objects import as_object

    lock = as_object(Settings.from_env({}, data_dir=url).datadir.lock("rollup"))
    with object_lock(lock, timeout_s=0, lease_s=1.5):
        assert lock.exists()
        time.sleep(1.5 if renewing else 0)  # renewals every 0.5 s
    assert dropped() == 1, "the answer of one conditional write was withheld"
    assert not lock.exists()  # released: the version this holder wrote last was its own


def cut_upload_trial(url: str, server: str, method: bytes, pattern: bytes, use: Callable[[str], None]) -> None:
    """The store's client, pointed (``use``, given the proxy's endpoint) at a
    :class:`~tests.plugins.proxies.BodyCuttingProxy` in front of ``server`` armed for a
    create-if-absent upload (its ``method``, ``pattern`` found in its head), loses its connection
    halfway through the body: the server stores nothing of it, so the client's retry creates the
    object, whole (a server that stored the half it received would refuse the retry as 'already
    there', and an event file, the journal or the lock would be a torn object)."""
    from hive_core.store.conditional import create_object
    from hive_core.store.objects import as_object
    from tests.plugins.proxies import BodyCuttingProxy

    proxy = BodyCuttingProxy(server, method, pattern)
    try:
        use(proxy.endpoint)
        data = random.randbytes(256 * 1024)
        target = as_object(data_root(url)) / "state" / "cut.bin"
        assert create_object(target, data) is not None, "the retry found the cut upload's object"
        assert proxy.cut == 1, "one upload was cut"
        assert target.read_bytes() == data
    finally:
        proxy.close()
