"""``gs://`` data directories on a real Google Cloud Storage server (Google's storage-testbench,
tests/plugins/gcs.py): the object-store trials (written once in tests/plugins/objstore.py) on the GCS
backend, as many as the Azure suite runs: the event log and its SQL views, the generation
preconditions, the job lock across processes (and a lock write whose answer was lost), kill -9
compactions, rollups byte-identical to a local rollup, reports, prune; the endpoint and credentials
from Google's environment, one line when they are missing; the URL's own words."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hive_core.errors import ConfigError, StorageError
from hive_core.store.conditional import create_object
from hive_core.store.objects import ObjectPath, as_object
from tests.plugins.cli import BIN
from tests.plugins.gcs import GcsServer
from tests.plugins.objstore import (
    compact_verify_cli_trial,
    conditional_primitives_trial,
    counter_lock_trial,
    cut_upload_trial,
    data_root,
    event_log_trial,
    killed_compaction_trial,
    killed_writer_trial,
    lost_answer_lock_trial,
    prune_trial,
    reports_trial,
    rollup_trial,
)
from tests.plugins.proxies import AnswerDroppingProxy


def _no_google(tmp_path: Path) -> dict[str, str]:
    """An environment with no Google credentials anywhere: no key file, no gcloud login (its
    config folder is empty), no metadata server (google-auth's check of it is turned off)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "STORAGE_EMULATOR_", "CLOUDSDK_", "GCE_"))}
    (tmp_path / "gcloud").mkdir(exist_ok=True)
    return {**env, "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"), "NO_GCE_CHECK": "True"}


def test_the_endpoint_comes_from_googles_standard_environment() -> None:
    from hive_core.store.gcs import GcsEndpoint, gcs_endpoint

    assert gcs_endpoint({}) == GcsEndpoint("https://storage.googleapis.com", False)
    assert gcs_endpoint({"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9023/"}) == GcsEndpoint("http://127.0.0.1:9023", True)
    assert gcs_endpoint({"STORAGE_EMULATOR_HOST": "localhost:4443"}) == GcsEndpoint("http://localhost:4443", True)
    with pytest.raises(ConfigError, match="write it as http://host:port"):
        gcs_endpoint({"STORAGE_EMULATOR_HOST": "ftp://x"})


def test_no_google_credentials_is_one_line_that_says_where_they_come_from(tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", "gs://hive-some-bucket/data", "verify"], cwd=work,
                          env=_no_google(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "GOOGLE_APPLICATION_CREDENTIALS" in done.stderr and "application-default login" in done.stderr
    assert list(work.iterdir()) == []


def test_event_log_writes_objects_that_sql_reads_and_writers_lose_nothing(gs_root: str, tmp_path: Path) -> None:
    event_log_trial(gs_root, tmp_path)


@pytest.mark.parametrize("trial", range(2))
def test_a_writer_killed_at_any_instant_leaves_whole_objects_only(gs_root: str, trial: int) -> None:
    killed_writer_trial(gs_root, f"k{trial}", within=(0.3, 1.2))
    assert all(size > 0 for _, size in as_object(data_root(gs_root)).walk())


def test_generation_preconditions(gs_root: str) -> None:
    """If-None-Match is ifGenerationMatch=0 and If-Match ifGenerationMatch=<generation>: a version is a generation."""
    conditional_primitives_trial(gs_root)


def test_a_missing_bucket_is_an_error_never_a_missing_object(gs_env: dict[str, str]) -> None:
    """An upload's 404 is the bucket's (never 'no such object', which callers take for a file a
    compaction removed)."""
    missing = ObjectPath("gs", "hive-no-such-bucket/data/x")
    with pytest.raises(StorageError, match=r"upload: the bucket does not exist \(404\)") as caught:
        missing.write_bytes(b"x")
    assert len(str(caught.value).splitlines()) == 1 and "STORAGE_EMULATOR_HOST" in str(caught.value)
    with pytest.raises(StorageError, match=r"upload: the bucket does not exist \(404\)"):
        create_object(missing, b"x")


@pytest.mark.parametrize("precondition", ["if-none-match", "if-match"])
def test_a_lock_write_whose_answer_was_lost_is_this_holders_own(gs_root: str, gcs_server: GcsServer,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  precondition: str) -> None:
    """An upload whose answer was lost is retried, and when the first attempt had landed, the retry is
    refused by the object it wrote: taking the lock (ifGenerationMatch=0) and renewing it
    (ifGenerationMatch=<its generation>) read such a refusal back as their own write."""
    pattern = rb"ifgenerationmatch=0[& ]" if precondition == "if-none-match" else rb"ifgenerationmatch=[1-9]"
    proxy = AnswerDroppingProxy(gcs_server.endpoint, b"POST", pattern)
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.endpoint)
        lost_answer_lock_trial(gs_root, lambda: proxy.dropped, renewing=precondition == "if-match")
    finally:
        proxy.close()


def test_an_upload_cut_short_stores_nothing(gs_root: str, gcs_server: GcsServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Each upload carries its content's MD5, so an upload whose body stops halfway (a writer killed
    mid-request: the testbench stored the bytes that arrived, an empty event file among them) is
    refused, and the retry creates the whole object."""
    cut_upload_trial(gs_root, gcs_server.endpoint, b"POST", rb"ifgenerationmatch=0[& ]",
                     lambda endpoint: monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint))


def test_a_gs_url_is_spelled_with_its_bucket(tmp_path: Path) -> None:
    from hive_core.store.objects import parse_url

    with pytest.raises(ConfigError) as caught:
        parse_url("gs://")
    assert str(caught.value) == "'gs://' names no bucket; use gs://bucket/prefix"
    with pytest.raises(ConfigError, match=r"^'gcs://bucket/data': write gcs:// as gs://bucket/prefix$"):
        parse_url("gcs://bucket/data")
    done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", "gcs://bucket/data", "verify"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "write gcs:// as gs://bucket/prefix" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_processes_under_the_lock_never_interleave_and_a_killed_holders_lease_lapses(gs_root: str) -> None:
    counter_lock_trial(gs_root)


def test_compact_and_verify_through_the_cli(gs_root: str, gs_env: dict[str, str], tmp_path: Path) -> None:
    compact_verify_cli_trial(gs_root, "gs://hive-no-such-bucket/data", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(2))
def test_kill_9_compaction_loses_and_duplicates_nothing(gcs_server: GcsServer, gs_env: dict[str, str],
                                                        trial: int) -> None:
    # mid-way through the first day, then the second
    killed_compaction_trial(lambda: f"gs://{gcs_server.create_bucket()}/data", day=trial)


def test_rollup_writes_the_files_a_local_rollup_writes_and_a_killed_one_is_finished(
        gs_root: str, rollup_reference: dict[str, object]) -> None:
    rollup_trial(gs_root, rollup_reference)


def test_prune_removes_old_rolled_up_days_only(gs_root: str) -> None:
    prune_trial(gs_root)


def test_reports_go_into_the_bucket_and_equal_the_local_report(gs_root: str, tmp_path: Path) -> None:
    reports_trial(gs_root, tmp_path)
