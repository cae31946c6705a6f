"""First use just works (issue 16 item 8): the catalog is fetched when missing, refreshed when a day
old, the last copy used offline, and nothing without a copy or a network says what to do - against the
emulator, without an API key, on an injected clock (library) and the settings' clock (CLI)."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hive_core.catalog.catalog import FETCHED_AT_KEY, load_catalog
from hive_core.catalog.fetch import MAX_AGE, age_text, ensure_catalog, sync_catalog
from hive_core.errors import CatalogError, CatalogMissing
from hive_core.settings import Settings
from hive_core.store.datadir import DataDir
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL, emu_settings

#: the instant the tests' clocks start from (never mixed with the wall clock: the library reads only these)
T0 = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)


def at(instant: datetime) -> Callable[[], datetime]:
    return lambda: instant


def closed_url() -> str:
    """An OpenRouter base URL on a local port nobody listens on: offline, without waiting on DNS."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


@pytest.fixture
def keyless(emulator: Any, tmp_path: Path) -> Settings:
    """Settings for the emulator with no API key at all: /models is public."""
    return emu_settings(emulator, tmp_path, api_key=None)


def test_first_use_fetches_once_with_a_notice(keyless: Settings) -> None:
    notices: list[str] = []
    catalog = ensure_catalog(keyless, now=at(T0), notice=notices.append)
    assert MODEL in catalog and catalog.fetched_at == T0
    assert notices == [f"fetched the model catalog ({len(catalog)} models) into {keyless.datadir.catalog_file}"]
    again = ensure_catalog(keyless, now=at(T0 + MAX_AGE - timedelta(minutes=1)), notice=notices.append)
    assert len(notices) == 1 and again.fetched_at == T0  # fresh: nothing fetched, nothing said
    document = json.loads(keyless.datadir.catalog_file.read_bytes())
    assert document[FETCHED_AT_KEY] == T0.isoformat() and len(document["data"]) == len(catalog)


def test_a_day_old_catalog_is_refreshed(keyless: Settings) -> None:
    notices: list[str] = []
    ensure_catalog(keyless, now=at(T0), notice=notices.append)
    later = T0 + MAX_AGE + timedelta(hours=1)
    refreshed = ensure_catalog(keyless, now=at(later), notice=notices.append)
    assert refreshed.fetched_at == later
    assert notices[1] == f"refreshed the model catalog ({len(refreshed)} models; the last copy was 25 h old)"


def test_offline_the_last_copy_is_used_with_a_warning(emulator_factory: Callable[..., Any], tmp_path: Path) -> None:
    emu = emulator_factory()
    settings = emu_settings(emu, tmp_path, api_key=None)
    notices: list[str] = []
    first = ensure_catalog(settings, now=at(T0), notice=notices.append)
    emu.stop()
    last = ensure_catalog(settings, now=at(T0 + timedelta(days=3)), notice=notices.append)
    assert last.fetched_at == T0 and len(last) == len(first)
    (warning,) = notices[1:]
    assert warning.startswith("warning: could not refresh the model catalog (cannot reach OpenRouter")
    assert warning.endswith("using the copy fetched 3 days ago") and "\n" not in warning


def test_a_clock_moved_back_counts_the_copy_as_fresh(keyless: Settings) -> None:
    ensure_catalog(keyless, now=at(T0), notice=print)
    notices: list[str] = []
    assert ensure_catalog(keyless, now=at(T0 - timedelta(days=30)), notice=notices.append).fetched_at == T0
    assert notices == []


def test_nothing_and_offline_says_what_to_do(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", base_url=closed_url(), connect_timeout_s=2.0)
    with pytest.raises(CatalogMissing, match=r"^no model catalog at .* fetching it failed .*: run `hive models sync`"):
        ensure_catalog(settings, now=at(T0), notice=print)


def test_a_broken_copy_is_replaced_and_offline_named(keyless: Settings, tmp_path: Path) -> None:
    path = keyless.datadir.catalog_file
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    notices: list[str] = []
    assert len(ensure_catalog(keyless, now=at(T0), notice=notices.append)) > 300
    assert notices[0].startswith("fetched the model catalog")
    path.write_text("{not json")
    offline = Settings(data_dir=keyless.data_dir, base_url=closed_url())
    with pytest.raises(CatalogError, match=r"is not JSON.*fetching a new one failed too"):
        ensure_catalog(offline, now=at(T0), notice=print)


def test_a_copy_hive_did_not_fetch_is_used_as_it_is(catalog_path: Path, tmp_path: Path) -> None:
    """A catalog placed by hand has no fetch time: it is the user's, never replaced behind their back."""
    settings = Settings(data_dir=tmp_path / "data", base_url=closed_url())
    settings.datadir.catalog_file.parent.mkdir(parents=True)
    shutil.copy(catalog_path, settings.datadir.catalog_file)
    notices: list[str] = []
    catalog = ensure_catalog(settings, now=at(T0 + timedelta(days=400)), notice=notices.append)
    assert catalog.fetched_at is None and MODEL in catalog and notices == []


def test_sync_needs_no_key(keyless: Settings) -> None:
    catalog = sync_catalog(keyless, now=at(T0))
    assert catalog.fetched_at == T0 and load_catalog(keyless.datadir.catalog_file).fetched_at == T0
    assert [p.name for p in keyless.datadir.catalog_file.parent.iterdir()] == ["models.json"]  # no temporaries


def test_age_text() -> None:
    assert (age_text(timedelta(hours=3)), age_text(timedelta(hours=47)), age_text(timedelta(days=9))) == (
        "3 h", "47 h", "9 days")


# -- the same through the CLI, as real processes ------------------------------------------------------

def keyless_env(emu: Any, data: Path) -> dict[str, str]:
    env = hive_env(emu, data)
    del env["OPENROUTER_API_KEY"]
    return env


def test_sync_needs_no_key_cli(emulator: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_cli("hive", ["models", "sync"], keyless_env(emulator, data))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("synced ") and load_catalog(DataDir(data).catalog_file).fetched_at is not None


def test_first_use_fetches_once_with_a_notice_cli(emulator: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = keyless_env(emulator, data)
    first = run_cli("hive", ["models", "recommend", "--task", "chat", "--json"], env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["primary"]
    assert first.stderr.startswith("fetched the model catalog (") and first.stderr.count("\n") == 1
    again = run_cli("hive", ["models", "list"], env)
    assert again.returncode == 0 and again.stderr == "" and MODEL in again.stdout


def test_nothing_and_offline_says_what_to_do_cli(emulator: Any, tmp_path: Path) -> None:
    env = {**keyless_env(emulator, tmp_path / "data"), "OPENROUTER_BASE_URL": closed_url()}
    for args in (["models", "list"], ["models", "info", MODEL], ["models", "recommend", "--task", "chat"],
                 ["models", "sync"]):
        done = run_cli("hive", args, env)
        assert done.returncode == 1 and done.stdout == "", (args, done.stderr)
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr and ("hive models sync" in done.stderr or args[1] == "sync")
