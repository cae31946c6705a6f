"""The daily pipeline: the rollup, then the stages that read what it wrote, in one run.

``hive-jobs rollup`` and the ``daily`` schedule (``hive-jobs run-due``) run :func:`rollup`: the
rollup files (:func:`jobs.rollup.daily.rollup`), then each of :data:`POST_STEPS` in order, under
the rollup's lock, with its open store and the rows it just computed:

* ``rankings``: the ranking table the selector reads (:func:`jobs.rankings.table.refresh_after_rollup`);
* ``budget-alerts``: budget alerts evaluated, recorded and sent (:func:`jobs.budget.alerts.alerts_after_rollup`).

What each step returns lands in ``report.steps[name]``. The rollup never names what runs after it
(its readers import it, not the other way round); this module, above the rollup, rankings and
budget stages and below the reports' schedule, does, so the import graph shows every call.

:func:`upkeep` is what the nightly cron run (``run-due``'s daily schedule) does to keep the store
healthy, in :data:`UPKEEP_STEPS` order: reconcile unbilled costs (so the rollup counts billed
figures), compact the closed days (the small files reconcile and the day's writers left), the
rollup with its post steps, then verify. A step that fails is one :class:`StepFailure` (its name
and one line); the steps after it still run - a failed reconcile must not stop the rollup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from hive_core.errors import HiveError
from hive_core.store.lock import DEFAULT_LOCK_TIMEOUT_S
from jobs.budget.alerts import alerts_after_rollup
from jobs.rankings.table import refresh_after_rollup
from jobs.rollup import daily

if TYPE_CHECKING:
    from hive_core.settings import Settings

__all__ = ["POST_STEPS", "UPKEEP_STEPS", "StepFailure", "Upkeep", "UpkeepStep", "rollup", "upkeep"]

#: run after every rollup of the pipeline, in this order
POST_STEPS: tuple[tuple[str, daily.PostStep], ...] = (
    ("rankings", refresh_after_rollup),
    ("budget-alerts", alerts_after_rollup),
)


# The rollup's own keywords, passed through unchanged (`duplicates` pairs the two signatures): the
# pipeline only adds the steps.
def rollup(
    settings: Settings,
    *,
    day: date | None = None,
    since: date | None = None,
    rebuild: bool = False,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    engine: str = "duckdb",
) -> daily.RollupReport:
    """Bring the daily rollups up to date (as :func:`jobs.rollup.daily.rollup`, with DuckDB or
    Spark computing the rows), then run :data:`POST_STEPS`; their results are in ``report.steps``."""
    return daily.rollup(settings, day=day, since=since, rebuild=rebuild, lock_timeout_s=lock_timeout_s,
                        steps=POST_STEPS, engine=engine)


@dataclass(frozen=True)
class StepFailure:
    """A scheduled step that failed: which one, and why in one line."""

    step: str
    message: str

    def __str__(self) -> str:
        return f"{self.step}: {self.message}"


@dataclass
class Upkeep:
    """What :func:`upkeep` did: each step's result (its report) and the failures, in step order."""

    results: dict[str, Any] = field(default_factory=dict)
    failures: list[StepFailure] = field(default_factory=list)


def _reconcile(settings: Settings, now: datetime) -> tuple[Any, list[str]]:
    """Billed costs for cut and cancelled streams. Nothing unbilled: no request, so no API key needed."""
    from hive_core.session import Session
    from ingest import EventLog
    from jobs.budget.reconcile import ReconcileReport, find_unbilled, reconcile

    if not find_unbilled(settings.data_dir):
        return ReconcileReport(), []
    settings.require_api_key()  # MissingApiKey says how to set one
    with (EventLog(settings.data_dir, max_events=settings.flush_max_events, max_age_s=settings.flush_max_age_s) as log,
          Session(settings, None) as session):
        report = reconcile(settings.data_dir, session.client, log)
    problems = [f"{len(report.failed)} /generation lookup(s) failed (first: {report.failed[0][0]}: "
                f"{report.failed[0][1]}); `hive-jobs reconcile` retries them"] if report.failed else []
    return report, problems


def _compact(settings: Settings, now: datetime) -> tuple[Any, list[str]]:
    """Merge the small files of the closed days (under the store lock, as ``hive-jobs compact``)."""
    from hive_core.store.lock import STORE_LOCK, job_lock
    from ingest import compact

    with job_lock(settings.datadir, STORE_LOCK):
        report = compact(settings.data_dir, now=now)
    skipped = [f"skipped {len(report.skipped)} file(s) (first: {report.skipped[0][0]}: {report.skipped[0][1]}); "
               "see `hive-jobs verify`"] if report.skipped else []
    return report, skipped


def _rollup(settings: Settings, now: datetime) -> tuple[Any, list[str]]:
    """The rollup and its post steps; a post step's failure (alerts not evaluated or not delivered) is the
    rollup step's failure, named after the post step."""
    report = rollup(settings)
    alerts = report.steps.get("budget-alerts")  # an AlertRun, or None when `hive-jobs alerts` was busy
    return report, [f"budget-alerts {line}" for line in (alerts.problems() if alerts is not None else [])]


def _verify(settings: Settings, now: datetime) -> tuple[Any, list[str]]:
    """Check every event file, repairing what killed writers left (under the store lock)."""
    from hive_core.store.lock import STORE_LOCK, job_lock
    from ingest import verify

    with job_lock(settings.datadir, STORE_LOCK):
        report = verify(settings.data_dir, repair=True)
    problems = [f"{len(report.problems)} problem(s) in the event store (first: {report.problems[0]}); "
                "see `hive-jobs verify`"] if report.problems else []
    return report, problems


#: a nightly step: given the settings and "now", its report and its problems (one line each)
UpkeepStep = Callable[["Settings", datetime], tuple[Any, list[str]]]

#: the nightly steps, in order
UPKEEP_STEPS: tuple[tuple[str, UpkeepStep], ...] = (
    ("reconcile", _reconcile),
    ("compact", _compact),
    ("rollup", _rollup),
    ("verify", _verify),
)


def upkeep(settings: Settings, *, now: datetime | None = None) -> Upkeep:
    """Run every step of :data:`UPKEEP_STEPS` (see the module docstring); never raises for a step's
    expected failure (a :class:`~hive_core.errors.HiveError` or a file error): it is in ``failures``."""
    now = now or settings.now()
    done = Upkeep()
    for name, step in UPKEEP_STEPS:
        try:
            result, problems = step(settings, now)
        except HiveError as exc:
            done.failures.append(StepFailure(name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            continue
        except OSError as exc:  # a full disk, a read-only directory
            where = f" ({exc.filename})" if exc.filename else ""
            done.failures.append(StepFailure(name, f"{exc.strerror or exc}{where}"))
            continue
        done.results[name] = result
        done.failures.extend(StepFailure(name, line) for line in problems)
    return done
