"""Budget limits and alert settings, stored in the ``budget`` section of ``<data>/config.json``.

    {"budget": {
        "limits": {
            "global":            {"daily_usd": 10, "monthly_usd": 200, "reset_day": 1},
            "app:search":        {"daily_usd": 2},
            "model:openai/gpt-4o": {"monthly_usd": 50},
            "key:3f9a1c2b7d4e":  {"daily_usd": 1}
        },
        "thresholds_pct": [50, 80, 100],
        "webhook_url": "https://hooks.slack.com/services/...",
        "stale_after_s": 900,
        "default_max_tokens": 4096
    }}

Scopes are ``global``, ``app:<name>`` (the ``HIVE_APP`` a request is made under), ``model:<id>``
and ``key:<key_id>`` (a virtual key of the gateway, :mod:`hive_core.keys`: its ``--daily`` /
``--monthly`` are this scope, so one ledger and one config hold every limit). A request counts
against every scope it belongs to. A limit of 0 is a kill switch:
every request of its scope is refused, ``--over-budget`` included (``hive budget set --daily 0``;
:func:`hive_core.budget.reservation.kill_switch_message` says how to lift it). Other sections of the file
belong to other features and are kept as they are: :func:`save_budget_config` rewrites only
``budget``, under a lock file, with an atomic rename.

The file holds a secret (a Slack webhook URL carries its token), so it is written ``0600``; a file
found with a wider mode is tightened when written, and the caller is told. A file that cannot be
read or parsed is a :class:`~hive_core.errors.ConfigError` naming it; it is never overwritten.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hive_core.catalog.variants import split_shortcut
from hive_core.errors import ConfigError, CorruptConfig
from hive_core.period import MAX_RESET_DAY, BudgetWindow
from hive_core.store.atomic import PRIVATE_MODE, atomic_file
from hive_core.store.datadir import DataDir
from hive_core.store.lock import file_lock

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_STALE_AFTER_S",
    "DEFAULT_THRESHOLDS_PCT",
    "PRIVATE_MODE",
    "BudgetConfig",
    "ConfigReader",
    "Limit",
    "budget_config_from_json",
    "load_budget_config",
    "parse_scope",
    "read_config_document",
    "save_budget_config",
    "update_budget_config",
    "update_config_section",
]

#: alert thresholds, percent of each limit
DEFAULT_THRESHOLDS_PCT: tuple[float, ...] = (50.0, 80.0, 100.0)
#: a reservation older than this belongs to a crashed process and stops counting (15 minutes:
#: longer than the client's 120 s read timeout times its retries, shorter than a working session)
DEFAULT_STALE_AFTER_S = 900.0
#: completion tokens reserved for a request sent without ``max_tokens`` (the model's own cap when lower)
DEFAULT_MAX_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class Limit:
    """The limits of one scope; ``None`` means no limit for that period."""

    scope: str
    daily_usd: float | None = None
    monthly_usd: float | None = None
    reset_day: int = 1

    def off(self) -> list[BudgetWindow]:
        """The windows whose limit is 0: a kill switch that refuses every request of the scope."""
        return [window for window, cap in self.caps() if cap == 0]

    def caps(self) -> list[tuple[BudgetWindow, float]]:
        """(window, limit USD) for each window that has a limit, daily first."""
        caps: list[tuple[BudgetWindow, float]] = []
        if self.daily_usd is not None:
            caps.append(("daily", self.daily_usd))
        if self.monthly_usd is not None:
            caps.append(("monthly", self.monthly_usd))
        return caps

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.daily_usd is not None:
            out["daily_usd"] = self.daily_usd
        if self.monthly_usd is not None:
            out["monthly_usd"] = self.monthly_usd
        if self.reset_day != 1:
            out["reset_day"] = self.reset_day
        return out


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    """Every budget setting. Build with :func:`load_budget_config`; change with :meth:`with_limit`."""

    limits: Mapping[str, Limit] = field(default_factory=dict)
    thresholds_pct: tuple[float, ...] = DEFAULT_THRESHOLDS_PCT
    webhook_url: str | None = None
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    default_max_tokens: int = DEFAULT_MAX_TOKENS

    def limits_for(self, scopes: tuple[str, ...]) -> list[Limit]:
        """The limits that apply to a request belonging to ``scopes``."""
        return [self.limits[s] for s in scopes if s in self.limits]

    def with_limit(
        self,
        scope: str,
        *,
        # (a keyword-only signature: `duplicates` pairs it by shape with others; nothing is repeated)
        daily_usd: float | None = None,
        monthly_usd: float | None = None,
        reset_day: int | None = None,
    ) -> BudgetConfig:
        """A copy with the given limits of ``scope`` changed (others kept); validated."""
        _not_a_shortcut(scope)
        current = self.limits.get(scope) or Limit(parse_scope(scope))
        limit = Limit(
            scope,
            _usd(daily_usd, "daily limit", zero_ok=True) if daily_usd is not None else current.daily_usd,
            _usd(monthly_usd, "monthly limit", zero_ok=True) if monthly_usd is not None else current.monthly_usd,
            reset_day if reset_day is not None else current.reset_day,
        )
        _check_limit(limit)
        return replace(self, limits={**self.limits, scope: limit})

    def without_limit(self, scope: str) -> BudgetConfig:
        """A copy with no limit for ``scope``."""
        return replace(self, limits={s: lim for s, lim in self.limits.items() if s != scope})

    def to_json(self) -> dict[str, Any]:
        return {
            "limits": {scope: lim.to_json() for scope, lim in sorted(self.limits.items())},
            "thresholds_pct": list(self.thresholds_pct),
            "webhook_url": self.webhook_url,
            "stale_after_s": self.stale_after_s,
            "default_max_tokens": self.default_max_tokens,
        }


#: the kinds of scope besides ``global``
SCOPE_KINDS = ("app", "model", "key")


def parse_scope(scope: str) -> str:
    """Validate a scope string (``global``, ``app:<name>``, ``model:<id>``, ``key:<key_id>``)."""
    if scope == "global":
        return scope
    kind, _, name = scope.partition(":")
    if kind not in SCOPE_KINDS or not name.strip():
        raise ConfigError(f"invalid budget scope {scope!r}: use global, app:<name>, model:<id> or key:<key_id>")
    return scope


def _not_a_shortcut(scope: str) -> None:
    """A limit being set on ``model:<id>:nitro`` would never count anything (a shortcut's spend is
    its model's): said when it is set. One already in a file is only never met: refusing it as the
    file loads would refuse every request."""
    kind, _, name = scope.partition(":")
    shortcut = split_shortcut(name) if kind == "model" else None
    if shortcut is not None:
        raise ConfigError(f"invalid budget scope {scope!r}: :{shortcut[1]} is a routing shortcut of "
                          f"{shortcut[0]}, whose limit covers it: use model:{shortcut[0]}")


def _usd(value: object, what: str, *, zero_ok: bool = False) -> float | None:
    """A positive finite amount (``zero_ok``: or 0, a limit's kill switch); ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"invalid {what}: {value!r} is not an amount in USD")
    try:
        amount = float(value)
    except ValueError:
        raise ConfigError(f"invalid {what}: {value!r} is not an amount in USD") from None
    if zero_ok and amount == 0:
        return 0.0
    if not math.isfinite(amount) or amount <= 0:
        also = " (or 0, to refuse every request)" if zero_ok else ""
        raise ConfigError(f"invalid {what}: {value!r}; a limit must be a positive amount in USD{also}")
    return amount


def _check_limit(limit: Limit) -> None:
    parse_scope(limit.scope)
    if limit.daily_usd is None and limit.monthly_usd is None:
        raise ConfigError(f"budget for {limit.scope} has no limit: give --daily and/or --monthly")
    if not 1 <= limit.reset_day <= MAX_RESET_DAY:
        raise ConfigError(f"invalid reset day {limit.reset_day}: use 1..{MAX_RESET_DAY} (exists in every month)")


def _limit(scope: str, raw: object) -> Limit:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"budget limit for {scope!r} must be an object with daily_usd / monthly_usd")
    reset = raw.get("reset_day", 1)
    if not isinstance(reset, int) or isinstance(reset, bool):
        raise ConfigError(f"invalid reset day {reset!r} for {scope}: use 1..{MAX_RESET_DAY}")
    limit = Limit(parse_scope(scope), _usd(raw.get("daily_usd"), f"daily limit of {scope}", zero_ok=True),
                  _usd(raw.get("monthly_usd"), f"monthly limit of {scope}", zero_ok=True), reset)
    _check_limit(limit)
    return limit


def _thresholds(raw: object) -> tuple[float, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise ConfigError("budget thresholds_pct must be a non-empty list of percentages, e.g. [50, 80, 100]")
    values = []
    for item in raw:
        pct = _usd(item, "alert threshold")  # same rule: a positive finite number
        assert pct is not None
        values.append(pct)
    return tuple(sorted(set(values)))


def budget_config_from_json(raw: object) -> BudgetConfig:
    """Parse the ``budget`` section; raises :class:`ConfigError` with a one-line reason."""
    if raw is None:
        return BudgetConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("the budget section of config.json must be an object")
    limits_raw = raw.get("limits") or {}
    if not isinstance(limits_raw, Mapping):
        raise ConfigError("budget limits must be an object of scope -> limits")
    webhook = raw.get("webhook_url")
    if webhook is not None and (not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))):
        raise ConfigError(f"invalid webhook URL {webhook!r}: it must start with http:// or https://")
    stale = raw.get("stale_after_s", DEFAULT_STALE_AFTER_S)
    max_tokens = raw.get("default_max_tokens", DEFAULT_MAX_TOKENS)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ConfigError(f"invalid default_max_tokens {max_tokens!r}: use a positive integer")
    return BudgetConfig(
        limits={scope: _limit(scope, value) for scope, value in limits_raw.items()},
        thresholds_pct=_thresholds(raw.get("thresholds_pct", list(DEFAULT_THRESHOLDS_PCT))),
        webhook_url=webhook,
        stale_after_s=_usd(stale, "stale_after_s") or DEFAULT_STALE_AFTER_S,
        default_max_tokens=max_tokens,
    )


