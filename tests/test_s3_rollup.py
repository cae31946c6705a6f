"""``hive-jobs rollup`` on a real S3-compatible server (moto, tests/plugins/s3.py): the same files as
on local disk, byte for byte; incremental; a run killed at any instant is finished by the next;
two runs at once, one wins the lock."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import queries
from hive_core.errors import LockHeld
from hive_core.selection.rankings import load_rankings
from hive_core.settings import Settings
from hive_core.store.conditional import object_lock
from hive_core.store.lock import job_lock
from hive_core.store.objects import as_object
from jobs.pipeline import rollup
from tests.cases import DAY0, day_events, write_events, write_history
from tests.plugins.cli import BIN
from tests.plugins.env import REPO

DAYS = 6
#: the clock of every run here: the day after the history (the rankings' window covers it)
AS_OF = datetime(DAY0.year, DAY0.month, DAY0.day, 12, tzinfo=UTC) + timedelta(days=DAYS)


def _settings(data_dir: str) -> Settings:
    return Settings.from_env({"HIVE_AS_OF": AS_OF.isoformat()}, data_dir=data_dir)


def _ranking_rows(data: bytes) -> list[dict[str, object]]:
    """The ranking table's rows but their ``computed_at`` (the clock moves on between two runs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, object]] = pq.read_table(pa.BufferReader(data)).drop_columns(["computed_at"]).to_pylist()
    return rows


def _local_files(root: Path) -> dict[str, object]:
    """Every rollup file under a local data directory (bytes) and the ranking table (rows)."""
    files: dict[str, object] = {str(p.relative_to(root)): p.read_bytes()
                                for p in sorted((root / "rollups").rglob("*.parquet"))}
    files["rankings"] = _ranking_rows((root / "rankings" / "rankings.parquet").read_bytes())
    return files


def _object_files(root: object) -> dict[str, object]:
    """The same, of an ``s3://`` data directory (one recursive LIST, then one GET each)."""
    remote = as_object(root)
    names = sorted(obj.key[len(remote.key) + 1:] for obj, _size in remote.walk())
    files: dict[str, object] = {n: (remote / n).read_bytes()
                                for n in names if n.startswith("rollups/") and n.endswith(".parquet")}
    if "rankings/rankings.parquet" in names:
        files["rankings"] = _ranking_rows((remote / "rankings" / "rankings.parquet").read_bytes())
    return files


@pytest.fixture
def reference(tmp_path: Path) -> dict[str, object]:
    """The files a local rollup writes for :func:`write_history` of :data:`DAYS` days."""
    settings = _settings(str(tmp_path / "local"))
    write_history(settings.data_dir, days=DAYS, n=20)
    rollup(settings)
    return _local_files(settings.data_dir)


def test_rollup_writes_the_files_a_local_rollup_writes(s3_root: str, reference: dict[str, object],
                                                       tmp_path: Path) -> None:
    settings = _settings(s3_root)
    write_history(settings.data_dir, days=DAYS, n=20)

    report = rollup(settings)

    assert len(report.rolled_up) == DAYS and report.skipped == []
    assert report.steps["rankings"].rows > 0 and report.steps["budget-alerts"].problems() == []
    assert set(reference) >= {"rankings", "rollups/monthly/month=2026-11/totals.parquet"}
    assert _object_files(settings.data_dir) == reference
    assert settings.datadir.rollup_state.exists()
    assert not settings.datadir.lock("rollup").exists()  # the S3 job lock, released
    # incremental: nothing new, nothing recomputed; a rebuild writes the same bytes
    assert rollup(settings).rolled_up == []
    assert len(rollup(settings, rebuild=True).rolled_up) == DAYS
    assert _object_files(settings.data_dir) == reference
    # the selector reads the bucket's table (no local cache beside it) as it reads a local one
    from_bucket, local = load_rankings(settings.data_dir), load_rankings(tmp_path / "local")
    assert len(from_bucket) == len(local) > 0 and from_bucket.models() == local.models()
    assert all(from_bucket.rows_for(m) == local.rows_for(m) for m in local.models())
    assert list(tmp_path.iterdir()) == [tmp_path / "local"]  # nothing local beside the reference


def test_the_rankings_priors_come_from_the_buckets_catalog(s3_root: str, catalog_path: Path, tmp_path: Path) -> None:
    bucket, local = _settings(s3_root), _settings(str(tmp_path / "local"))
    (tmp_path / "local" / "catalog").mkdir(parents=True)  # a bucket has no folders to make
    for settings in (bucket, local):
        write_history(settings.data_dir, days=DAYS, n=20)
        settings.datadir.catalog_file.write_bytes(catalog_path.read_bytes())
    assert rollup(bucket).steps["rankings"].priors == "catalog"
    rollup(local)
    assert _object_files(bucket.data_dir)["rankings"] == _local_files(local.data_dir)["rankings"]


