from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hive_core.store.layout import parse_file_name
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


class _HeldWrites:
    """``ingest.log.write_atomic`` as it is, but each write waits for :attr:`go` first (and the
    ``fail``-th raises ENOSPC): lets a test hold a flush in the middle of its write. ``writers``
    names the thread of each write."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, fail: int | None = None) -> None:
        import ingest.log

        self.real = ingest.log.write_atomic
        self.writers: list[str] = []
        self.started = threading.Event()
        self.go = threading.Event()
        self.fail = fail
        monkeypatch.setattr(ingest.log, "write_atomic", self)

    def __call__(self, table, path: Path) -> None:  # type: ignore[no-untyped-def]
        self.writers.append(threading.current_thread().name)
        self.started.set()
        assert self.go.wait(60), "the test never let the write go"
        if len(self.writers) == self.fail:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.real(table, path)


def _wait_child(pid: int, timeout: float = 30.0) -> int | str:
    """The child's exit status; a child still running after ``timeout`` is killed: ``"hung"`` (a lock
    held by a thread it does not have?)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"


@pytest.mark.parametrize("writer", [None, "batch"])
def test_a_child_forked_while_the_log_writes_writes_its_own_events_once(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch, writer: str | None) -> None:
    """A library user forks (multiprocessing's default on Linux) while the log's thread is in the
    middle of a write and more events are buffered: the child does not hang on a lock no thread of
    it holds, writes only its own events, under its own writer id; the parent writes the ones it had
    buffered. Every event on disk once."""
    writes = _HeldWrites(monkeypatch)
    with EventLog(data_dir, max_events=10, max_age_s=3600, writer=writer) as log:
        for i in range(10):
            log.record(api_call(i, request_id=f"p{i}"))
        assert writes.started.wait(30), "a full buffer was not flushed"
        for i in range(10, 13):  # buffered in the parent while its write is held
            log.record(api_call(i, request_id=f"p{i}"))
        threading.Timer(0.3, writes.go.set).start()  # the write ends after the fork
        pid = os.fork()
        if pid == 0:  # the child: its own events, then out (never back into pytest)
            code = 1
            try:
                import ingest.log

                ingest.log.write_atomic = writes.real  # the child's writes are not held (the timer is the parent's)
                log.record(api_call(0, request_id="c0"))
                log.record(api_call(1, request_id="c1"))
                log.close()
                code = 0
            finally:
                os._exit(code)
        assert _wait_child(pid) == 0
        log.record(api_call(13, request_id="p13"))
    assert sorted(request_ids(data_dir)) == sorted([f"p{i}" for i in range(14)] + ["c0", "c1"])
    names = [parse_file_name(f.name) for f in (data_dir / "events" / "api_call").glob("*/*.parquet")]
    assert len({name.writer for name in names if name is not None}) == 2  # the parent's and the child's


def test_threads_forking_at_once_each_release_what_they_took(data_dir: Path) -> None:
    """Three threads fork 20 times each, with one log open and recording: no child hangs on a lock
    another thread of the parent held (the log's, the registry's, the event ids'), every child writes
    its own event once, and the parent still records and closes."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave inside the fork hooks
    children: list[int] = []
    lock = threading.Lock()

    def fork_some(t: int) -> None:
        for i in range(20):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    log.record(api_call(0, request_id=f"c{t}-{i}"))
                    log.close()
                    code = 0
                finally:
                    os._exit(code)
            with lock:
                children.append(pid)

    log = EventLog(data_dir, max_events=1_000, max_age_s=3600)
    try:
        threads = [threading.Thread(target=fork_some, args=(t,), daemon=True) for t in range(3)]
        for thread in threads:
            thread.start()
        for i in range(200):
            log.record(api_call(i, request_id=f"p{i}"))
        for thread in threads:
            thread.join(30)
        if any(thread.is_alive() for thread in threads):
            import ingest.log

            ingest.log._LOGS.discard(log)  # its locks are held for good: closing it, or a later fork, would hang the run
            raise AssertionError("a forking thread hung on a log's lock")
        statuses = [_wait_child(pid, timeout=60 if i == 0 else 5) for i, pid in enumerate(children)]
        assert statuses == [0] * len(children)
        log.close()
    finally:
        sys.setswitchinterval(switch)
    expected = [f"p{i}" for i in range(200)] + [f"c{t}-{i}" for t in range(3) for i in range(20)]
    assert sorted(request_ids(data_dir)) == sorted(expected)


_FORK_DURING_A_WRITE = """
import os, sys, threading, time
from pathlib import Path
import ingest.log
from ingest.log import EventLog
from tests.cases import api_call

