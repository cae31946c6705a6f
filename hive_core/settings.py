"""The one typed settings object, built from flags and ``HIVE_*`` environment variables.

Every setting is documented in ``SETTINGS`` (name, environment variable, meaning); the README's
settings table and ``tests/test_docs.py`` are checked against it. Settings are passed in
explicitly; nothing reads the environment behind the caller's back.

A frozen dataclass validated by hand rather than a pydantic model: every CLI command builds one,
and importing pydantic alone costs more than the whole start-up budget of ``hive models recommend``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from hive_core.clock import Clock, as_of_clock, parse_instant, system_clock
from hive_core.errors import ConfigError, MissingApiKey
from hive_core.store.datadir import DataDir

__all__ = ["DEFAULT_BASE_URL", "SETTINGS", "Secret", "Settings", "default_data_dir"]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/hive``, else ``~/.local/share/hive``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hive"


class Secret:
    """A string that never shows itself in ``repr``/``str`` (so it cannot leak into logs or errors)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _number(kind: type, low: float | None = None, high: float | None = None, *, strict: bool = False) -> Callable[[object], Any]:
    def convert(value: object) -> Any:
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a number, not {value!r}") from None
        if low is not None and (number <= low if strict else number < low):
            raise ValueError(f"must be {'>' if strict else '>='} {low}")
        if high is not None and number > high:
            raise ValueError(f"must be <= {high}")
        return number

    return convert


