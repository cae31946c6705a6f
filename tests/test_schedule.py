"""Cron: the crontab block (printed and installed idempotently, in UTC), run-due catching up missed days
exactly once, and the nightly upkeep (reconcile, compact, rollup + alerts, verify) where every failed
step is reported as what it is while the others still run - through the library and the CLI."""

from __future__ import annotations

import os
import stat
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hive_core.errors import ConfigError, DataError
from hive_core.settings import Settings
from hive_core.store.atomic import TEMP_GRACE_S
from hive_core.store.datadir import DataDir
from jobs.reports.schedule import CRON_TZ, MARKER, crontab_lines, due_periods, install_crontab, run_due
from jobs.simulate.simulate import simulate
from tests.cases import DAY0, day_events, write_events
from tests.faults import read_only
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL, emu_settings

END = date(2026, 3, 12)  # a Thursday


def test_crontab_lines(data_dir: Path) -> None:
    lines = crontab_lines(data_dir)
    assert lines[0].startswith(MARKER) and lines[-1].startswith(MARKER)
    assert lines[1] == CRON_TZ == "CRON_TZ=UTC"  # the times are UTC, like Hive's days
    exe = Path(sys.executable).parent / "hive-jobs"
    assert [line.split()[5] for line in lines[2:-1]] == [str(exe)] * 3
    assert all(f"--data-dir {data_dir.resolve()} run-due --only" in line for line in lines[2:-1])


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
    assert once.count(CRON_TZ) == 1
    with pytest.raises(ConfigError, match="crontab"):
        install_crontab(data_dir, crontab=str(tmp_path / "no-such-crontab"))


def test_due_periods() -> None:
    assert due_periods({}, END) == {"daily": [END - timedelta(days=1)], "weekly": [date(2026, 3, 8)],
                                    "monthly": [date(2026, 2, 28)]}
    due = due_periods({"daily": "2026-03-08", "weekly": "2026-03-08", "monthly": "2026-02-28"}, END)
    assert due == {"daily": [date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11)], "weekly": [], "monthly": []}


@pytest.fixture
def history(data_dir: Path) -> Path:
    """Eight days ending :data:`END`, every cost billed (nothing for reconcile to look up)."""
    write_events(data_dir, [e for i in range(8) for e in day_events(END - timedelta(days=i), 40)])
    return data_dir


@pytest.fixture
def simulated(data_dir: Path) -> Path:
    """Eight simulated days ending :data:`END`, with cut streams whose cost is not billed yet."""
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
    assert printed.stdout.splitlines()[1] == "CRON_TZ=UTC"


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


# -- the nightly upkeep ------------------------------------------------------------------------------

#: the suite's one instant for the upkeep tests: the day after the history below, so its days are closed
AS_OF = datetime(DAY0.year, DAY0.month, DAY0.day, 6, 0, tzinfo=UTC) + timedelta(days=3)


def small_files(data_dir: Path) -> Path:
    """Three closed days written by two writers (two small files per day and type), no unbilled cost."""
    days = [DAY0 + timedelta(days=i) for i in range(3)]
    for writer in ("w1", "w2"):
        write_events(data_dir, [e for d in days for e in day_events(d, 30, seed=len(writer) + ord(writer[1]))], writer)
    for path in DataDir(data_dir).events.rglob("*.parquet"):  # written a while ago, on the filesystem's clock
        old = path.stat().st_mtime - 2 * TEMP_GRACE_S
        os.utime(path, (old, old))
    return data_dir


def _files(data_dir: Path, day: date) -> list[Path]:
    return sorted((DataDir(data_dir).event_type("api_call") / f"date={day}").glob("*.parquet"))


def test_run_due_keeps_the_store_healthy(data_dir: Path) -> None:
    """The daily schedule compacts the closed days, rolls up, verifies - and says nothing went wrong."""
    small_files(data_dir)
    assert len(_files(data_dir, DAY0)) == 2
    done = run_due(Settings(data_dir=data_dir, as_of=AS_OF), only="daily")
    assert done.failures == [] and done.done == {"daily": [AS_OF.date() - timedelta(days=1)]}
    assert len(_files(data_dir, DAY0)) == 1  # compacted
    assert DataDir(data_dir).rollups_daily.is_dir()


