"""Cron: the crontab lines for Hive's jobs, and ``run-due``, which does whatever is due and catches up.

Three schedules, each a crontab line calling ``hive-jobs run-due --only <schedule>`` with absolute
paths (the running interpreter's ``hive-jobs``) and the data directory, after a ``CRON_TZ=UTC`` line
(cron reads the times in UTC, the time zone of Hive's days; a cron without ``CRON_TZ`` support runs
them in its own zone, which only moves the hour):

    daily    00:15  the store's upkeep (:func:`jobs.pipeline.upkeep`: reconcile unbilled costs, compact
                    the closed days, rollup + rankings + budget alerts, verify), then the day report
                    of every complete day not done yet
    weekly   Mon    the week report (Monday..Sunday) of every complete week not done yet
    monthly  1st    the month report of every complete month not done yet

``run-due`` remembers, per schedule, the last period it finished (``<data>/state/run-due.json``,
:attr:`hive_core.store.datadir.DataDir.run_due_state`, written atomically after each period), so a machine that was off for three days writes the three
missing day reports on its next run, and a second run writes nothing. Without a state file it does
only the latest complete period (never a backfill of all history). It holds the ``run-due`` job lock
(:mod:`hive_core.store.lock`) so overlapping cron runs never interleave; the rollup inside takes its own lock.
It prints nothing on success (cron mails any output). A step that fails does not stop the others:
each failure is in :attr:`DueRun.failures` (the step's name and one line; the CLI prints one line each
on stderr and exits 1), and a report that failed keeps its schedule's state, so the next run retries it.
A state file that cannot be trusted, or a data directory that cannot be written, stops the run (raised).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hive_core.errors import ConfigError, HiveError
from hive_core.period import REPORT_KINDS, Period
from hive_core.store.atomic import write_json_atomic
from jobs.pipeline import StepFailure

if TYPE_CHECKING:
    from hive_core.settings import Settings

__all__ = ["CRON_TZ", "MARKER", "SCHEDULES", "DueRun", "crontab_lines", "due_periods", "install_crontab", "run_due"]

SCHEDULES = {"daily": "15 0 * * *", "weekly": "30 0 * * 1", "monthly": "45 0 1 * *"}
MARKER = "# hive-jobs schedule"
#: the crontab line that makes cron read the schedule's times in UTC
CRON_TZ = "CRON_TZ=UTC"
#: the most periods one run catches up (a machine off for a year does not write 365 reports at once)
MAX_CATCH_UP = 62


@dataclass
class DueRun:
    """What a ``run-due`` did: the periods done per schedule, the files written, the steps that failed."""

    done: dict[str, list[date]] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    failures: list[StepFailure] = field(default_factory=list)


def _bin() -> Path:
    return Path(sys.executable).parent / "hive-jobs"


def crontab_lines(data_dir: Path, hive_jobs: Path | None = None) -> list[str]:
    """The crontab block (begin/end markers included) for ``data_dir``: ``CRON_TZ=UTC``, then one line
    per schedule. (Cron applies ``CRON_TZ`` to the lines after it: the rest of a user's crontab would
    follow it too, which is why the block is appended at the end.)"""
    exe, data = hive_jobs or _bin(), Path(data_dir).resolve()
    lines = [f"{MARKER} begin (data: {data})", CRON_TZ]
    for name, when in SCHEDULES.items():
        lines.append(f"{when} {exe} --data-dir {data} run-due --only {name}")
    lines.append(f"{MARKER} end (data: {data})")
    return lines


def install_crontab(data_dir: Path, *, crontab: str = "crontab") -> list[str]:
    """Merge the block into the user's crontab (``crontab -l`` / ``crontab -``), replacing an older
    block for the same data directory: running it twice changes nothing. Returns the new crontab."""
    exe = shutil.which(crontab)
    if exe is None:
        raise ConfigError("`crontab` is not installed: install cron, or add the lines from "
                          "`hive-jobs schedule --print` to your scheduler")
    current = subprocess.run([exe, "-l"], capture_output=True, text=True)
    # `crontab -l` exits 1 with "no crontab for <user>" when there is none yet: an empty crontab.
    existing = current.stdout.splitlines() if current.returncode == 0 else []
    block = crontab_lines(data_dir)
    kept, inside = [], False
    for line in existing:
        if line == block[0]:
            inside = True
        elif inside and line == block[-1]:
            inside = False
        elif not inside:
            kept.append(line)
    new = [*kept, *block]
    done = subprocess.run([exe, "-"], input="\n".join(new) + "\n", capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"crontab refused the new table: {done.stderr.strip()}")
    return new


def _period_ends(schedule: str, after: date | None, last_complete: date) -> list[date]:
    """Last days of the complete periods of ``schedule`` in ``(after, last_complete]``."""
    if schedule == "daily":
        ends = [last_complete - timedelta(days=i) for i in range(MAX_CATCH_UP)]
    elif schedule == "weekly":
        sunday = last_complete - timedelta(days=(last_complete.weekday() + 1) % 7)
        ends = [sunday - timedelta(weeks=i) for i in range(MAX_CATCH_UP)]
    else:
        month_end = last_complete.replace(day=1) - timedelta(days=1)
        if (last_complete + timedelta(days=1)).day == 1:
            month_end = last_complete
        ends = []
        for _ in range(MAX_CATCH_UP // 12 + 1):
            ends.append(month_end)
            month_end = month_end.replace(day=1) - timedelta(days=1)
    if after is None:
        return ends[:1]  # no state yet: the latest period only
    return sorted(d for d in ends if d > after)


def due_periods(state: dict[str, str], today: date) -> dict[str, list[date]]:
    """Per schedule, the period end days due on ``today`` given the state."""
    yesterday = today - timedelta(days=1)
    return {name: _period_ends(name, date.fromisoformat(state[name]) if name in state else None, yesterday)
            for name in SCHEDULES}


def _load_state(path: Path) -> dict[str, str]:
    """The last period done per schedule. A state that cannot be trusted is an error, not a fresh
    start: starting over silently would skip the reports of the days missed (no backfill)."""
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"a JSON {type(raw).__name__}, not an object")
        state = {k: v for k, v in raw.items() if k in SCHEDULES}
        for name, value in state.items():
            if not isinstance(value, str):
                raise ValueError(f"{name}: {value!r} is not a date")
            date.fromisoformat(value)  # ValueError names the bad value
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable run-due state ({exc}); delete it to start over "
                          "(run-due then does the latest period of each schedule only)") from exc
    return state


def _save_state(path: Path, state: dict[str, str]) -> None:
    write_json_atomic(path, state)


def run_due(settings: Settings, *, today: date | None = None, only: str | None = None,
            out_dir: Path | None = None, fmt: str = "html") -> DueRun:
    """Run every due period of every schedule (or of ``only``); see the module docstring."""
    from hive_core.store.atomic import remove_stale_temporaries
    from hive_core.store.lock import job_lock, unwritable
    from jobs.pipeline import upkeep
    from jobs.reports.report import build_report, write_report

    if only is not None and only not in SCHEDULES:
        raise ConfigError(f"unknown schedule {only!r}: one of {', '.join(SCHEDULES)}")
    now = settings.now()
    if today is not None and today != now.date():  # acting as another day: as of its last instant
        now = datetime(today.year, today.month, today.day, 23, 59, 59, 999999, tzinfo=UTC)
    today = now.date()
    datadir = settings.datadir
    out_dir = out_dir or datadir.reports
    path = datadir.run_due_state
    result = DueRun()
    try:
        with job_lock(datadir, "run-due"):
            state = _load_state(path)
            remove_stale_temporaries(path.parent, prefix=f".{path.name}.")  # of a killed run
            due = due_periods(state, today)
            names = [only] if only else list(SCHEDULES)
            if "daily" in names and due["daily"]:
                result.failures.extend(upkeep(settings, now=now).failures)
            elif any(due[n] for n in names):  # reports only: fresh rollups make them fast
                result.failures.extend(StepFailure("rollup", line) for line in _rollup_problems(settings))
            kinds = dict(zip(SCHEDULES, REPORT_KINDS, strict=True))
            for name in names:
                for end in due[name]:
                    try:
                        report = build_report(settings, Period.report(kinds[name], end), now=now)
                        result.written.append(write_report(report, fmt, out_dir))
                    except HiveError as exc:  # the next run retries this period: its state is kept
                        result.failures.append(StepFailure(f"{name} report {end}", str(exc).splitlines()[0]))
                        break
                    result.done.setdefault(name, []).append(end)
                    state[name] = end.isoformat()
                    _save_state(path, state)  # after each period: a failure later keeps this one done
    except OSError as exc:  # a read-only data directory, a full disk
        raise unwritable("run-due", exc, datadir.root) from exc
    return result


def _rollup_problems(settings: Settings) -> list[str]:
    """The rollup before the weekly and monthly reports (the daily schedule runs it in its upkeep)."""
    from jobs.pipeline import rollup

    try:
        alerts = rollup(settings).steps.get("budget-alerts")
    except HiveError as exc:
        return [str(exc).splitlines()[0]]
    return [f"budget-alerts {line}" for line in (alerts.problems() if alerts is not None else [])]