def _url(value: object) -> str:
    text = str(value)
    if not text.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return text.rstrip("/")


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _instant(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return None if value is None else parse_instant(value.isoformat())
    return parse_instant(str(value))


def _secret(value: object) -> Secret | None:
    """An API key as a :class:`Secret`, checked: the message of a bad one never contains the key."""
    if value is None:
        return None
    secret = value if isinstance(value, Secret) else Secret(str(value))
    _check_key(secret.get_secret_value().strip())
    return secret


def _check_key(key: str) -> None:
    """Refuse a key that cannot go into an HTTP header as is: printable ASCII without spaces.

    Such a key (a pasted line break, a stray control character) once reached the HTTP library,
    whose error printed the whole ``Authorization`` header. Only the kind of character and its
    position are named here.
    """
    for position, char in enumerate(key, 1):
        if "!" <= char <= "~":
            continue
        if char in "\r\n":
            kind = "a line break"
        elif char.isspace():
            kind = "a space"
        elif char.isprintable():
            kind = "a non-ASCII character"
        else:
            kind = "a control character"
        raise ValueError(f"the key contains {kind} at position {position} of {len(key)} (the key is not shown); "
                         "copy it again from https://openrouter.ai/settings/keys")


@dataclass(frozen=True)
class Settings:
    """Everything configurable about Hive. Build with :meth:`from_env`."""

    data_dir: Path = field(default_factory=default_data_dir)
    api_key: Secret | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    app_url: str | None = None
    app_title: str | None = None
    app: str | None = None
    user: str | None = None
    store_content: bool = False
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    max_attempts: int = 4
    retry_max_wait_s: float = 30.0
    retry_total_s: float = 120.0
    flush_max_events: int = 50_000
    flush_max_age_s: float = 5.0
    as_of: datetime | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            convert = _CONVERTERS[item.name]
            try:
                value = convert(getattr(self, item.name))
            except ValueError as exc:
                raise ConfigError(f"invalid setting {SETTINGS[item.name][0]}: {exc}") from None
            object.__setattr__(self, item.name, value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from environment variables, then explicit overrides (flags) on top.

        ``None`` overrides are ignored, so CLI options that were not given fall through.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (var, _doc) in SETTINGS.items():
            if env.get(var, "") != "":
                values[name] = env[var]
        if "data_dir" not in values:
            values["data_dir"] = default_data_dir(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(SETTINGS)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (validated again)."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        values.update(changes)
        return Settings(**values)

    def require_api_key(self) -> str:
        """The API key in clear, for the HTTP header only; raises :class:`MissingApiKey`."""
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            raise MissingApiKey()
        return self.api_key.get_secret_value().strip()

    @property
    def clock(self) -> Clock:
        """The clock every "now"/"today" decision uses: the system's, or one started at ``as_of``."""
        return system_clock if self.as_of is None else as_of_clock(self.as_of)

    def now(self) -> datetime:
        """The current instant on :attr:`clock` (aware, UTC)."""
        return self.clock()

    @property
    def datadir(self) -> DataDir:
        """Every path inside the data directory (:class:`hive_core.store.datadir.DataDir`)."""
        return DataDir(self.data_dir)

    # The old names of DataDir's paths, until their last users (jobs, hive_cli, tests, bench) ask
    # ``settings.datadir``: no new callers.
    @property
    def events_dir(self) -> Path:
        return self.datadir.events

    @property
    def rollups_dir(self) -> Path:
        return self.datadir.rollups

    @property
    def rankings_dir(self) -> Path:
        return self.datadir.rankings

    @property
    def state_dir(self) -> Path:
        return self.datadir.state

    @property
    def catalog_path(self) -> Path:
        return self.datadir.catalog_file

    @property
    def cache_dir(self) -> Path:
        return self.datadir.cache

    @property
    def config_path(self) -> Path:
        return self.datadir.config_file


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "data_dir": lambda v: Path(v).expanduser(),
    "api_key": _secret,
    "base_url": _url,
    "app_url": _optional_str,
    "app_title": _optional_str,
    "app": _optional_str,
    "user": _optional_str,
    "store_content": _bool,
    "connect_timeout_s": _number(float, 0, strict=True),
    "read_timeout_s": _number(float, 0, strict=True),
    "max_attempts": _number(int, 1, 20),
    "retry_max_wait_s": _number(float, 0),
    "retry_total_s": _number(float, 0, strict=True),
    "flush_max_events": _number(int, 1),
    "flush_max_age_s": _number(float, 0, strict=True),
    "as_of": _instant,
}

#: setting -> (environment variable, meaning). The single source for docs and ``from_env``.
SETTINGS: dict[str, tuple[str, str]] = {
    "data_dir": ("HIVE_DATA_DIR", "data directory (events, rollups, rankings, catalog, state)"),
    "api_key": ("OPENROUTER_API_KEY", "OpenRouter API key; never written anywhere"),
    "base_url": ("OPENROUTER_BASE_URL", f"OpenRouter API base URL (default {DEFAULT_BASE_URL})"),
    "app_url": ("HIVE_APP_URL", "sent as HTTP-Referer for OpenRouter app attribution"),
    "app_title": ("HIVE_APP_TITLE", "sent as X-Title for OpenRouter app attribution"),
    "app": ("HIVE_APP", "app name recorded on every event (and budget scope)"),
    "user": ("HIVE_USER", "user name recorded on every event"),
    "store_content": ("HIVE_STORE_CONTENT", "opt in to keeping prompt/response text (default off)"),
    "connect_timeout_s": ("HIVE_CONNECT_TIMEOUT", "seconds to establish a connection (default 10)"),
    "read_timeout_s": ("HIVE_READ_TIMEOUT", "seconds to wait between bytes of an answer (default 120)"),
    "max_attempts": ("HIVE_MAX_ATTEMPTS", "HTTP attempts per request including the first (default 4)"),
    "retry_max_wait_s": ("HIVE_RETRY_MAX_WAIT", "cap on one backoff wait in seconds (default 30)"),
    "retry_total_s": ("HIVE_RETRY_TOTAL", "cap on all attempts of one request in seconds (default 120)"),
    "flush_max_events": ("HIVE_FLUSH_EVENTS", "events buffered before the log flushes (default 50000)"),
    "flush_max_age_s": ("HIVE_FLUSH_AGE", "seconds an event may wait in the buffer (default 5)"),
    "as_of": ("HIVE_AS_OF", "act as if the UTC clock read this ISO instant at start (reports, rollups, "
                            "budgets, backfills; `--as-of`); requests are refused under it"),
}
