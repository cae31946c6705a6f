from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hive_core.store.events import EVENT_TYPES, arrow_schema
from hive_core.store.schema_cache import cache_path, event_schemas

REPO = Path(__file__).resolve().parents[1]


def test_cached_schemas_equal_the_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    event_schemas.cache_clear()
    first = event_schemas()  # built from the classes, written to the cache
    assert cache_path().exists()
    event_schemas.cache_clear()
    again = event_schemas()  # read back from the cache
    for name, cls in EVENT_TYPES.items():
        assert first[name].equals(arrow_schema(cls), check_metadata=True)
        assert again[name].equals(arrow_schema(cls), check_metadata=True)
    event_schemas.cache_clear()


def test_a_corrupt_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    event_schemas.cache_clear()
    path = cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not arrow")
    assert event_schemas()["api_call"].equals(arrow_schema(EVENT_TYPES["api_call"]))
    event_schemas.cache_clear()


def test_readers_do_not_import_pydantic_once_cached(tmp_path: Path) -> None:
    code = ("import sys, pathlib\nimport queries\n"
            "queries.connect(pathlib.Path(sys.argv[1])).close()\n"
            "print('pydantic' in sys.modules)\n")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                           env=env, cwd=REPO, check=True).stdout.strip() for _ in range(2)]
    assert runs == ["True", "False"]  # the first run builds the cache from the classes
