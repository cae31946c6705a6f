"""Changing the budget settings: what ``hive budget set`` / ``unset`` do, as library calls.

Values arrive as the user typed them (strings from flags, or numbers) and every bad one is a
:class:`~hive_core.errors.ConfigError` with one line saying what is accepted; nothing is written
unless the whole change is valid (nor over a ``config.json`` that cannot be read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hive_core.budget.config import BudgetConfig, budget_config_from_json, parse_scope, update_budget_config
from hive_core.errors import ConfigError

__all__ = ["BudgetChange", "scope_of", "set_budget", "unset_budget"]


@dataclass(frozen=True)
class BudgetChange:
    """What ``set_budget`` / ``unset_budget`` saved."""

    config: BudgetConfig
    #: the mode ``config.json`` had when it was readable by others (it is ``0600`` now), else None
    tightened_from: int | None = None


def scope_of(app: str | None = None, model: str | None = None, key: str | None = None) -> str:
    """The scope named by ``--app`` / ``--model`` / ``--key`` (none: ``global``; two is an error)."""
    named = [(kind, name) for kind, name in (("app", app), ("model", model), ("key", key)) if name]
    if len(named) > 1:
        raise ConfigError("give one of --app, --model or --key: a limit has one scope")
    if named:
        kind, name = named[0]
        return parse_scope(f"{kind}:{name}")
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
    new settings, already saved (read and written under the config's lock: a concurrent change of
    another scope is kept)."""
    daily_usd, monthly_usd, day = _number(daily, "daily limit"), _number(monthly, "monthly limit"), _reset_day(reset_day)
    changes_limit = daily_usd is not None or monthly_usd is not None or day is not None
    if not changes_limit and webhook_url is None and thresholds is None:
        raise ConfigError("nothing to set: give --daily, --monthly, --reset-day, --webhook or --thresholds")
    alerts = _thresholds(thresholds) if thresholds is not None else None

    def change(config: BudgetConfig) -> BudgetConfig:
        if changes_limit:
            config = config.with_limit(scope, daily_usd=daily_usd, monthly_usd=monthly_usd, reset_day=day)
        raw = config.to_json()
        if webhook_url is not None:
            raw["webhook_url"] = webhook_url or None  # "" removes it
        if alerts is not None:
            raw["thresholds_pct"] = alerts
        return budget_config_from_json(raw)  # validates the alert settings the same way as a loaded file

    return BudgetChange(*update_budget_config(config_path, change))


def unset_budget(config_path: Path, *, scope: str = "global") -> BudgetChange:
    """Remove every limit of ``scope``; returns the new settings, already saved."""

    def change(config: BudgetConfig) -> BudgetConfig:
        if scope not in config.limits:
            raise ConfigError(f"no budget is set for {scope}: see `hive budget show`")
        return config.without_limit(scope)

    return BudgetChange(*update_budget_config(config_path, change))
