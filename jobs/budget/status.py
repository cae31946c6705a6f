"""Where every budget stands now: ``hive budget show``.

For ``global`` and every scope with a limit: spent today and this month (from the events, so the
numbers agree with ``hive analytics cost`` to the cent), reserved in flight (from the ledger),
remaining (limit - spent - reserved), and the month-end projection at the last 7 days' rate.
The ledger's own settled spend is reported next to it; a difference of more than a cent means the
ledger missed something (a crashed process, events written by another tool) or holds spend whose
events are not on disk yet (a writer's buffer, a spill file), and ``hive-jobs rebuild-ledger``
brings it back in line. The ledger is only read: this works on a read-only data directory, and an
unreadable ledger is one line (:class:`~hive_core.errors.CorruptLedger`) saying to rebuild it.

A data directory in object storage (``s3://``) cannot hold the SQLite ledger: its hosts share
budgets through ``HIVE_LEDGER_URL`` (PostgreSQL). Without one nothing can have been reserved in it,
so the status reads no ledger: reserved and the ledger's figures are 0, spend comes from the events.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from hive_core.budget.config import BudgetConfig, Limit, load_budget_config
from hive_core.budget.forecast import forecast, history_since
from hive_core.budget.ledgers import open_ledger
from hive_core.period import Period
from hive_core.store.datadir import DataDir, is_remote
from jobs.budget.spend import read_spend

__all__ = ["ScopeStatus", "budget_status"]


@dataclass(frozen=True)
class ScopeStatus:
    """One scope's budget now; USD throughout, ``None`` where there is no limit."""

    scope: str
    daily_limit_usd: float | None
    monthly_limit_usd: float | None
    spent_today_usd: float
    spent_month_usd: float
    reserved_usd: float
    remaining_today_usd: float | None
    remaining_month_usd: float | None
    projected_month_usd: float
    rate_per_day_usd: float
    over_limit_on: date | None
    month_start: date
    month_end: date
    ledger_spent_today_usd: float
    ledger_spent_month_usd: float

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("over_limit_on", "month_start", "month_end"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


def budget_status(data_dir: Path, *, now: datetime, config: BudgetConfig | None = None,
                  ledger_url: str | None = None) -> list[ScopeStatus]:
    """The status of ``global`` and of every scope with a limit, ``global`` first (``ledger_url``:
    ``Settings.ledger_url``, the PostgreSQL ledger when set)."""
    paths = DataDir(data_dir)
    config = config or load_budget_config(paths.config_file)
    limits = dict(config.limits)
    limits.setdefault("global", Limit("global"))
    months = {scope: Period.monthly(now, lim.reset_day) for scope, lim in limits.items()}
    today = Period.daily(now)
    spend = read_spend(data_dir, since=history_since(months.values(), now))
    out = []
    # read-only: works on a read-only store; none in object storage without a shared ledger (above)
    no_ledger = is_remote(paths.root) and not ledger_url
    with contextlib.nullcontext(None) if no_ledger else open_ledger(data_dir, ledger_url, readonly=True) as ledger:
        for scope in sorted(limits, key=lambda s: (s != "global", s)):
            lim, month = limits[scope], months[scope]
            spent_today, spent_month = spend.total(scope, today), spend.total(scope, month)
            reserved = ledger.reserved(scope) if ledger else 0.0
            outlook = forecast(month, spent_month, spend.daily(scope), now, lim.monthly_usd)
            out.append(ScopeStatus(
                scope=scope,
                daily_limit_usd=lim.daily_usd,
                monthly_limit_usd=lim.monthly_usd,
                spent_today_usd=spent_today,
                spent_month_usd=spent_month,
                reserved_usd=reserved,
                remaining_today_usd=None if lim.daily_usd is None else lim.daily_usd - spent_today - reserved,
                remaining_month_usd=None if lim.monthly_usd is None else lim.monthly_usd - spent_month - reserved,
                projected_month_usd=outlook.projected_usd,
                rate_per_day_usd=outlook.rate_per_day,
                over_limit_on=outlook.over_on,
                month_start=month.first_day,
                month_end=month.last_day,
                ledger_spent_today_usd=ledger.spend(scope, today) if ledger else 0.0,
                ledger_spent_month_usd=ledger.spend(scope, month) if ledger else 0.0,
            ))
    return out
