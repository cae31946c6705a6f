"""The daily pipeline: the rollup, then the stages that read what it wrote, in one run.

``hive-jobs rollup`` and the ``daily`` schedule (``hive-jobs run-due``) run :func:`rollup`: the
rollup files (:func:`jobs.rollup.daily.rollup`), then each of :data:`POST_STEPS` in order, under
the rollup's lock, with its open store and the rows it just computed:

* ``rankings``: the ranking table the selector reads (:func:`jobs.rankings.table.refresh_after_rollup`);
* ``budget-alerts``: budget alerts evaluated, recorded and sent (:func:`jobs.budget.alerts.alerts_after_rollup`).

What each step returns lands in ``report.steps[name]``. The rollup never names what runs after it
(its readers import it, not the other way round); this module, above the rollup, rankings and
budget stages and below the reports' schedule, does, so the import graph shows every call.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from hive_core.store.lock import DEFAULT_LOCK_TIMEOUT_S
from jobs.budget.alerts import alerts_after_rollup
from jobs.rankings.table import refresh_after_rollup
from jobs.rollup import daily

if TYPE_CHECKING:
    from hive_core.settings import Settings

__all__ = ["POST_STEPS", "rollup"]

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
) -> daily.RollupReport:
    """Bring the daily rollups up to date (as :func:`jobs.rollup.daily.rollup`), then run
    :data:`POST_STEPS`; their results are in ``report.steps``."""
    return daily.rollup(settings, day=day, since=since, rebuild=rebuild, lock_timeout_s=lock_timeout_s,
                        steps=POST_STEPS)
