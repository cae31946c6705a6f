"""Reports of a data directory on a real S3-compatible server (moto, tests/plugins/s3.py): the same
report as on local disk, written into the bucket (``hive-jobs report``, ``run-due``)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hive_core.period import Period
from hive_core.settings import Settings, location
from hive_core.store.objects import as_object
from jobs.reports.report import build_report, write_report
from jobs.reports.schedule import run_due
from tests.cases import DAY0, write_history
from tests.plugins.cli import BIN

DAYS = 7
#: the clock of every run here: the day after the history
NOW = datetime(DAY0.year, DAY0.month, DAY0.day, 12, tzinfo=UTC) + timedelta(days=DAYS)
#: budgets as an operator uploads them (``hive budget set`` needs a local data directory)
CONFIG = {"budget": {"limits": {"global": {"daily_usd": 0.5, "monthly_usd": 5, "reset_day": 1}}}}


def _store(data_dir: str) -> Settings:
    settings = Settings.from_env({"HIVE_AS_OF": NOW.isoformat()}, data_dir=data_dir)
    write_history(settings.data_dir, days=DAYS, n=20)
    settings.datadir.config_file.write_bytes(json.dumps(CONFIG).encode())
    return settings


def test_the_report_of_a_bucket_is_the_local_report(s3_root: str, tmp_path: Path) -> None:
    remote, local = _store(s3_root), _store(str(tmp_path / "local"))
    period = Period.report("week", NOW.date() - timedelta(days=1))

    report = build_report(remote, period, now=NOW)

    assert report == build_report(local, period, now=NOW)
    assert report["spend"]["total_usd"] > 0 and report["budget"][0]["monthly_limit_usd"] == 5
    assert report["budget"][0]["reserved_usd"] == 0  # no ledger in a bucket without HIVE_LEDGER_URL
    for fmt in ("md", "html", "json"):
        path = write_report(report, fmt, remote.datadir.reports)
        assert str(path).startswith(f"{s3_root}/reports/hive-week-")
        assert path.read_bytes() == write_report(report, fmt, tmp_path / "out").read_bytes()


def test_run_due_writes_its_reports_and_state_into_the_bucket(s3_root: str) -> None:
    settings = _store(s3_root)

    first = run_due(settings, only="weekly", fmt="md")

    assert first.failures == [] and len(first.written) == 1
    (written,) = first.written
    assert str(written).startswith(f"{s3_root}/reports/") and written.read_text().startswith("# ")
    assert json.loads(settings.datadir.run_due_state.read_text()) == {"weekly": first.done["weekly"][0].isoformat()}
    assert settings.datadir.rollup_day(DAY0).exists()  # the rollup ran before the report
    assert run_due(settings, only="weekly", fmt="md").written == []  # done: a second run writes nothing
    assert not settings.datadir.lock("run-due").exists()


def test_the_cli_reports_a_bucket(s3_root: str, s3_env: dict[str, str], tmp_path: Path) -> None:
    _store(s3_root)
    env = {**os.environ, "HIVE_AS_OF": NOW.isoformat()}
    done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", s3_root, "report", "--period", "yesterday",
                           "--format", "json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["period"]["until"] == (NOW.date() - timedelta(days=1)).isoformat()
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []
    assert not as_object(Settings.from_env({}, data_dir=s3_root).datadir.reports).walk()  # stdout only


def test_report_out_takes_a_bucket_and_refuses_an_unsupported_url(s3_root: str, s3_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    _store(s3_root)
    env = {**os.environ, "HIVE_AS_OF": NOW.isoformat()}
    out = f"{s3_root}/shared-reports"
    done = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", s3_root, "report", "--period", "yesterday",
                           "--format", "md", "--out", out], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    written = [obj for obj, size in as_object(location(out)).walk() if size > 0]
    assert [o.name for o in written] == [f"hive-day-{(NOW.date() - timedelta(days=1)).isoformat()}.md"]
    assert done.stderr.strip() == str(written[0])
    assert list(tmp_path.iterdir()) == []  # never a local folder named "s3:"
    refused = subprocess.run([str(BIN / "hive-jobs"), "--data-dir", s3_root, "report", "--out", "ftp://b/x"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "ftp://" in refused.stderr and "Traceback" not in refused.stderr
    assert list(tmp_path.iterdir()) == []
