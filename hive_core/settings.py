"""The one typed settings object, built from flags and ``HIVE_*`` environment variables.

The registry is the class itself: each field of :class:`Settings` is declared once with its
environment variable, default, meaning and converter (:func:`_setting`), and :data:`SETTINGS` reads
them back as :class:`Setting` rows. ``from_env``, validation, the README's settings table and the
help text (``Setting.help``: "... (default 10)") all come from those rows, so no default is typed
twice. Settings are passed in explicitly; nothing reads the environment behind the caller's back.

A frozen dataclass validated by hand rather than a pydantic model: every CLI command builds one,
and importing pydantic alone costs more than the whole start-up budget of ``hive models recommend``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from hive_core.clock import Clock, as_of_clock, parse_instant, system_clock
from hive_core.errors import ConfigError, MissingApiKey
from hive_core.store.datadir import DataDir

__all__ = ["DEFAULT_BASE_URL", "SETTINGS", "Secret", "Setting", "Settings", "default_data_dir", "location"]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
T = TypeVar("T")


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


#: ``s3://b/x``, ``gs://...``, also after ``Path`` collapsed its ``//`` (``s3:/b/x``); one-letter
#: "schemes" are Windows drives
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def location(value: object) -> Path:
    """A local path, or for ``s3://bucket/prefix`` an :class:`~hive_core.store.objects.ObjectPath`
    (typed as the ``Path`` it stands in for: see that module). Any other URL is refused with one line,
    never taken as a relative path: that silently created a local folder named ``s3:``."""
    text = str(value)  # an ObjectPath (Settings.replace) reads back as its URL
    if _URL.match(text):
        from hive_core.store.objects import parse_url

        try:
            return parse_url(text)  # type: ignore[return-value]
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return Path(text).expanduser()


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
          "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4, "tb": 1000**4, "tib": 1024**4}
#: below this DuckDB cannot run the rollup's queries at all
MIN_MEMORY_LIMIT = 64 * 1000**2


def default_memory_limit() -> int:
    """A quarter of the machine's RAM: the jobs share it with the apps that write events."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return 2 * 1000**3


def _memory(value: object) -> int:
    """``4GB``, ``512MiB``, ``1.5g`` or a number of bytes."""
    if isinstance(value, int):
        number = value
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(value))
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _UNITS:
            raise ValueError(f"must be a size such as 4GB, 512MiB or a number of bytes, not {value!r}")
        number = int(float(match.group(1)) * _UNITS[unit])
    if number < MIN_MEMORY_LIMIT:
        raise ValueError(f"must be at least {MIN_MEMORY_LIMIT // 1000**2}MB")
    return number


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


def _setting(env: str, default: T, meaning: str, convert: Callable[[Any], Any], *, secret: bool = False) -> T:
    """A :class:`Settings` field declared with its registry row: environment variable, default,
    meaning and converter (read back as a :class:`Setting` in :data:`SETTINGS`)."""
    return field(default=default, repr=not secret, metadata=_row(env, meaning, convert))


def _row(env: str, meaning: str, convert: Callable[[Any], Any], shown: str | None = None) -> dict[str, Any]:
    return {"env": env, "meaning": meaning, "convert": convert, "shown": shown}


