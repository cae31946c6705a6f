"""DataDir: every path of the data directory, each inside it, each described in TREE (the README's tree)."""

from __future__ import annotations

import inspect
import re
from datetime import date
from pathlib import Path

import pytest

from hive_core.store.datadir import TREE, DataDir

ROOT = Path("/data")
DAY = date(2026, 2, 28)


def _paths() -> dict[str, Path]:
    """Every path DataDir hands out, by the name that hands it out (methods called with samples)."""
    where = DataDir(ROOT)
    samples = {"event_type": ("api_call",), "partition": ("api_call", DAY), "rollup_day": (DAY,),
               "rollup_month": ("2026-02", "totals"), "content_day": (DAY,), "lock": ("rollup",)}
    out: dict[str, Path] = {}
    for name, member in inspect.getmembers(DataDir):
        if name.startswith("_") or name == "root":
            continue
        out[name] = getattr(where, name)(*samples[name]) if callable(member) else getattr(where, name)
    return out


def _pattern(entry: str) -> re.Pattern[str]:
    """A TREE entry as a regular expression over relative paths (a folder also covers what is in it)."""
    text = re.escape(entry.rstrip("/"))
    text = text.replace(re.escape("YYYY-MM-DD"), r"\d{4}-\d{2}-\d{2}").replace(re.escape("YYYY-MM"), r"\d{4}-\d{2}")
    text = re.sub(r"<[^>]+>", "[^/]+", text.replace("\\<", "<").replace("\\>", ">"))
    text = re.sub(r"\\\{([^}]*)\\\}", lambda m: "(" + "|".join(m[1].split(",")) + ")", text)
    return re.compile(text + "(/.*)?")


PATHS = _paths()


@pytest.mark.parametrize("name", sorted(PATHS))
def test_every_path_is_inside_the_data_directory_and_in_the_tree(name: str) -> None:
    relative = PATHS[name].relative_to(ROOT).as_posix()
    # an entry, a file inside an entry's folder, or a folder an entry lies in
    prefixes = {"/".join(entry.split("/")[:n]) for entry, _meaning in TREE for n in range(1, entry.count("/") + 2)}
    assert any(_pattern(prefix).fullmatch(relative) for prefix in prefixes), f"DataDir.{name} ({relative}) is not in TREE: the README's tree would lack it"


def test_every_tree_entry_is_a_path_of_datadir() -> None:
    relatives = [p.relative_to(ROOT).as_posix() for p in PATHS.values()]
    for entry, meaning in TREE:
        assert meaning, entry
        pattern = _pattern(entry)
        assert any(pattern.fullmatch(r) for r in relatives) or entry.startswith("events/"), \
            f"TREE lists {entry}, but no DataDir member hands it out"


def test_paths_are_the_ones_on_disk_today() -> None:
    """The layout of existing data directories: moving any of these would orphan users' files."""
    where = DataDir(ROOT)
    assert where.partition("usage", DAY) == ROOT / "events/usage/date=2026-02-28"
    assert where.rollup_day(DAY) == ROOT / "rollups/daily/date=2026-02-28/part.parquet"
    assert where.rollup_month("2026-02", "days") == ROOT / "rollups/monthly/month=2026-02/days.parquet"
    assert where.rankings_file == ROOT / "rankings/rankings.parquet"
    assert where.catalog_file == ROOT / "catalog/models.json"
    assert where.content_day(DAY) == ROOT / "content/2026-02-28.jsonl"
    assert where.lock("rollup") == ROOT / "state/rollup.lock" and where.circuits_lock == ROOT / "state/circuits.lock"
    assert where.ledger == ROOT / "state/budget-ledger.sqlite3"
    assert where.config_lock == ROOT / ".config.json.lock"


def test_root_is_a_path() -> None:
    assert DataDir("rel/data").root == Path("rel/data")  # type: ignore[arg-type]