def test_run_due_keeps_the_store_healthy_cli(data_dir: Path) -> None:
    small_files(data_dir)
    env = {**_env(data_dir), "HIVE_AS_OF": AS_OF.isoformat()}
    out = run_cli("hive-jobs", ["run-due", "--only", "daily"], env)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    assert len(_files(data_dir, DAY0)) == 1


def test_a_malformed_budget_config_fails_the_alerts_loudly(data_dir: Path) -> None:
    """Once the rollup skipped alerts silently (exit 0) and run-due called it a delivery failure."""
    small_files(data_dir)
    DataDir(data_dir).config_file.write_text('{"limits": {"global": {"daily_usd": ')
    env = {**_env(data_dir), "HIVE_AS_OF": AS_OF.isoformat()}
    rolled = run_cli("hive-jobs", ["rollup"], env)
    assert rolled.returncode == 1 and rolled.stdout.startswith("rolled up 3 day(s)")
    assert rolled.stderr.startswith("error: budget-alerts not evaluated: ") and rolled.stderr.count("\n") == 1
    assert "config.json" in rolled.stderr and "delivery" not in rolled.stderr
    done = run_cli("hive-jobs", ["run-due", "--only", "daily"], env)
    assert (done.returncode, done.stdout) == (1, "")
    # each failure as what it is: the alerts step, then the day report (its budget section reads the config)
    day = AS_OF.date() - timedelta(days=1)
    rollup_line, report_line = done.stderr.splitlines()
    assert rollup_line.startswith("error: rollup: budget-alerts not evaluated: ") and "config.json" in rollup_line
    assert report_line.startswith(f"error: daily report {day}: ") and "config.json" in report_line
    assert len(_files(data_dir, DAY0)) == 1  # the other steps still ran
    assert not DataDir(data_dir).run_due_state.exists()  # the day report is retried by the next run


def test_a_failed_step_is_named_and_the_others_run(simulated: Path) -> None:
    """The simulated history has cut streams of unbilled cost: without an API key reconcile cannot look
    them up - that step fails, by name, and compaction, the rollup, verify and the reports still run."""
    settings = Settings(data_dir=simulated, as_of=datetime(END.year, END.month, END.day, 6, tzinfo=UTC))
    done = run_due(settings, only="daily")
    (failure,) = done.failures
    assert failure.step == "reconcile" and "OPENROUTER_API_KEY" in failure.message and "\n" not in str(failure)
    assert done.done == {"daily": [END - timedelta(days=1)]} and DataDir(simulated).rollups_daily.is_dir()


def test_a_failed_step_is_named_and_the_others_run_cli(simulated: Path) -> None:
    history = simulated
    env = {**_env(history), "HIVE_AS_OF": f"{END}T06:00:00Z"}
    env.pop("OPENROUTER_API_KEY", None)
    out = run_cli("hive-jobs", ["run-due", "--only", "daily"], env)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr.startswith("error: reconcile: ") and out.stderr.count("\n") == 1
    assert [p.name for p in DataDir(history).reports.iterdir()] == [f"hive-day-{END - timedelta(days=1)}.html"]


def test_run_due_reconciles_cut_streams(emulator: Any, tmp_path: Path) -> None:
    """A cancelled stream's unknown cost becomes the billed one in the nightly run (the emulator bills it)."""
    from hive_core.openrouter import OpenRouterClient
    from ingest import EventLog
    from jobs.budget.reconcile import find_unbilled

    settings = emu_settings(emulator, tmp_path, read_timeout_s=5.0)
    with EventLog(settings.data_dir) as log, OpenRouterClient(settings, sink=log) as client:
        handle = client.stream("A long story", model=MODEL, max_tokens=2000)
        for i, _ in enumerate(handle):
            if i == 2:
                handle.cancel()
    assert len(find_unbilled(settings.data_dir)) == 1
    env = hive_env(emulator, settings.data_dir)
    for _ in range(50):  # the /generation record may lag the cancel by a moment: a pending lookup is no failure
        out = run_cli("hive-jobs", ["run-due", "--only", "daily", "--date", str(datetime.now(UTC).date())], env)
        assert (out.returncode, out.stderr) == (0, ""), out.stderr
        if not find_unbilled(settings.data_dir):
            break
        DataDir(settings.data_dir).run_due_state.unlink()  # run the daily schedule again
    assert find_unbilled(settings.data_dir) == []
