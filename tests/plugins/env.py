"""Fixtures every test may use: a clean environment, a temporary data directory, the shared data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SHARED_OPENROUTER = SHARED / "data" / "openrouter"
#: where tests' requests go unless a test points them at the emulator: nothing listens there
CLOSED_BASE_URL = "http://127.0.0.1:9/api/v1"


def shared_path(*parts: str) -> Path:
    """A file under ../shared/data/openrouter; fails the test with a clear message when missing."""
    path = SHARED_OPENROUTER.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared beside the checkout (see README)")
    return path


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No HIVE_* or OPENROUTER_* variable leaks into a test from the developer's shell, spills
    (events a command could not write) go to a per-test state directory, never the real home, and
    OPENROUTER_BASE_URL is a closed local port."""
    for name in list(os.environ):
        if name.startswith(("HIVE_", "OPENROUTER_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state-home")))
    # the catalog is fetched on first use: a test that did not point Hive at the emulator must never
    # reach the real openrouter.ai (port 9, discard: refused at once on loopback)
    monkeypatch.setenv("OPENROUTER_BASE_URL", CLOSED_BASE_URL)
    yield


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data directory."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def catalog_path() -> Path:
    """The real /api/v1/models snapshot (339 models, June 2026)."""
    return shared_path("models-2026-06.json")


@pytest.fixture(scope="session")
def recordings_dir() -> Path:
    """Real recorded OpenRouter responses and SSE streams."""
    return shared_path("recordings")