@dataclass(frozen=True)
class Settings:
    """Everything configurable about Hive. Build with :meth:`from_env`. Each field is a row of the
    registry: ``_setting(environment variable, default, meaning, converter)``. (``_setting`` returns a
    ``dataclasses.field``, not a shared default: hence the two ``noqa: RUF009``.)"""

    data_dir: Path = field(default_factory=default_data_dir, metadata=_row(
        "HIVE_DATA_DIR", "the data directory: events, rollups, rankings, catalog, state", location,
        shown="$XDG_DATA_HOME/hive, else ~/.local/share/hive"))
    api_key: Secret | None = _setting("OPENROUTER_API_KEY", None, "OpenRouter API key; never written anywhere",  # noqa: RUF009
                                      _secret, secret=True)
    base_url: str = _setting("OPENROUTER_BASE_URL", DEFAULT_BASE_URL, "OpenRouter API base URL", _url)
    app_url: str | None = _setting("HIVE_APP_URL", None, "sent as HTTP-Referer for OpenRouter app attribution",
                                   _optional_str)
    app_title: str | None = _setting("HIVE_APP_TITLE", None, "sent as X-Title for OpenRouter app attribution",
                                     _optional_str)
    app: str | None = _setting("HIVE_APP", None, "app name recorded on every event (and budget scope)", _optional_str)
    user: str | None = _setting("HIVE_USER", None, "user name recorded on every event", _optional_str)
    store_content: bool = _setting("HIVE_STORE_CONTENT", False, "opt in to keeping prompt/response text", _bool)
    connect_timeout_s: float = _setting("HIVE_CONNECT_TIMEOUT", 10.0, "seconds to establish a connection",
                                        _number(float, 0, strict=True))
    read_timeout_s: float = _setting("HIVE_READ_TIMEOUT", 120.0, "seconds to wait between bytes of an answer",
                                     _number(float, 0, strict=True))
    max_attempts: int = _setting("HIVE_MAX_ATTEMPTS", 4, "HTTP attempts per request including the first",
                                 _number(int, 1, 20))
    retry_max_wait_s: float = _setting("HIVE_RETRY_MAX_WAIT", 30.0, "cap on one backoff wait in seconds",
                                       _number(float, 0))
    retry_total_s: float = _setting("HIVE_RETRY_TOTAL", 120.0, "cap on all attempts of one request in seconds",
                                    _number(float, 0, strict=True))
    flush_max_events: int = _setting("HIVE_FLUSH_EVENTS", 50_000, "events buffered before the log flushes",
                                     _number(int, 1))
    flush_max_age_s: float = _setting("HIVE_FLUSH_AGE", 5.0, "seconds an event may wait in the buffer",
                                      _number(float, 0, strict=True))
    memory_limit: int = field(default_factory=default_memory_limit, metadata=_row(
        "HIVE_MEMORY_LIMIT", "memory the batch jobs may use (DuckDB's memory_limit, the rollup's batches), "
        "e.g. 4GB", _memory, shown="a quarter of the RAM"))
    ledger_url: str | None = _setting(
        "HIVE_LEDGER_URL", None, "the budget ledger on PostgreSQL, shared by several hosts "
        "(postgresql://user:password@host:port/db); unset: SQLite in the data directory", _optional_str, secret=True)
    as_of: datetime | None = _setting(  # noqa: RUF009
        "HIVE_AS_OF", None, "act as if the UTC clock read this ISO instant at start (reports, rollups, budgets, "
        "backfills; `--as-of`); requests are refused under it", _instant)

    def __post_init__(self) -> None:
        for setting in SETTINGS.values():
            try:
                value = setting.convert(getattr(self, setting.name))
            except ValueError as exc:
                raise ConfigError(f"invalid setting {setting.env}: {exc}") from None
            object.__setattr__(self, setting.name, value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from environment variables, then explicit overrides (flags) on top.

        ``None`` overrides are ignored, so CLI options that were not given fall through.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS.values():
            if env.get(setting.env, "") != "":
                values[setting.name] = env[setting.env]
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

    def require_real_clock(self) -> None:
        """Refuse a moved clock where requests are sent: they are recorded at the real time, so
        ``--as-of`` / ``HIVE_AS_OF`` would be half-applied (budget days, not event times)."""
        if self.as_of is not None:
            raise ConfigError("--as-of / HIVE_AS_OF is for reports and batch jobs; requests are always "
                              "recorded at the real time (unset it to send requests)")

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


@dataclass(frozen=True)
class Setting:
    """One row of the registry: a :class:`Settings` field, its environment variable, its default
    and what it means. The README's settings table and help text are printed from these."""

    name: str
    env: str
    meaning: str
    default: Any
    convert: Callable[[Any], Any] = field(repr=False, compare=False)
    #: how a computed default reads (the data directory's)
    default_text: str | None = None

    @property
    def shown_default(self) -> str | None:
        """The default as help text prints it; ``None`` when there is none worth printing."""
        if self.default_text is not None or self.default is None:
            return self.default_text
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    @property
    def help(self) -> str:
        """``<meaning> (default <value>)``: the README's table and ``--help`` print this."""
        shown = self.shown_default
        return self.meaning if shown is None else f"{self.meaning} (default {shown})"

    @property
    def option_help(self) -> str:
        """Help of the CLI flag that overrides this setting: what it is, then what it falls back to."""
        shown = self.shown_default
        fallback = f"${self.env}" + ("" if shown is None else f", else {shown}")
        return f"{self.meaning[0].upper()}{self.meaning[1:]} (default: {fallback})."


#: name -> :class:`Setting`, in field order: the single source for ``from_env``, validation and docs
SETTINGS: dict[str, Setting] = {
    item.name: Setting(item.name, item.metadata["env"], item.metadata["meaning"],
                       None if item.default is MISSING else item.default, item.metadata["convert"],
                       item.metadata["shown"])
    for item in fields(Settings)
}
