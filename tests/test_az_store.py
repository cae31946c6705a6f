"""``az://`` data directories on a real Azure Blob Storage server (Azurite, tests/plugins/azurite.py): the
S3 suite's core trials (tests/test_s3_*.py, written once in tests/plugins/objstore.py) on the Azure
backend, fewer of them: the event log and its SQL views, the conditional primitives, the job lock
across processes, kill -9 compactions, rollups byte-identical to a local rollup, reports, prune; errors that
never show the key; a leased blob, which is an error and never a lost race; the URL's own words."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hive_core.errors import StorageError
from hive_core.store.conditional import (
    create_object,
    delete_if_match,
    server_now,
)
from hive_core.store.objects import as_object
from tests.plugins.azurite import KEY, Azurite
from tests.plugins.cli import BIN
from tests.plugins.objstore import (
    compact_verify_cli_trial,
    conditional_primitives_trial,
    counter_lock_trial,
    cut_upload_trial,
    data_root,
    event_log_trial,
    killed_compaction_trial,
    killed_writer_trial,
    prune_trial,
    reports_trial,
    rollup_trial,
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
    event_log_trial(az_root, tmp_path)


@pytest.mark.parametrize("trial", range(2))
def test_a_writer_killed_at_any_instant_leaves_whole_blobs_only(az_root: str, trial: int) -> None:
    """pyarrow's Azure output stream creates an empty blob when opened: the backend's writes must not."""
    killed_writer_trial(az_root, f"k{trial}", within=(0.3, 1.2))
    assert all(size > 0 for _, size in as_object(data_root(az_root)).walk())


def test_conditional_primitives(az_root: str) -> None:
    conditional_primitives_trial(az_root)


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
    with pytest.raises(ConfigError, match=r"local path, s3://bucket/prefix, az://container/prefix or gs://bucket/prefix$"):
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
    counter_lock_trial(az_root)


def test_compact_and_verify_through_the_cli(az_root: str, az_env: dict[str, str], tmp_path: Path) -> None:
    compact_verify_cli_trial(az_root, "az://hive-no-such-container/data", tmp_path, secrets=(KEY,))


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(2))
def test_kill_9_compaction_loses_and_duplicates_nothing(azurite: Azurite, az_env: dict[str, str], trial: int) -> None:
    # mid-way through the first day, then the second
    killed_compaction_trial(lambda: f"az://{azurite.create_container()}/data", day=trial)


def test_rollup_writes_the_files_a_local_rollup_writes_and_a_killed_one_is_finished(
        az_root: str, rollup_reference: dict[str, object]) -> None:
    rollup_trial(az_root, rollup_reference)


def test_prune_removes_old_rolled_up_days_only(az_root: str) -> None:
    prune_trial(az_root)


def test_reports_go_into_the_container_and_equal_the_local_report(az_root: str, tmp_path: Path) -> None:
    reports_trial(az_root, tmp_path, secrets=(KEY,))


def test_an_upload_cut_short_stores_nothing(az_root: str, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Put Blob whose body stops halfway (a writer killed mid-request, a lost connection) stores
    nothing, and the retry creates the whole blob."""
    cut_upload_trial(az_root, azurite.endpoint, b"PUT", rb"\r\nif-none-match:",
                     lambda endpoint: monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                                                         azurite.connection_string().replace(azurite.endpoint, endpoint)))