def read_config_document(path: Path) -> dict[str, Any]:
    """The whole ``config.json`` (empty when missing); :class:`CorruptConfig` naming it when unreadable."""
    try:
        text = path.read_bytes().decode()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CorruptConfig(f"cannot read {path} ({exc.strerror}): check its permissions") from None
    except UnicodeDecodeError:
        raise CorruptConfig(f"{path} is not valid JSON (not UTF-8 text): fix or remove it") from None
    try:
        document = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise CorruptConfig(f"{path} is not valid JSON (line {exc.lineno}): fix or remove it") from None
    if not isinstance(document, dict):
        raise CorruptConfig(f"{path} must hold a JSON object: fix or remove it")
    return document


def load_budget_config(config_path: Path) -> BudgetConfig:
    """The budget settings in ``config_path`` (defaults when the file or section is missing)."""
    return _budget_of(read_config_document(config_path), config_path)


def _budget_of(document: Mapping[str, Any], config_path: Path) -> BudgetConfig:
    try:
        return budget_config_from_json(document.get("budget"))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in {config_path}: fix it there, or with `hive budget set`)") from None


def save_budget_config(config_path: Path, config: BudgetConfig) -> int | None:
    """Write ``config`` as the ``budget`` section, keeping the rest of the file; atomic, mode
    ``0600``. Returns the file's previous mode when it was wider (it has been tightened), else None.
    (A change of what is there is :func:`update_budget_config`: it reads under the same lock.)"""
    return update_budget_config(config_path, lambda _current: config)[1]


