"""Budgets that hold: limits, a cross-process reservation ledger, and the request-path API.

    Budget                the request path: ``reserve()`` -> :class:`Reservation` -> ``settle``/``release``
    Ledger                the SQLite ledger under ``<data>/state/`` (reservations, spend per scope/day)
    BudgetConfig, Limit   limits per scope (global, app:<name>, model:<id>) in ``config.json``; 0 is a kill switch
    max_cost              the most a request can cost, from the catalog's prices
    forecast              the burn-rate projection shared by ``hive budget show`` and the alerts job

Periods are UTC calendar days and months (optional monthly reset day): ``Period.daily``/``Period.monthly``
of :mod:`hive_core.period`.
The batch parts (alerts, webhook delivery, ``rebuild-ledger``) live in ``jobs/``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# eager: the submodule has the function's name, and importing it later would rebind the package's
# ``forecast`` to the module
from hive_core.budget.forecast import Forecast, forecast

if TYPE_CHECKING:
    from hive_core.budget.config import (
        DEFAULT_MAX_TOKENS,
        DEFAULT_STALE_AFTER_S,
        DEFAULT_THRESHOLDS_PCT,
        BudgetConfig,
        Limit,
        budget_config_from_json,
        load_budget_config,
        parse_scope,
        save_budget_config,
    )
    from hive_core.budget.estimate import CostBound, estimate_prompt_tokens, max_cost
    from hive_core.budget.ledger import Breach, Ledger, request_scopes
    from hive_core.budget.reservation import Budget, Reservation, SettlingSink, refusal_message

#: public name -> submodule; imported on first use (PEP 562), so a job that needs only the config
#: (the rollup's alerts step) does not load the ledger's sqlite3 and the reservation machinery
_HOME = {
    **dict.fromkeys(("DEFAULT_MAX_TOKENS", "DEFAULT_STALE_AFTER_S", "DEFAULT_THRESHOLDS_PCT", "BudgetConfig", "Limit",
                     "budget_config_from_json", "load_budget_config", "parse_scope", "save_budget_config"), "config"),
    **dict.fromkeys(("CostBound", "estimate_prompt_tokens", "max_cost"), "estimate"),
    **dict.fromkeys(("Breach", "Ledger", "request_scopes"), "ledger"),
    **dict.fromkeys(("Budget", "Reservation", "SettlingSink", "refusal_message", "settling_usage"), "reservation"),
}

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_STALE_AFTER_S",
    "DEFAULT_THRESHOLDS_PCT",
    "Breach",
    "Budget",
    "BudgetConfig",
    "CostBound",
    "Forecast",
    "Ledger",
    "Limit",
    "Reservation",
    "SettlingSink",
    "budget_config_from_json",
    "estimate_prompt_tokens",
    "forecast",
    "load_budget_config",
    "max_cost",
    "parse_scope",
    "refusal_message",
    "request_scopes",
    "save_budget_config",
    "settling_usage",
]


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"hive_core.budget.{_HOME[name]}"), name)
    raise AttributeError(f"module 'hive_core.budget' has no attribute {name!r}")
