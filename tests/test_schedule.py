"""Cron: the crontab block (printed and installed idempotently), and run-due catching up missed days
exactly once, through the library and the CLI."""

from __future__ import annotations

import os
import stat
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from hive_core.errors import ConfigError, DataError
from hive_core.settings import Settings
from hive_core.store.datadir import DataDir
from jobs.reports.schedule import MARKER, crontab_lines, due_periods, install_crontab, run_due
from jobs.simulate.simulate import simulate
from tests.faults import read_only
from tests.plugins.cli import run_cli

END = date(2026, 3, 12)  # a Thursday


def test_crontab_lines(data_dir: Path) -> None:
    lines = crontab_lines(data_dir)
    assert lines[0].startswith(MARKER) and lines[-1].startswith(MARKER)
    exe = Path(sys.executable).parent / "hive-jobs"
    assert [line.split()[5] for line in lines[1:-1]] == [str(exe)] * 3
    assert all(f"--data-dir {data_dir.resolve()} run-due --only" in line for line in lines[1:-1])


def test_install_crontab_is_idempotent(data_dir: Path, tmp_path: Path) -> None:
    # A real `crontab` stand-in: a script that keeps the table in a file, like cron's does.
    table = tmp_path / "table"
    table.write_text("MAILTO=me@example.com\n5 * * * * /usr/bin/true\n")
    fake = tmp_path / "crontab"
    fake.write_text(f"#!/bin/sh\nif [ \"$1\" = -l ]; then cat {table}; else cat > {table}; fi\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    install_crontab(data_dir, crontab=str(fake))
    once = table.read_text()
    install_crontab(data_dir, crontab=str(fake))
    assert table.read_text() == once
    assert once.startswith("MAILTO=me@example.com\n5 * * * * /usr/bin/true\n") and once.count("run-due") == 3
    with pytest.raises(ConfigError, match="crontab"):
        install_crontab(data_dir, crontab=str(tmp_path / "no-such-crontab"))


def test_due_periods() -> None:
    assert due_periods({}, END) == {"daily": [END - timedelta(days=1)], "weekly": [date(2026, 3, 8)],
                                    "monthly": [date(2026, 2, 28)]}
    due = due_periods({"daily": "2026-03-08", "weekly": "2026-03-08", "monthly": "2026-02-28"}, END)
    assert due == {"daily": [date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11)], "weekly": [], "monthly": []}


@pytest.fixture
def history(data_dir: Path) -> Path:
    simulate(data_dir, days=8, calls_per_day=150, seed=2, end=END)
    return data_dir


def _reports(data_dir: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in DataDir(data_dir).reports.glob("hive-*")}


def test_run_due(history: Path) -> None:
    settings = Settings(data_dir=history)
    first = run_due(settings, today=END - timedelta(days=2))  # the first run: the latest periods only
    assert first.done == {"daily": [END - timedelta(days=3)], "weekly": [date(2026, 3, 8)],
                          "monthly": [date(2026, 2, 28)]}
    before = _reports(history)
    # Three days without a run, then one run: the three missing day reports, once each.
    later = run_due(settings, today=END + timedelta(days=1))
    assert later.done == {"daily": [END - timedelta(days=2), END - timedelta(days=1), END]}
    after = _reports(history)
    assert sorted(set(after) - set(before)) == [f"hive-day-{END - timedelta(days=i)}.html" for i in (2, 1, 0)]
    assert all(after[name] == mtime for name, mtime in before.items())
    again = run_due(settings, today=END + timedelta(days=1))
    assert again.done == {} and _reports(history) == after
    assert DataDir(history).rollups_daily.is_dir()  # the rollup ran first


def test_run_due_cli(history: Path) -> None:
    env = {"HIVE_DATA_DIR": str(history), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    out = run_cli("hive-jobs", ["run-due", "--only", "daily", "--date", str(END)], env)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")  # quiet on success
    assert [p.name for p in DataDir(history).reports.iterdir()] == [f"hive-day-{END - timedelta(days=1)}.html"]
    again = run_cli("hive-jobs", ["run-due", "--only", "daily", "--date", str(END)], env)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    DataDir(history).run_due_state.write_text("{not json")
    broken = run_cli("hive-jobs", ["run-due", "--date", str(END)], env)
    assert broken.returncode == 1 and broken.stdout == "" and "run-due state" in broken.stderr
    printed = run_cli("hive-jobs", ["schedule", "--print"], env)
    assert printed.returncode == 0 and printed.stdout.count("run-due --only") == 3


BAD_STATES = ("{not json", "[]", '{"daily": 5}', '{"daily": "yesterday"}', '{"weekly": "2026-02-30"}')


def test_unreadable_state_is_one_line(data_dir: Path) -> None:
    """A state that is not {schedule: YYYY-MM-DD} once raised AttributeError/ValueError tracebacks;
    starting over silently would skip the missed days' reports, so it is an error naming the file."""
    path = DataDir(data_dir).run_due_state
    path.parent.mkdir()
    for body in BAD_STATES:
        path.write_text(body)
        with pytest.raises(ConfigError, match=rf"^{path}: unreadable run-due state \(.+\); delete it to start over"):
            run_due(Settings(data_dir=data_dir), today=END)
        assert path.read_text() == body and not DataDir(data_dir).reports.exists()


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "HIVE_DATA_DIR": str(data_dir)}


def test_unreadable_state_is_one_line_cli(data_dir: Path) -> None:
    path = DataDir(data_dir).run_due_state
    path.parent.mkdir()
    for body in BAD_STATES:
        path.write_text(body)
        out = run_cli("hive-jobs", ["run-due", "--date", str(END)], _env(data_dir))
        assert (out.returncode, out.stdout) == (1, "")
        assert out.stderr.startswith(f"error: {path}: unreadable run-due state (") and out.stderr.count("\n") == 1


def test_read_only_data_directory_is_one_line(history: Path) -> None:
    with read_only(history), pytest.raises(DataError) as caught:
        run_due(Settings(data_dir=history), today=END)
    assert str(caught.value).startswith(f"run-due stopped: {history / 'state'}") and "\n" not in str(caught.value)
    assert "make the data directory writable and run it again" in str(caught.value)


def test_read_only_data_directory_is_one_line_cli(history: Path) -> None:
    with read_only(history):
        out = run_cli("hive-jobs", ["run-due", "--date", str(END)], _env(history))
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr.startswith("error: run-due stopped: ") and out.stderr.count("\n") == 1


def test_temporaries_of_a_killed_run_are_removed(data_dir: Path) -> None:
    state = DataDir(data_dir).state
    state.mkdir()
    old, young, other = (state / ".run-due.json.4242.7f.tmp", state / ".run-due.json.4343.7f.tmp",
                         state / ".circuits.json.4242.7f.tmp")
    for path in (old, young, other):
        path.write_text("{")
    for path in (old, other):
        os.utime(path, (path.stat().st_mtime - 120,) * 2)
    run_due(Settings(data_dir=data_dir), today=END, only="monthly")
    assert not old.exists() and young.exists() and other.exists()  # another job's file is its own business
