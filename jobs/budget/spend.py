"""Spend per budget scope and UTC day, read from the ``usage`` events: the truth budgets answer to.

One grouped query over the ``usage`` view (superseded usage left out, so a reconciled request
counts once) gives cost per (day, app, model, virtual key); each row is then added to the scopes it
belongs to (``global``, ``app:<app>``, ``model:<model>``, and ``key:<id>`` for a request that came
through the gateway with a virtual key - recorded since usage schema 3; older events count for
no key). ``hive budget show``, the alerts job and
``rebuild-ledger`` all read spend through here, so they agree with ``hive analytics cost``, which
sums the same column of the same view.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from hive_core.budget.ledger import request_scopes
from hive_core.period import Period

if TYPE_CHECKING:
    from queries import Store

__all__ = ["ScopeSpend", "read_spend", "spend_in"]


@dataclass
class ScopeSpend:
    """USD spent per scope per UTC day."""

    by_scope: dict[str, dict[date, float]] = field(default_factory=lambda: defaultdict(dict))
    def add(self, day: date, app: str | None, model: str, usd: float, key: str | None = None) -> None:
        """Count ``usd`` for every scope a request of ``app`` on ``model`` (with virtual key ``key``)
        belongs to."""
        for scope in request_scopes(app, model, key):
            days = self.by_scope[scope]
            days[day] = days.get(day, 0.0) + usd

    def daily(self, scope: str) -> dict[date, float]:
        """Spend of ``scope`` per day (empty when it never spent)."""
        return dict(self.by_scope.get(scope, {}))

    def total(self, scope: str, period: Period) -> float:
        """Spend of ``scope`` in ``period``."""
        return float(sum(usd for day, usd in self.by_scope.get(scope, {}).items() if period.contains(day)))

    def scope_days(self) -> list[tuple[str, str, float]]:
        """Every (scope, ISO day, usd): the ledger's spend table."""
        return [(scope, day.isoformat(), usd) for scope, days in self.by_scope.items() for day, usd in days.items()]


def read_spend(data_dir: Path, *, since: date | None = None) -> ScopeSpend:
    """Spend per scope and day from the events, from ``since`` (UTC day) on, or all of it."""
    from queries import connect

    with connect(data_dir, views=("usage",)) as store:  # only the usage files are listed (and warned about)
        return spend_in(store, since=since)


def spend_in(store: Store, *, since: date | None = None) -> ScopeSpend:
    """:func:`read_spend` over an open store (a caller that also reads other things from the same
    listing of files)."""
    from queries import load, run_sql

    spend = ScopeSpend()
    params = {"since": since.isoformat() if since else None}
    for day, app, model, key, usd in run_sql(store, load("reports/spend_by_day"), params).fetchall():
        spend.add(day, app, model, float(usd), key)
    return spend
