"""The one typed settings object, built from flags and ``HIVE_*`` environment variables.

Every setting is documented in ``SETTINGS`` (name, environment variable, meaning); the README's
settings table and ``tests/test_docs.py`` are checked against it. Settings are passed in
explicitly; nothing reads the environment behind the caller's back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from hive_core.errors import ConfigError, MissingApiKey

__all__ = ["DEFAULT_BASE_URL", "SETTINGS", "Settings", "default_data_dir"]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/hive``, else ``~/.local/share/hive``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hive"


class Settings(BaseModel):
    """Everything configurable about Hive. Build with :meth:`from_env`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    app_url: str | None = None
    app_title: str | None = None
    app: str | None = None
    user: str | None = None
    store_content: bool = False
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)
    retry_max_wait_s: float = Field(default=30.0, ge=0)
    retry_total_s: float = Field(default=120.0, gt=0)
    flush_max_events: int = Field(default=50_000, ge=1)
    flush_max_age_s: float = Field(default=5.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from environment variables, then explicit overrides (flags) on top.

        ``None`` overrides are ignored, so CLI options that were not given fall through.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (var, _doc) in SETTINGS.items():
            if var in env and env[var] != "":
                values[name] = env[var]
        if "data_dir" not in values:
            values["data_dir"] = default_data_dir(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "?"
            var = SETTINGS.get(field, (field, ""))[0]
            raise ConfigError(f"invalid setting {var}: {first['msg']}") from None

    def require_api_key(self) -> str:
        """The API key in clear, for the HTTP header only; raises :class:`MissingApiKey`."""
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            raise MissingApiKey()
        return self.api_key.get_secret_value().strip()

    # Paths inside the data directory, in one place.
    @property
    def events_dir(self) -> Path:
        return self.data_dir / "events"

    @property
    def rollups_dir(self) -> Path:
        return self.data_dir / "rollups"

    @property
    def rankings_dir(self) -> Path:
        return self.data_dir / "rankings"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog" / "models.json"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "config.json"


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
}