real, writing, done = ingest.log.write_atomic, threading.Event(), []

def slow(table, path, **options):  # the flush thread's first write takes two seconds
    if not writing.is_set():
        os.write(1, b"writing\\n")  # before the main thread may go on to say it forked
        writing.set()
        time.sleep(2.0)
    real(table, path, **options)
    done.append(1)

ingest.log.write_atomic = slow
log = EventLog(Path(sys.argv[1]), max_events=10, max_age_s=3600)
for i in range(10):
    log.record(api_call(i, request_id=f"r{i}"))
writing.wait(30)
pid = os.fork()  # while the write goes on
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
os.write(1, b"forked, written: %d\\n" % len(done))
for i in range(10, 15):
    log.record(api_call(i, request_id=f"r{i}"))
time.sleep(30)  # SIGTERM ends the process long before
"""


def test_a_fork_during_a_write_does_not_wait_and_sigterm_still_ends_the_process(data_dir: Path) -> None:
    """The main thread forks while the log's thread writes: the fork does not wait for the write
    (nothing is taken before a fork), and a SIGTERM that lands while the write goes on takes its usual
    path: exit 143, every event on disk once. (A fork that waited for the write in a hook swallowed
    a SIGTERM that landed meanwhile, and ignored every later one.)"""
    with subprocess.Popen([sys.executable, "-c", _FORK_DURING_A_WRITE, str(data_dir)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=Path(__file__).parent.parent) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
        assert proc.stdout.readline() == b"forked, written: 0\n"  # the fork returned during the write
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        try:
            _, errors = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, errors = proc.communicate()
            raise AssertionError(f"SIGTERM did not end the process: {errors.decode()}") from None
    status, stderr = proc.returncode, errors.decode()
    assert status == 128 + signal.SIGTERM and "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    ids = request_ids(data_dir)
    assert len(ids) == len(set(ids)) and {f"r{i}" for i in range(10)} <= set(ids)


def test_the_sigterm_handler_reads_the_registry_while_its_thread_holds_it() -> None:
    """SIGTERM's handler runs in the main thread between two bytecodes, also while that thread holds
    the logs' registry (opening or closing a log): reading it again there must not wait forever."""
    script = ("import ingest.log as log\n"
              "with log._REGISTRY_LOCK:\n"
              "    print(log._inside_critical_section())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                          cwd=Path(__file__).parent.parent)
    assert done.returncode == 0 and done.stdout == "False\n", done.stderr


def test_a_full_buffer_is_written_by_the_logs_thread_while_recording_goes_on(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = _HeldWrites(monkeypatch)
    with EventLog(data_dir, max_events=100, max_age_s=3600) as log:
        for i in range(100):
            log.record(api_call(i, request_id=f"r{i}"))
        assert writes.started.wait(30), "a full buffer was not flushed"
        for i in range(100, 150):  # the write is held: recording neither waits nor is lost
            log.record(api_call(i, request_id=f"r{i}"))
        assert log.pending == 150 and writes.writers == ["hive-eventlog-flush"]
        writes.go.set()
        deadline = time.monotonic() + 30
        while log.pending > 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.pending == 50  # the first 100 on disk, the rest buffered
    assert sorted(request_ids(data_dir)) == sorted(f"r{i}" for i in range(150))


def test_a_recorder_that_outruns_the_writer_waits_for_it(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The held write took what was buffered when it began: 100 to 200 events if the log's thread
    woke first, else the recorder's own 200, which it is now writing. Either way the recorder buffers
    at most another 200 and then waits: 500 events never all sit in memory."""
    writes = _HeldWrites(monkeypatch)
    with EventLog(data_dir, max_events=100, max_age_s=3600) as log:
        recorder = threading.Thread(target=lambda: [log.record(api_call(i, request_id=f"r{i}")) for i in range(500)])
        recorder.start()
        assert writes.started.wait(30)
        deadline = time.monotonic() + 30
        while log.pending < 200 and recorder.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # a recorder that did not wait would be done by now
        assert recorder.is_alive() and 200 <= log.pending <= 400, f"{log.pending} events held"
        writes.go.set()
        recorder.join(30)
        assert not recorder.is_alive()
    assert sorted(request_ids(data_dir)) == sorted(f"r{i}" for i in range(500))


def test_a_failed_write_puts_its_events_back_in_front_of_newer_ones(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq

    writes = _HeldWrites(monkeypatch, fail=1)
    with EventLog(data_dir, max_events=100, max_age_s=3600) as log:
        for i in range(100):
            log.record(api_call(i, request_id=f"r{i}"))
        assert writes.started.wait(30)
        for i in range(100, 130):  # recorded while the write that will fail holds the first 100
            log.record(api_call(i, request_id=f"r{i}"))
        writes.go.set()
        assert log.flush() == 130  # after the failed write: everything, once, in order
        assert log.pending == 0
    (written,) = (data_dir / "events" / "api_call").glob("date=*/*.parquet")
    assert pq.read_table(written)["request_id"].to_pylist() == [f"r{i}" for i in range(130)]
    assert "event log flush failed, events kept in memory: [Errno 28] No space left on device" in capsys.readouterr().err


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


_RECORD_UNTIL_SIGTERM = """
import sys
from ingest.log import EventLog
from tests.cases import api_call
log = EventLog(sys.argv[1], max_events=50, max_age_s=3600)
i = 0
while True:
    log.record(api_call(i, request_id=f"s-{i}"))
    i += 1
    if i == 2000:
        print("ready", flush=True)
"""


@pytest.mark.slow
def test_sigterm_while_the_flush_thread_writes_loses_and_duplicates_nothing(data_dir: Path) -> None:
    """A recorder whose log's thread is writing all the time (a flush every 50 events) takes SIGTERM:
    it exits 143 with every event it recorded on disk once - the write in progress finished, the
    rest written at exit."""
    repo = Path(__file__).resolve().parents[1]
    for trial in range(6):
        target = data_dir / f"t{trial}"
        child = subprocess.Popen([sys.executable, "-c", _RECORD_UNTIL_SIGTERM, str(target)], cwd=repo,
                                 stdout=subprocess.PIPE)
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        time.sleep(random.uniform(0.0, 0.2))
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 128 + signal.SIGTERM
        child.stdout.close()
        ids = request_ids(target)
        numbers = sorted(int(i.split("-")[1]) for i in ids)
        assert len(numbers) >= 2000 and len(ids) == len(set(ids)), f"trial {trial}: an event was written twice"
        assert numbers == list(range(len(numbers))), f"trial {trial}: a recorded event was lost"
        assert len(list(target.glob("events/api_call/date=*/*.parquet"))) > 1  # the thread did write


def _kill_at_random(fork_ctx, target, args: tuple[object, ...], sig: int,  # type: ignore[no-untyped-def]
                    pause_s: tuple[float, float]):
    """Run ``target(*args, report_fd)`` in a child. Once it reports its first line (it is at work),
    wait a random time in ``pause_s``, send ``sig``, wait for it; returns the child, that first line
    and the rest it reported. Timed from the child's report, not from its start: on a loaded
    machine a fixed delay from start() often killed it before it did anything at all."""
    read_fd, write_fd = os.pipe()
    child = fork_ctx.Process(target=target, args=(*args, write_fd))
    child.start()
    os.close(write_fd)
    with os.fdopen(read_fd) as reports:
        first = reports.readline()
        time.sleep(random.uniform(*pause_s))
        os.kill(child.pid, sig)
        child.join(timeout=30)
        return child, first, reports.read()


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
        _child, first, rest = _kill_at_random(fork_ctx, _write_forever, (data_dir, trial), signal.SIGKILL, (0.0, 0.2))
        lines = [first, *rest.split()]
        durable[trial] = int(lines[-1]) if lines[-1].strip() else 0
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
    from hive_core.store.events import ApiCall, arrow_schema

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
        child, first, _rest = _kill_at_random(fork_ctx, _record_until_killed, (target,), signal.SIGTERM, (0.01, 0.1))
        assert first == "go\n" and child.exitcode == 128 + signal.SIGTERM
        ids = request_ids(target)
        assert len(ids) == len(set(ids)), f"trial {trial}: an event was written twice"
        numbers = sorted(int(i.split("-")[1]) for i in ids)
        assert numbers == list(range(len(numbers))), f"trial {trial}: a buffered event was lost"


# -- a full disk or a read-only directory: events kept, retried, spilled, taken back exactly once --


def _fault(kind: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The data directory ``<mount>/data`` under a full disk or a read-only mount."""
    from tests.faults import full_disk, read_only

    mount = tmp_path / "mnt"
    if kind == "full":
        return full_disk(mount, prepare=lambda m: (m / "data").mkdir())
    (mount / "data").mkdir(parents=True)
    return read_only(mount)


@pytest.mark.parametrize("kind", ["full", "read-only"])
def test_unwritable_events_are_kept_retried_and_spilled(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import stat

    from hive_core.errors import EventsSpilled
    from ingest.spill import import_spills, pending_spills

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with _fault(kind, tmp_path) as mount:
        data = mount / "data"
        log = EventLog(data, max_events=100, max_age_s=3600)
        for i in range(250):
            log.record(api_call(i))  # the size-triggered flushes fail: kept, never raised
        assert log.pending == 250
        with pytest.raises(OSError) as failed:
            log.flush()
        assert failed.value.errno in (errno.ENOSPC, errno.EROFS) and log.pending == 250
        with pytest.raises(EventsSpilled) as spilled:
            log.close()
        assert glob_count(data) == 0
    report = spilled.value
    assert report.count == 250 and report.where.is_relative_to(tmp_path / "state" / "hive" / "spill")
    assert f"250 event(s) could not be written to {data}" in str(report) and "hive-jobs import-spills" in str(report)
    (spill_file,) = pending_spills(data)
    assert stat.S_IMODE(spill_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state" / "hive" / "spill").stat().st_mode) == 0o700
    # the disk was freed / remounted read-write (the mount is gone): take the events back, once
    data.mkdir(parents=True, exist_ok=True)
    taken = import_spills(data)
    assert (taken.files, taken.events, taken.duplicates) == (1, 250, 0)
    assert import_spills(data).events == 0 and pending_spills(data) == []
    assert sorted(request_ids(data)) == sorted(f"r{i}" for i in range(250))


def test_a_damaged_spill_file_is_reported_and_left_in_place(data_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from hive_core.errors import EventsSpilled
    from ingest.spill import import_spills, pending_spills

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    store = data_dir / "store"
    store.write_text("a file where the store should be")
    log = EventLog(store, max_age_s=3600)
    log.record(api_call(1))
    with pytest.raises(EventsSpilled):
        log.close()
    store.unlink()
    (spilled,) = pending_spills(store)
    spilled.write_bytes(spilled.read_bytes()[:40])  # truncated by something else afterwards
    taken = import_spills(store)
    assert (taken.files, taken.unreadable) == (0, [spilled]) and spilled.exists()
    cli = subprocess.run([str(Path(sys.executable).parent / "hive-jobs"), "--data-dir", str(store), "import-spills"],
                         capture_output=True, text=True, timeout=60, env={**os.environ})
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert cli.stderr.strip().splitlines() == [f"error: 1 spilled file(s) are not readable Parquet and were left in "
                                               f"place: {spilled}"]


def test_a_record_after_close_is_written_not_lost(data_dir: Path) -> None:
    log = EventLog(data_dir, max_age_s=3600)
    log.record(api_call(1))
    log.close()
    log.record(api_call(2))  # e.g. a stream's cleanup running after the log was closed
    assert sorted(request_ids(data_dir)) == ["r1", "r2"]


def test_an_interrupted_import_then_a_compaction_still_adds_each_event_once(
        data_dir: Path, tmp_path: Path) -> None:
    """The import died after writing the events but before deleting the spill, and a compaction then
    folded the written file away: the re-import finds the events by id, not by file name."""
    import shutil
    from datetime import timedelta

    from hive_core.errors import EventsSpilled
    from ingest import compact
    from ingest.spill import import_spills, pending_spills

    roots, target = [tmp_path / "spill"], data_dir / "store"
    target.write_text("a file where the store should be")  # every write fails
    log = EventLog(target, max_age_s=3600, spill_roots=roots)
    for i in range(1, 40):
        log.record(api_call(i, ts=T0 - timedelta(days=1)))
    with pytest.raises(EventsSpilled):
        log.close()
    target.unlink()
    (spilled,) = pending_spills(target, roots=roots)
    copy = tmp_path / "copy.parquet"
    shutil.copy(spilled, copy)
    assert import_spills(target, roots=roots).events == 39
    spilled.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(copy, spilled)  # as if the import had been killed before its unlink
    with EventLog(target, max_age_s=3600) as other:
        other.record(api_call(99, ts=T0 - timedelta(days=1)))
    compact(target, day=(T0 - timedelta(days=1)).date())
    assert len(list((target / "events" / "api_call").glob("*/*.parquet"))) == 1  # folded into one file
    taken = import_spills(target, roots=roots)
    assert (taken.events, taken.duplicates) == (0, 39)
    ids = request_ids(target)
    assert len(ids) == len(set(ids)) == 40


def _import_until_killed(data_dir: Path, roots: list[Path], report_fd: int) -> None:
    from ingest.spill import import_spills

    os.write(report_fd, b"go\n")
    import_spills(data_dir, roots=roots)
    os.write(report_fd, b"done\n")


@pytest.mark.slow
def test_kill_9_during_import_loses_and_duplicates_nothing(data_dir: Path, tmp_path: Path, fork_ctx) -> None:  # type: ignore[no-untyped-def]
    """A spill of 60 files (30 days x 2 types); the import is killed at a random instant, then run
    again: every event exactly once, whatever the instant."""
    from datetime import timedelta

    from hive_core.store.events import StreamOutcome
    from ingest.spill import import_spills, pending_spills, spill_events

    killed_midway = 0
    for trial in range(15):
        target, roots = data_dir / f"t{trial}", [tmp_path / f"spill{trial}"]
        parts = []
        for day in range(30):
            ts = T0 - timedelta(days=day)
            calls = [api_call(day * 100 + i, ts=ts) for i in range(50)]
            outcomes = [StreamOutcome(ts=ts, request_id=c.request_id, model=c.model, outcome="completed")
                        for c in calls]
            for seq, batch in enumerate((calls, outcomes)):
                import pyarrow as pa

                from hive_core.store.events import arrow_schema

                table = pa.Table.from_pylist([e.model_dump() for e in batch], schema=arrow_schema(type(batch[0])))
                parts.append((batch[0].type, ts.date(), f"w{trial}-{day * 2 + seq + 1:06d}.parquet", table))
        spill_events(target, f"w{trial}", parts, roots=roots)
        _child, first, rest = _kill_at_random(fork_ctx, _import_until_killed, (target, roots), signal.SIGKILL, (0.0, 0.3))
        assert first == "go\n"
        finished = rest == "done\n"
        killed_midway += not finished and bool(pending_spills(target, roots=roots))
        import_spills(target, roots=roots)
        for event_type in ("api_call", "stream_outcome"):
            ids = request_ids(target, event_type)
            assert len(ids) == len(set(ids)) == 1500, f"trial {trial}: {event_type} {len(ids)} events"
        assert pending_spills(target, roots=roots) == []
    assert killed_midway >= 3, "the kills never landed inside an import"


def test_a_writer_id_whose_files_readers_would_skip_is_refused(data_dir: Path) -> None:
    """A custom writer id must make names readers take as data, or its events would be strays."""
    for bad in ("has space", "dot.ted", "-dash-first"):
        with pytest.raises(ValueError, match="writer id"):
            EventLog(data_dir, writer=bad)
    with EventLog(data_dir, writer="good_writer-1") as log:
        log.record(api_call(1))
    assert glob_count(data_dir) == 1
