"""``hive-jobs rebuild-ledger``: recreate the budget ledger's spend from the ``usage`` events.

The ledger is a projection: its settled spend per scope and day is replaced by the sums of
``usage.cost_usd`` (all history), and reservations still in flight are expired (a process that
settles one later still adds its spend, so an in-flight request is counted at most twice, never
lost). Run it after a crash, after ``hive-jobs reconcile`` corrected costs, or when
``hive budget show`` reports that the ledger and the events disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hive_core.budget.ledger import LEDGER_NAME, Ledger
from jobs.budget_spend import read_spend

__all__ = ["RebuildResult", "rebuild_ledger"]


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild did."""

    scope_days: int
    total_usd: float
    expired_reservations: int


def rebuild_ledger(data_dir: Path, *, now: datetime) -> RebuildResult:
    """Replace the ledger's spend with the events' and expire in-flight reservations."""
    spend = read_spend(data_dir)
    rows = spend.scope_days()
    with Ledger(data_dir / "state" / LEDGER_NAME) as ledger:
        expired = ledger.rebuild(rows, now=now)
    total = sum(usd for _day, _app, _model, usd in spend.rows)
    return RebuildResult(len(rows), total, expired)
