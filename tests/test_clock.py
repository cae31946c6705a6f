"""``hive_core.clock``: one UTC clock, ``--as-of``, file ages on the filesystem's clock, UTC boundaries."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hive_core.clock import as_of_clock, filesystem_now, parse_instant, system_clock
from hive_core.errors import ConfigError
from hive_core.settings import Settings
from hive_core.store.datadir import DataDir
from hive_core.store.events import Usage
from ingest.log import EventLog
from tests.plugins.cli import BIN

#: the last microsecond of a leap year, and the first of the next: the boundary every period crosses
LAST = datetime(2028, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
FIRST = LAST + timedelta(microseconds=1)


def test_parse_instant() -> None:
    assert parse_instant("2028-02-29") == datetime(2028, 2, 29, tzinfo=UTC)
    assert parse_instant("2026-12-31T23:59:00Z") == datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert parse_instant("2027-01-01T01:00:00+02:00") == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    assert parse_instant("2026-12-31T23:59:00") == datetime(2026, 12, 31, 23, 59, tzinfo=UTC)  # naive = UTC
    with pytest.raises(ValueError, match="not an ISO 8601 instant"):
        parse_instant("2026-02-30")


def test_as_of_clock_starts_at_the_instant_and_ticks() -> None:
    """The clock read the instant when the process started, and has ticked at the real rate since."""
    from hive_core import clock as clock_module

    clock = as_of_clock(LAST)
    since_start = time.monotonic() - clock_module._ORIGIN
    first = clock()
    assert abs((first - LAST).total_seconds() - since_start) < 0.5
    time.sleep(0.01)
    assert clock() > first  # it ticks at the real rate
    assert clock().tzinfo is UTC


def test_settings_clock() -> None:
    assert Settings().clock is system_clock
    moved = Settings.from_env({"HIVE_AS_OF": "2028-02-29T12:00:00Z"})
    assert moved.now().date() == date(2028, 2, 29)
    assert Settings.from_env({}, as_of="2028-02-29").as_of == datetime(2028, 2, 29, tzinfo=UTC)
    with pytest.raises(ConfigError, match="HIVE_AS_OF"):
        Settings.from_env({"HIVE_AS_OF": "yesterday"})


def test_filesystem_now_is_the_mtimes_clock(tmp_path: Path) -> None:
    before = filesystem_now(tmp_path)
    path = tmp_path / "f"
    path.write_bytes(b"x")
    after = filesystem_now(tmp_path)
    assert before is not None and after is not None
    assert before <= path.stat().st_mtime <= after  # the same clock as the mtimes, whatever time.time() says
    assert list(tmp_path.iterdir()) == [path]  # the probe is gone


def test_filesystem_now_on_a_read_only_directory(tmp_path: Path) -> None:
    assert filesystem_now(tmp_path / "missing") is None


def _usage(ts: datetime, i: int, cost: float) -> Usage:
    return Usage(ts=ts, request_id=f"r{i}", model="openai/gpt-4o", cost_usd=cost, cost_source="billed")


def _run(args: list[str], data_dir: Path, tz: str = "UTC") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVE_", "OPENROUTER_"))}
    env["TZ"] = tz  # a local time zone far from UTC must change nothing
    return subprocess.run([str(BIN / args[0]), "--data-dir", str(data_dir), *args[1:]], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "America/Adak"])  # UTC+14 and UTC-10/-9
def test_day_and_year_boundaries_are_utc(data_dir: Path, tz: str) -> None:
    """The last microsecond of a year and the first of the next land on their own UTC days, in the
    rollup, the cost report and the budget month, whatever the local time zone of the process."""
    with EventLog(data_dir) as log:
        log.record(_usage(LAST, 1, 1.0))
        log.record(_usage(FIRST, 2, 10.0))
    days = sorted(p.name for p in (data_dir / "events" / "usage").iterdir())
    assert days == ["date=2028-12-31", "date=2029-01-01"]
    as_of = ["--as-of", "2029-01-01T12:00:00Z"]
    rolled = _run(["hive-jobs", *as_of, "rollup", "--daily"], data_dir, tz)
    assert rolled.returncode == 0, rolled.stderr
    out = _run(["hive", *as_of, "analytics", "cost", "--period", "yesterday", "--json"], data_dir, tz)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["total_usd"] == pytest.approx(1.0)
    out = _run(["hive", *as_of, "analytics", "cost", "--period", "today", "--json"], data_dir, tz)
    assert json.loads(out.stdout)["total_usd"] == pytest.approx(10.0)
    report = _run(["hive-jobs", *as_of, "report", "--period", "yesterday", "--format", "json"], data_dir, tz)
    assert report.returncode == 0, report.stderr
    built = json.loads(report.stdout)  # yesterday: the last day of 2028
    assert (built["period"]["until"], built["spend"]["total_usd"]) == ("2028-12-31", pytest.approx(1.0))
    DataDir(data_dir).config_file.write_text(json.dumps({"limits": {"global": {"monthly_usd": 100}}}))
    shown = _run(["hive", *as_of, "budget", "show", "--json"], data_dir, tz)
    assert shown.returncode == 0, shown.stderr
    scope = json.loads(shown.stdout)["scopes"][0]
    assert (scope["month_start"], scope["spent_month_usd"]) == ("2029-01-01", pytest.approx(10.0))
    assert scope["spent_today_usd"] == pytest.approx(10.0)


def test_as_of_makes_a_report_reproducible(data_dir: Path) -> None:
    """The same ``--as-of`` gives the same report, whatever the real time (hive-jobs and library)."""
    with EventLog(data_dir) as log:
        for i in range(5):
            log.record(_usage(datetime(2028, 2, 28, 10, tzinfo=UTC) + timedelta(hours=i * 6), i, 0.5))
    outs = []
    for _ in range(2):
        done = _run(["hive-jobs", "--as-of", "2028-03-01T08:00:00Z", "summary", "--period", "7d"], data_dir)
        assert done.returncode == 0, done.stderr
        outs.append(done.stdout)
    assert outs[0] == outs[1] and "$2.50" in outs[0]
    far = _run(["hive-jobs", "--as-of", "2030-01-01", "summary", "--period", "7d"], data_dir)
    assert "$2.50" not in far.stdout  # the same command as of another day sees another week


def test_as_of_is_refused_by_commands_that_send_requests(data_dir: Path) -> None:
    """Requests are recorded at the real time: a moved clock is refused before anything is sent."""
    env_args = ["hive", "--as-of", "2028-02-29", "ask", "--model", "openai/gpt-4o", "hi"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVE_", "OPENROUTER_"))}
    env["OPENROUTER_API_KEY"] = "sk-or-v1-" + "0" * 64
    env["OPENROUTER_BASE_URL"] = "http://127.0.0.1:9/api/v1"  # nothing listens: nothing may be sent
    done = subprocess.run([str(BIN / "hive"), "--data-dir", str(data_dir), *env_args[1:]], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: --as-of / HIVE_AS_OF is for reports and batch jobs; requests are always recorded at the "
        "real time (unset it to send requests)"]
    assert not (data_dir / "events").exists()
