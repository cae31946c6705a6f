from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hive_core.errors import ConfigError, MissingApiKey
from hive_core.settings import DEFAULT_BASE_URL, SETTINGS, Settings
from tests.plugins.cli import BIN


def test_defaults_and_environment() -> None:
    s = Settings.from_env({"XDG_DATA_HOME": "/x"})
    assert s.data_dir == Path("/x/hive") and s.base_url == DEFAULT_BASE_URL and s.api_key is None
    s = Settings.from_env({"HIVE_DATA_DIR": "/d", "OPENROUTER_API_KEY": "sk-or-v1-abc", "HIVE_MAX_ATTEMPTS": "2",
                           "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1/", "HIVE_STORE_CONTENT": "yes"})
    assert (s.data_dir, s.max_attempts, s.base_url, s.store_content) == (Path("/d"), 2, "http://127.0.0.1:9/api/v1", True)
    assert s.require_api_key() == "sk-or-v1-abc"


def test_flags_override_environment_and_none_falls_through() -> None:
    s = Settings.from_env({"HIVE_DATA_DIR": "/env"}, data_dir="/flag", app=None)
    assert s.data_dir == Path("/flag") and s.app is None


@pytest.mark.parametrize(("var", "value", "message"), [
    ("HIVE_MAX_ATTEMPTS", "zero", "HIVE_MAX_ATTEMPTS: must be a number"),
    ("HIVE_MAX_ATTEMPTS", "0", "HIVE_MAX_ATTEMPTS: must be >= 1"),
    ("HIVE_READ_TIMEOUT", "0", "HIVE_READ_TIMEOUT: must be > 0"),
    ("OPENROUTER_BASE_URL", "openrouter.ai", "OPENROUTER_BASE_URL: must start with http"),
    ("HIVE_STORE_CONTENT", "maybe", "HIVE_STORE_CONTENT: must be true or false"),
    ("HIVE_DATA_DIR", "ftp://bucket/x", "HIVE_DATA_DIR: 'ftp://bucket/x' is a ftp:// URL; a data directory is a local "
                                        "path, s3://bucket/prefix"),
    ("HIVE_DATA_DIR", "abfs://container", "HIVE_DATA_DIR: 'abfs://container': write abfs:// as az://container/prefix"),
    ("HIVE_DATA_DIR", "s3://", "HIVE_DATA_DIR: 's3://' names no bucket"),
])
def test_bad_values_are_one_line_config_errors(var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({var: value})


def test_the_key_never_shows_itself() -> None:
    s = Settings(api_key="sk-or-v1-secret-value")
    assert "secret-value" not in repr(s) and "secret-value" not in str(s.api_key)
    with pytest.raises(MissingApiKey, match="OPENROUTER_API_KEY"):
        Settings().require_api_key()


def test_replace_validates_again() -> None:
    s = Settings(data_dir="/a")
    assert s.replace(app="x").app == "x" and s.replace(app="x").data_dir == Path("/a")
    with pytest.raises(ConfigError):
        s.replace(max_attempts=0)


def test_every_setting_has_a_variable_and_a_meaning() -> None:
    from dataclasses import fields

    assert [f.name for f in fields(Settings)] == list(SETTINGS)
    assert all(s.env.startswith(("HIVE_", "OPENROUTER_")) and s.meaning for s in SETTINGS.values())


def test_help_text_says_the_defaults_settings_use() -> None:
    """Defaults are typed once (in the field); the help text is generated from them."""
    defaults = Settings.from_env({"XDG_DATA_HOME": "/x"})
    for setting in SETTINGS.values():
        if setting.default is not None:
            assert getattr(defaults, setting.name) == setting.default
    assert SETTINGS["connect_timeout_s"].help == "seconds to establish a connection (default 10)"
    assert SETTINGS["store_content"].help.endswith("(default off)")
    assert SETTINGS["flush_max_events"].help.endswith("(default 50000)")
    assert SETTINGS["app"].help == SETTINGS["app"].meaning  # no default, nothing said
    assert SETTINGS["data_dir"].option_help == ("The data directory: events, rollups, rankings, catalog, state "
                                                "(default: $HIVE_DATA_DIR, else $XDG_DATA_HOME/hive, else "
                                                "~/.local/share/hive).")


@pytest.mark.parametrize(("bad", "kind"), [
    ("\n", "a line break"), ("\r", "a line break"), ("\x01", "a control character"), ("\x7f", "a control character"),
    (" ", "a space"), ("\t", "a space"), ("\u00e9", "a non-ASCII character"), ("\u2028", "a space"),
])
def test_a_key_that_cannot_be_a_header_is_refused_without_echo(bad: str, kind: str) -> None:
    """Such a key once reached httpx, whose error printed the whole Authorization header."""
    key = "sk-or-v1-0123456789abcdef" + bad + "LEAKTAIL0123456789"
    for build in (lambda: Settings(api_key=key), lambda: Settings.from_env({"OPENROUTER_API_KEY": key}),
                  lambda: Settings().replace(api_key=key)):
        with pytest.raises(ConfigError) as info:
            build()
        message = str(info.value)
        assert message.startswith("invalid setting OPENROUTER_API_KEY:") and kind in message
        assert "\n" not in message and "0123456789abcdef" not in message and "LEAKTAIL" not in message


def test_surrounding_whitespace_of_a_key_is_ignored() -> None:
    assert Settings(api_key="  sk-or-v1-abc\n").require_api_key() == "sk-or-v1-abc"


def test_a_url_is_never_taken_as_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``HIVE_DATA_DIR=s3://bucket/x`` once created a local folder named ``s3:``: now it is object
    storage, and a command not taught it refuses with one line (never a local write); an untested
    scheme's other spelling is refused with the one to use; a collapsed ``Path("s3://b")`` (``s3:/b``) is still the URL, while a drive-like or
    plain relative path is not a URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVE_", "OPENROUTER_", "AWS_", "AZURE_"))}
    for url, refusal in (("s3://bucket/x", "does not support object storage yet"),
                         ("az://container/p", "does not support object storage yet"),
                         ("gs://bucket/p", "does not support object storage yet"),
                         ("abfs://c@account.dfs.core.windows.net/p", "write abfs:// as az://container/prefix"),
                         ("gcs://bucket/p", "write gcs:// as gs://bucket/prefix")):
        done = subprocess.run([str(BIN / "hive"), "--data-dir", url, "budget", "set", "--daily", "1"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and refusal in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert str(Settings.from_env({}, data_dir=Path("s3://bucket/x")).data_dir) == "s3://bucket/x"
    assert list(tmp_path.iterdir()) == []
    assert Settings.from_env({}, data_dir="data/s3-mirror").data_dir == Path("data/s3-mirror")
    assert Settings.from_env({}, data_dir="C:/hive").data_dir == Path("C:/hive")
