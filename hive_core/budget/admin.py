"""Changing the budget settings: what ``hive budget set`` / ``unset`` do, as library calls.

Values arrive as the user typed them (strings from flags, or numbers) and every bad one is a
:class:`~hive_core.errors.ConfigError` with one line saying what is accepted; nothing is written
unless the whole change is valid (nor over a ``config.json`` that cannot be read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hive_core.budget.config import (
    BudgetConfig,
    budget_config_from_json,
    load_budget_config,
    parse_scope,
    save_budget_config,
)
from hive_core.errors import ConfigError

__all__ = ["BudgetChange", "scope_of", "set_budget", "unset_budget"]


@dataclass(frozen=True)
class BudgetChange:
    """What ``set_budget`` / ``unset_budget`` saved."""

    config: BudgetConfig
    #: the mode ``config.json`` had when it was readable by others (it is ``0600`` now), else None
    tightened_from: int | None = None


def scope_of(app: str | None = None, model: str | None = None) -> str:
    """The scope named by ``--app`` / ``--model`` (neither: ``global``; both is an error)."""
    if app and model:
        raise ConfigError("give --app or --model, not both: a limit has one scope")
    if app:
        return parse_scope(f"app:{app}")
    if model:
        return parse_scope(f"model:{model}")
    return "global"


def _number(value: str | float | None, what: str) -> float | None:
    if value is None or isinstance(value, float | int):
        return value
    try:
        return float(value.strip().lstrip("$"))
    except ValueError:
        raise ConfigError(f"invalid {what} {value!r}: give an amount in USD such as 25 or 2.50") from None


def _reset_day(value: str | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"invalid reset day {value!r}: give a day of the month, 1..28") from None


def _thresholds(value: str) -> list[float]:
    try:
        return [float(part) for part in value.replace("%", "").split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"invalid thresholds {value!r}: give percentages such as 50,80,100") from None


def set_budget(
    config_path: Path,
    *,
    scope: str = "global",
    daily: str | float | None = None,
    monthly: str | float | None = None,
    reset_day: str | int | None = None,
    webhook_url: str | None = None,
    thresholds: str | None = None,
) -> BudgetChange:
    """Change the limits of ``scope`` (only what is given) and/or the alert settings; returns the
    new settings, already saved."""
    config = load_budget_config(config_path)
    daily_usd, monthly_usd, day = _number(daily, "daily limit"), _number(monthly, "monthly limit"), _reset_day(reset_day)
    if daily_usd is not None or monthly_usd is not None or day is not None:
        config = config.with_limit(scope, daily_usd=daily_usd, monthly_usd=monthly_usd, reset_day=day)
    elif webhook_url is None and thresholds is None:
        raise ConfigError("nothing to set: give --daily, --monthly, --reset-day, --webhook or --thresholds")
    raw = config.to_json()
    if webhook_url is not None:
        raw["webhook_url"] = webhook_url or None  # "" removes it
    if thresholds is not None:
        raw["thresholds_pct"] = _thresholds(thresholds)
    config = budget_config_from_json(raw)  # validates the alert settings the same way as a loaded file
    return BudgetChange(config, save_budget_config(config_path, config))


def unset_budget(config_path: Path, *, scope: str = "global") -> BudgetChange:
    """Remove every limit of ``scope``; returns the new settings, already saved."""
    config = load_budget_config(config_path)
    if scope not in config.limits:
        raise ConfigError(f"no budget is set for {scope}: see `hive budget show`")
    config = config.without_limit(scope)
    return BudgetChange(config, save_budget_config(config_path, config))