def test_a_late_event_and_a_deleted_day_file_redo_their_days_only(s3_root: str, tmp_path: Path) -> None:
    late, lost = DAY0 + timedelta(days=1), DAY0 + timedelta(days=3)
    stores = [_settings(s3_root), _settings(str(tmp_path / "local"))]
    for settings in stores:  # the same steps on both stores
        write_history(settings.data_dir, days=DAYS, n=20)
        rollup(settings)
        datadir = settings.datadir
        lost_bytes = datadir.rollup_day(lost).read_bytes()
        write_events(settings.data_dir, day_events(late, n=3, seed=7), writer="late")
        datadir.rollup_day(lost).unlink()

        assert sorted(rollup(settings).rolled_up) == [late, lost]
        assert datadir.rollup_day(lost).read_bytes() == lost_bytes
    assert _object_files(stores[0].data_dir) == _local_files(stores[1].data_dir)


def test_the_cli_rolls_up_the_bucket(s3_root: str, s3_env: dict[str, str], reference: dict[str, object],
                                     tmp_path: Path) -> None:
    write_history(_settings(s3_root).data_dir, days=DAYS, n=20)
    env = {**os.environ, "HIVE_AS_OF": AS_OF.isoformat()}
    for args, says in ((["rollup", "--daily"], f"rolled up {DAYS} day(s)"),
                       (["rollup", "--daily"], "rollups up to date"),
                       (["rollup", "--rebuild"], f"rolled up {DAYS} day(s)")):
        done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", s3_root, *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert says in done.stdout, done.stdout
        assert s3_env["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr
    assert _object_files(_settings(s3_root).data_dir) == reference
    assert list(tmp_path.iterdir()) == [tmp_path / "local"]


#: a rollup of one day per batch (many writes to kill it between), as `hive-jobs rollup` runs it
_ROLLUP = """
import sys
from hive_core.selection.rankings import load_rankings
from hive_core.settings import Settings
from jobs.pipeline import POST_STEPS
from jobs.rollup.daily import rollup
rollup(Settings.from_env({"HIVE_AS_OF": sys.argv[2]}, data_dir=sys.argv[1]), rebuild=True, max_batch_bytes=1,
       steps=POST_STEPS)
print("done", flush=True)
"""


@pytest.mark.parametrize("trial", range(2))
def test_a_rollup_killed_at_any_instant_is_finished_by_the_next(s3_root: str, reference: dict[str, object],
                                                                 trial: int) -> None:
    settings = _settings(s3_root)
    write_history(settings.data_dir, days=DAYS, n=20)
    if trial:  # a store rolled up before: the killed run rewrites files that already exist
        rollup(settings)
    lock = as_object(settings.datadir.lock("rollup"))
    proc = subprocess.Popen([sys.executable, "-c", _ROLLUP, s3_root, AS_OF.isoformat()], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not lock.exists():  # it holds the lock: the run has begun
        assert proc.poll() is None and time.monotonic() < deadline, "the rollup never took its lock"
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 1.5))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert proc.stdout is not None and proc.stdout.read() == ""  # killed mid-run, not after it
    proc.stdout.close()

    # the dead run's lock lapses after its lease (shortened here: the lease itself is test_s3_lock's)
    with pytest.raises(LockHeld):
        rollup(settings, lock_timeout_s=0)
    with object_lock(lock, timeout_s=60, lease_s=1):
        pass
    rollup(settings)
    assert _object_files(settings.data_dir) == reference
    assert rollup(settings).rolled_up == []


def test_of_two_rollups_at_once_one_wins_the_lock(s3_root: str, s3_env: dict[str, str],
                                                  reference: dict[str, object]) -> None:
    settings = _settings(s3_root)
    write_history(settings.data_dir, days=DAYS, n=20)
    env = {**os.environ, "HIVE_AS_OF": AS_OF.isoformat()}
    jobs = [str(BIN / "hive-jobs"), "--data-dir", s3_root, "rollup"]

    with job_lock(settings.datadir, "rollup", timeout_s=0):  # a run on another host holds it
        with pytest.raises(LockHeld, match="another run holds"):
            rollup(settings, lock_timeout_s=0)
        refused = subprocess.run([*jobs, "--wait", "0"], env=env, capture_output=True, text=True, timeout=120)
    # (the line's text: hive_cli.lazy._data_dir turns the data directory into a Path while it
    # reports an error, which an s3:// one refuses; asked of the CLI's owner)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "another run holds" in refused.stderr, refused.stderr
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in refused.stderr
    assert _object_files(settings.data_dir) == {}  # the refused run wrote nothing

    # two at once, each waiting for the other: one rolls everything up, the other finds it done
    procs = [subprocess.Popen(jobs, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(out.split(" ")[0] for out, _ in outs) == ["rolled", "rollups"], outs
    assert _object_files(settings.data_dir) == reference


def test_the_rollups_budget_alerts_are_recorded_in_the_bucket(s3_root: str) -> None:
    settings = _settings(s3_root)
    write_history(settings.data_dir, days=DAYS, n=20)
    # budgets as an operator uploads them (`hive budget set` needs a local data directory)
    settings.datadir.config_file.write_bytes(json.dumps({"budget": {"limits": {"global": {"monthly_usd": 0.2}}}}).encode())

    alerts = rollup(settings).steps["budget-alerts"]

    assert alerts.problems() == [] and {a.threshold_pct for a in alerts.fired} >= {50, 80, 100}
    with queries.connect(settings.data_dir) as store:
        assert store.execute("SELECT count(*) FROM budget_alerts").fetchone() == (len(alerts.fired),)
    assert rollup(settings).steps["budget-alerts"].fired == []  # fired once: the bucket's events remember
