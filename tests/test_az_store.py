"""``az://`` data directories on a real Azure Blob Storage server (Azurite, tests/plugins/azurite.py): the
S3 suite's core trials (tests/test_s3_*.py, written once in tests/plugins/objstore.py) on the Azure
backend, fewer of them: the event log and its SQL views, the conditional primitives, the job lock
across processes, kill -9 compactions, rollups byte-identical to a local rollup, reports, prune; errors that
never show the key; a leased blob, which is an error and never a lost race; the URL's own words."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from hive_core.errors import StorageError
from hive_core.settings import Settings, location
from hive_core.store.conditional import (
    create_object,
    delete_if_match,
    head_version,
    put_tombstone,
    read_version,
    server_now,
)
from hive_core.store.event_files import list_event_files
from hive_core.store.objects import as_object
from ingest import EventLog, compact, verify
from jobs.pipeline import rollup
from jobs.rollup.prune import MIN_KEEP_DAYS, prune
from tests.cases import T0, api_call, write_history
from tests.plugins.azurite import KEY, Azurite
from tests.plugins.cli import BIN
from tests.plugins.env import REPO
from tests.plugins.objstore import (
    AS_OF,
    COMPACT,
    COMPACT_DAYS,
    COUNTER,
    ROLLUP_DAYS,
    WRITER,
    data_root,
    held_lock_trial,
    journals,
    killed_rollup_trial,
    killed_writer_trial,
    object_files,
    partition,
    plain_rows,
    read_ids,
    rollup_settings,
    small_files,
)


def test_the_account_comes_from_azures_standard_environment() -> None:
    from hive_core.errors import ConfigError
    from hive_core.store.azure import AzureAccount, azure_account

    dev = f"DefaultEndpointsProtocol=http;AccountName=dev1;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:10000/dev1;"
    assert azure_account({"AZURE_STORAGE_CONNECTION_STRING": dev, "AZURE_STORAGE_ACCOUNT_NAME": "other"}) == \
        AzureAccount("dev1", KEY, "http://127.0.0.1:10000/dev1")
    cloud = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net"
    assert azure_account({"AZURE_STORAGE_CONNECTION_STRING": cloud}).blob_endpoint == "https://acct.blob.core.windows.net"
    assert azure_account({"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": KEY}) == \
        AzureAccount("acct", KEY, "https://acct.blob.core.windows.net")
    assert azure_account({"AZURE_STORAGE_ACCOUNT": "acct"}).key is None  # the default credential chain
    assert KEY not in repr(azure_account({"AZURE_STORAGE_CONNECTION_STRING": dev}))
    sas = "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=2024&sig=SECRETSIG"
    for env in ({}, {"AZURE_STORAGE_CONNECTION_STRING": sas}):
        with pytest.raises(ConfigError, match="AZURE_STORAGE_CONNECTION_STRING") as caught:
            azure_account(env)
        assert "SECRETSIG" not in str(caught.value)
    for env in ({"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": "not*base64!"},
                {"AZURE_STORAGE_CONNECTION_STRING": "AccountName=acct;AccountKey=not*base64!"}):
        with pytest.raises(ConfigError, match="not an account key") as caught:  # pyarrow's was a traceback
            azure_account(env)
        assert "not*base64!" not in str(caught.value)


def test_event_log_writes_blobs_that_sql_reads_and_writers_lose_nothing(az_root: str, tmp_path: Path) -> None:
    root = data_root(az_root)
    with EventLog(root, max_events=10, writer="w1") as log:
        for i in range(25):
            log.record(api_call(i, ts=T0 + timedelta(minutes=i)))
    assert [p.name for p in list_event_files(root, "api_call").files] == [
        "w1-000001.parquet", "w1-000002.parquet", "w1-000003.parquet"]
    assert read_ids(root).total() == 25
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, az_root, f"w{i + 2}", "35"], cwd=REPO) for i in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    ids = read_ids(root)
    assert set(ids.values()) == {1} and ids.total() == 25 + 3 * 35
    assert not list(tmp_path.iterdir())  # nothing local: no "az:" directory


@pytest.mark.parametrize("trial", range(2))
def test_a_writer_killed_at_any_instant_leaves_whole_blobs_only(az_root: str, trial: int) -> None:
    """pyarrow's Azure output stream creates an empty blob when opened: the backend's writes must not."""
    killed_writer_trial(az_root, f"k{trial}", within=(0.3, 1.2))
    assert all(size > 0 for _, size in as_object(data_root(az_root)).walk())


def test_conditional_primitives(az_root: str) -> None:
    base = as_object(data_root(az_root))
    journal = base / "state" / "journal.json"
    first = create_object(journal, b"first")
    assert first is not None and create_object(journal, b"second") is None  # If-None-Match: *
    got = read_version(journal)
    assert got is not None and got[0] == b"first" and got[1].etag == first and not got[1].tombstone
    head = head_version(journal)
    assert head is not None and (head.etag, head.size, head.tombstone) == (first, 5, False)
    # ages and "now" are the server's clock, whatever this host's says (HIVE_TEST_NOW moves ours, not Azurite's)
    real_now = time.time() - float(os.environ.get("PYTEST_CLOCK_SHIFT_S", "0"))
    assert abs(head.age_s) < 5 and abs(server_now(journal) - real_now) < 5
    journal.write_bytes(b"rewritten")  # another writer replaced it: the etag read is stale
    assert not delete_if_match(journal, first)
    assert journal.read_bytes() == b"rewritten"
    current = head_version(journal)
    assert current is not None and delete_if_match(journal, current.etag) and not journal.exists()
    assert not delete_if_match(journal, current.etag) and head_version(journal) is None and read_version(journal) is None
    fence = base / "events" / "out-000001.parquet"
    assert put_tombstone(fence) and not put_tombstone(fence)
    marked = head_version(fence)
    assert marked is not None and marked.tombstone and marked.size == 0
    assert create_object(fence, b"PAR1 late") is None  # the tombstone fences a late writer


def test_a_leased_blob_is_an_error_never_a_lost_race(azurite: Azurite, az_root: str) -> None:
    """Azure refuses a conditional call on a leased blob (pyarrow's delete_file leases a blob for 15 s
    first; a killed one leaves the lease held) with 412 LeaseIdMissing: only BlobAlreadyExists and
    ConditionNotMet mean another writer won, so a lock is never waited for, nor a journal taken for
    replaced, because of a lease."""
    from azure.storage.blob import BlobServiceClient

    from hive_core.store.backends import backend
    from hive_core.store.conditional import object_lock

    lock = as_object(data_root(az_root)) / "state" / "rollup.lock"
    etag = create_object(lock, b"{}")
    assert etag is not None
    container, _, name = lock.key.partition("/")
    blob = BlobServiceClient.from_connection_string(azurite.connection_string()).get_blob_client(container, name)
    lease = blob.acquire_lease(lease_duration=15)
    try:
        assert create_object(lock, b"second") is None  # it exists (BlobAlreadyExists): a lost race indeed
        assert not delete_if_match(lock, '"0x8D000000000000"')  # another version (ConditionNotMet)
        for attempt in (lambda: delete_if_match(lock, etag), lambda: backend("az").put(lock, b"x", if_match=etag),
                        lambda: object_lock(lock, timeout_s=0, lease_s=0).__enter__()):  # a stale lock's takeover
            with pytest.raises(StorageError, match="LeaseIdMissing") as caught:
                attempt()
            message = str(caught.value)
            assert len(message.splitlines()) == 1 and "lease expires" in message and KEY not in message, message
        assert lock.read_bytes() == b"{}"
    finally:
        lease.release()
    assert delete_if_match(lock, etag)


def test_an_az_url_is_spelled_with_its_container(tmp_path: Path) -> None:
    from hive_core.errors import ConfigError
    from hive_core.store.objects import parse_url

    with pytest.raises(ConfigError) as caught:
        parse_url("az://")
    assert str(caught.value) == "'az://' names no container; use az://container/prefix"
    with pytest.raises(ConfigError, match=r"local path or s3://bucket/prefix or az://container/prefix$"):
        parse_url("ftp://x/y")
    done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", "az://", "verify"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "names no container; use az://container/prefix" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "bucket" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_key_is_one_line_without_the_key(azurite: Azurite, az_root: str, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3Jvbmc="
    wrong = azurite.connection_string(wrong_key)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", wrong)
    root = data_root(az_root)
    for attempt in (lambda: as_object(root).exists(), lambda: create_object(as_object(root) / "x", b"x"),
                    lambda: server_now(as_object(root))):
        with pytest.raises(StorageError) as caught:
            attempt()
        message = str(caught.value)
        assert "AuthorizationFailure" in message or "AuthenticationFailed" in message or "403" in message, message
        assert len(message.splitlines()) == 1 and wrong_key not in message and KEY not in message
    done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", az_root, "verify"], cwd=tmp_path,
                          env={**os.environ, "AZURE_STORAGE_CONNECTION_STRING": wrong}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr and az_root.split("/")[2] in done.stderr
    assert wrong_key not in done.stdout + done.stderr and "AccountKey" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []


def test_processes_under_the_lock_never_interleave_and_a_killed_holders_lease_lapses(az_root: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER, az_root, "3"], cwd=REPO) for _ in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    datadir = Settings.from_env({}, data_dir=az_root).datadir
    assert (datadir.state / "counter").read_text() == "9"
    lock = as_object(datadir.lock("rollup"))
    assert not lock.exists()  # released
    held_lock_trial(lock)


def test_compact_and_verify_through_the_cli(az_root: str, az_env: dict[str, str], tmp_path: Path) -> None:
    n = small_files(data_root(az_root))
    jobs = [str(BIN / "hive-jobs"), "--data-dir", az_root]
    done = subprocess.run([*jobs, "compact", "--date", COMPACT_DAYS[0].isoformat()], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert (done.returncode, done.stdout) == (0, f"compacted 1 partitions: 3 files -> 1, {n // 2:,} events\n"), done.stderr
    done = subprocess.run([*jobs, "verify"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"verified 4 files, {n:,} events: ok\n", "")
    missing = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", "az://hive-no-such-container/data", "compact"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert "hive-no-such-container" in missing.stderr and KEY not in missing.stdout + missing.stderr
    assert list(tmp_path.iterdir()) == []


def _killed_mid_compaction(azurite: Azurite, day: int) -> tuple[Path, int]:
    """A store whose compaction of both days was killed just after the journal of ``COMPACT_DAYS[day]``
    appeared (a fresh store again when the compaction outran the poll), and its number of events."""
    for _attempt in range(5):
        root = data_root(f"az://{azurite.create_container()}/data")
        n = small_files(root)
        watched = as_object(partition(root, COMPACT_DAYS[day]))
        child = subprocess.Popen([sys.executable, "-c", COMPACT, str(root), *(d.isoformat() for d in COMPACT_DAYS)],
                                 cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        while child.poll() is None and not any(p.name.startswith(".compact-") for p in watched.iterdir()):
            pass
        time.sleep(random.uniform(0.0, 0.03))
        os.kill(child.pid, signal.SIGKILL)
        killed = child.wait() == -signal.SIGKILL and child.stdout.read() == ""  # it had not finished
        child.stdout.close()
        if killed:
            return root, n
    raise AssertionError("five compactions in a row finished before their journal was seen")


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(2))
def test_kill_9_compaction_loses_and_duplicates_nothing(azurite: Azurite, az_env: dict[str, str], trial: int) -> None:
    root, n = _killed_mid_compaction(azurite, day=trial)  # mid-way through the first day, then the second
    expected = Counter(f"r{i}" for i in range(n))
    assert read_ids(root, warn=False) == expected, "readers saw a loss or a duplicate"
    left = verify(root, repair=False)
    assert (left.problems, left.events) == ([], n)
    for day in COMPACT_DAYS:  # the next run repairs whatever the killed one left
        compact(root, day=day)
    assert read_ids(root, warn=False) == expected and plain_rows(root) == n and journals(root) == []
    assert verify(root, repair=False).problems == []


def test_rollup_writes_the_files_a_local_rollup_writes_and_a_killed_one_is_finished(
        az_root: str, rollup_reference: dict[str, object]) -> None:
    settings = rollup_settings(az_root)
    write_history(settings.data_dir, days=ROLLUP_DAYS, n=20)
    assert len(rollup(settings).rolled_up) == ROLLUP_DAYS
    assert object_files(settings.data_dir) == rollup_reference
    assert not settings.datadir.lock("rollup").exists()  # the Azure job lock, released
    # a rebuild killed at a random instant (it rewrites files that exist), finished by the next run
    killed_rollup_trial(az_root, rollup_reference, within_s=0.8)  # the run takes about 1.7 s here


def test_prune_removes_old_rolled_up_days_only(az_root: str) -> None:
    days = MIN_KEEP_DAYS + 4
    now = AS_OF - timedelta(days=ROLLUP_DAYS) + timedelta(days=days)
    settings = Settings.from_env({"HIVE_AS_OF": now.isoformat()}, data_dir=az_root)
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


def test_reports_go_into_the_container_and_equal_the_local_report(az_root: str, tmp_path: Path) -> None:
    now = AS_OF  # the day after write_history's days
    settings = Settings.from_env({"HIVE_AS_OF": now.isoformat()}, data_dir=az_root)
    write_history(settings.data_dir, days=ROLLUP_DAYS, n=20)
    local = Settings.from_env({"HIVE_AS_OF": now.isoformat()}, data_dir=str(tmp_path / "local"))
    write_history(local.data_dir, days=ROLLUP_DAYS, n=20)
    yesterday = (now.date() - timedelta(days=1)).isoformat()
    env = {**os.environ, "HIVE_AS_OF": now.isoformat()}
    work = tmp_path / "cwd"
    work.mkdir()
    written = {}
    for name, data_dir, out in (("az", az_root, f"{az_root}/shared-reports"),
                                ("local", local.data_dir, tmp_path / "local-reports")):
        done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", str(data_dir), "report", "--period",
                               "yesterday", "--format", "md", "--out", str(out)], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert KEY not in done.stdout + done.stderr
        written[name] = done.stderr.strip()
    assert written["az"] == f"{az_root}/shared-reports/hive-day-{yesterday}.md"
    assert as_object(location(written["az"])).read_bytes() == Path(written["local"]).read_bytes()
    assert list(work.iterdir()) == []  # never a local folder named "az:"