def update_budget_config(config_path: Path, change: Callable[[BudgetConfig], BudgetConfig]) -> tuple[BudgetConfig, int | None]:
    """Read the budget settings, apply ``change`` and write the result, all under the config's lock,
    so two processes changing different scopes at once (two ``hive keys create``, a ``hive budget
    set``) both keep their change. Returns the saved settings and, as :func:`save_budget_config`,
    the previous mode when it was wider. ``change`` may raise to write nothing."""
    saved: list[BudgetConfig] = []

    def rewrite(section: object) -> object:
        saved.append(change(_budget_of({"budget": section}, config_path)))
        return saved[0].to_json()

    _, mode = update_config_section(config_path, "budget", rewrite)
    return saved[0], mode


def update_config_section(config_path: Path, section: str, change: Callable[[Any], Any]) -> tuple[Any, int | None]:
    """Read ``section`` of ``config.json``, apply ``change`` (its JSON in, the new JSON out) and write
    it back with the other sections as they were, all under the config's lock; atomic, mode
    ``0600``. Returns the new section and the file's previous mode when it was wider (tightened)."""
    # config.json lives at the root of its data directory, whose map names the lock
    with file_lock(DataDir(config_path.parent).config_lock):
        document = read_config_document(config_path)
        document[section] = new = change(document.get(section))
        try:
            mode: int | None = stat.S_IMODE(config_path.stat().st_mode)
        except FileNotFoundError:
            mode = None
        text = json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"
        with atomic_file(config_path, mode=PRIVATE_MODE) as sink:  # never readable by others
            sink.write(text.encode())
    return new, mode if mode is not None and mode & ~PRIVATE_MODE else None


class ConfigReader:
    """The budget settings of one ``config.json`` as a long-lived process sees them: re-read when
    the file changed (its mtime and size), so ``hive budget set`` applies to running processes at
    their next request, for the price of one ``stat`` (a few microseconds) when it did not."""

    def __init__(self, config_path: Path) -> None:
        self.path = config_path
        self._name = os.fspath(config_path)
        self._config = BudgetConfig()
        self._stamp: tuple[int, int] | None = None

    def get(self) -> BudgetConfig:
        """The current settings (defaults while the file does not exist)."""
        try:
            stat_ = os.stat(self._name)  # not Path.stat: a third of its cost, on every request
            stamp: tuple[int, int] | None = (stat_.st_mtime_ns, stat_.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._config = load_budget_config(self.path)
            self._stamp = stamp
        return self._config
