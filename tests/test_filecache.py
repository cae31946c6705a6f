"""The parse cache: JSON under the data directory's cache folder, plain values only, keyed by the
source's path, size and mtime; nothing written beside the source, nothing ever executed."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hive_core.store.datadir import DataDir
from hive_core.store.filecache import cache_file, cached_parse


def source(tmp_path: Path, text: str = "x") -> Path:
    path = tmp_path / "shared" / "data.bin"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def counting(value: Any) -> tuple[list[Path], Any]:
    calls: list[Path] = []

    def parse(path: Path) -> Any:
        calls.append(path)
        return value

    return calls, parse


def test_plain_values_round_trip(tmp_path: Path) -> None:
    # the shape the ranking table caches: tuple keys, tuples of numbers and None, plus the other plain types
    value = ({("chat", "a/b"): (10, 0.5, None, float("inf")), ("*", "c/d"): (0, None, None, 1.0)},
             "2026-12-31T23:59:00Z", [Decimal("0.00000018000000000000002"), date(2028, 2, 29),
                                      datetime(2026, 12, 31, 23, 59, tzinfo=UTC), frozenset({"x"}), True, {"k": []}])
    path, where = source(tmp_path), DataDir(tmp_path / "data").cache
    calls, parse = counting(value)
    assert cached_parse(path, 1, parse, cache_dir=where) == value
    assert cached_parse(path, 1, parse, cache_dir=where) == value
    assert len(calls) == 1
    assert [p.name for p in path.parent.iterdir()] == ["data.bin"]  # nothing beside the source


def test_key_is_path_size_mtime_and_version(tmp_path: Path) -> None:
    path, where = source(tmp_path), DataDir(tmp_path / "data").cache
    calls, parse = counting([1])
    cached_parse(path, 1, parse, cache_dir=where)
    cached_parse(path, 2, parse, cache_dir=where)  # a new format version
    os.utime(path, ns=(1, 1))
    cached_parse(path, 2, parse, cache_dir=where)  # a new mtime
    path.write_text("xy")
    os.utime(path, ns=(1, 1))
    cached_parse(path, 2, parse, cache_dir=where)  # a new size, same mtime
    other = tmp_path / "other.bin"
    other.write_text("xy")
    os.utime(other, ns=(1, 1))
    cached_parse(other, 2, parse, cache_dir=where)  # same size and mtime, another file
    assert len(calls) == 5
    assert cache_file(path, where) != cache_file(other, where)


def test_no_cache_dir_no_cache_and_unstorable_values(tmp_path: Path) -> None:
    path = source(tmp_path)
    calls, parse = counting([1])
    cached_parse(path, 1, parse)
    cached_parse(path, 1, parse)
    assert len(calls) == 2
    where = DataDir(tmp_path / "data").cache
    assert cached_parse(path, 1, lambda p: object, cache_dir=where) is object  # not storable: still correct
    assert not cache_file(path, where).exists()


def test_an_unwritable_cache_only_costs_speed(tmp_path: Path) -> None:
    path = source(tmp_path)
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    calls, parse = counting([1])
    assert cached_parse(path, 1, parse, cache_dir=DataDir(blocker).cache) == [1]
    assert cached_parse(path, 1, parse, cache_dir=DataDir(blocker).cache) == [1]
    assert len(calls) == 2
