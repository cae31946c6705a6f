"""``hive-jobs prune``: old events go once their rollups hold them, never before, and a killed prune
never makes the rollup recompute a day from half-deleted partitions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hive_core.errors import ConfigError, DataError
from hive_core.settings import Settings
from hive_core.store.datadir import DataDir
from hive_core.store.events import QualityRating
from jobs.pipeline import rollup
from jobs.rollup.prune import MIN_KEEP_DAYS, load_pruned, prune
from jobs.rollup.state import SOURCES
from tests.cases import DAY0, day_events, write_events, write_history
from tests.plugins.cli import run_jobs

DAYS = 40
#: the instant every prune here runs at: DAYS days after the history starts (never the wall clock)
NOW = datetime(DAY0.year, DAY0.month, DAY0.day, 12, tzinfo=UTC) + timedelta(days=DAYS)
CUTOFF = NOW.date() - timedelta(days=MIN_KEEP_DAYS)
OLD = [DAY0 + timedelta(days=i) for i in range((CUTOFF - DAY0).days)]


def _store(tmp_path: Path) -> tuple[Settings, DataDir]:
    settings = Settings.from_env({}, data_dir=str(tmp_path / "data"))
    write_history(settings.data_dir, days=DAYS, n=20)
    write_events(settings.data_dir, [QualityRating(ts=NOW - timedelta(days=DAYS - 1), request_id="r", score=1.0)],
                 writer="rating")
    rollup(settings)
    return settings, settings.datadir


def _rollup_bytes(data: DataDir) -> dict[str, bytes]:
    return {str(p.relative_to(data.rollups)): p.read_bytes()
            for p in sorted(data.rollups.rglob("*.parquet"))}


def _has_events(data: DataDir, day: object) -> dict[str, bool]:
    return {t: data.partition(t, day).is_dir() for t in SOURCES}  # type: ignore[arg-type]


def test_only_old_days_with_a_current_rollup_go(tmp_path: Path) -> None:
    settings, data = _store(tmp_path)
    stale, missing = OLD[2], OLD[5]
    write_events(data.root, day_events(stale, n=2, seed=9), writer="late")  # a late event after the rollup
    data.rollup_day(missing).unlink()
    before = _rollup_bytes(data)

    report = prune(data, keep_days=MIN_KEEP_DAYS, now=NOW)

    assert report.cutoff == CUTOFF and report.pruned == [d for d in OLD if d not in (stale, missing)]
    assert [d for d, _ in report.refused] == [stale, missing]
    assert all("run `hive-jobs rollup --daily` first" in why for _, why in report.refused)
    for day in report.pruned:
        assert _has_events(data, day) == dict.fromkeys(SOURCES, False)
    for day in (stale, missing, CUTOFF, NOW.date() - timedelta(days=1)):
        assert all(_has_events(data, day).values()), day
    assert (data.events / "quality_rating").is_dir()  # only the rolled-up types go
    assert _rollup_bytes(data) == before  # rollups untouched
    assert load_pruned(data) == frozenset(report.pruned)

    # the next rollup recomputes the two refused days, keeps the pruned ones silently and as they were
    after = rollup(settings)
    assert sorted(after.rolled_up) == [stale, missing] and after.kept == []
    assert {k: v for k, v in _rollup_bytes(data).items() if not k.startswith(("monthly", f"daily/date={stale}"))} \
        == {k: v for k, v in before.items() if not k.startswith(("monthly", f"daily/date={stale}"))} | {
            f"daily/date={missing}/part.parquet": data.rollup_day(missing).read_bytes()}
    # ... and then they can go too
    assert prune(data, keep_days=MIN_KEEP_DAYS, now=NOW).pruned == [stale, missing]


def test_range_figures_over_pruned_days_come_from_the_rollups(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    settings, data = _store(tmp_path)
    period = f"{DAY0}..{CUTOFF - timedelta(days=1)}"
    args = ["--data-dir", str(data.root), "summary", "--period", period]
    code, before, _ = run_jobs(args, capsys)
    assert code == 0 and "requests" in before
    prune(data, keep_days=MIN_KEEP_DAYS, now=NOW)
    rollup(settings)
    code, after, _ = run_jobs(args, capsys)
    assert code == 0 and after == before


def test_a_killed_prune_never_makes_the_rollup_recompute_a_half_deleted_day(tmp_path: Path) -> None:
    settings, data = _store(tmp_path)
    day = OLD[0]
    before = _rollup_bytes(data)
    # what a prune killed after listing the day and deleting one of its partitions leaves
    data.pruned_days.write_text(json.dumps({"days": [day.isoformat()]}))
    import shutil

    shutil.rmtree(data.partition("usage", day))
    report = rollup(settings)
    assert day not in report.rolled_up and _rollup_bytes(data) == before
    # the next prune finishes the deletion, whatever its cutoff
    assert day in prune(data, keep_days=DAYS + 5, now=NOW).pruned
    assert _has_events(data, day) == dict.fromkeys(SOURCES, False)


def test_an_unreadable_pruned_list_stops_the_rollup(tmp_path: Path) -> None:
    settings, data = _store(tmp_path)
    data.pruned_days.write_text("{not json")
    with pytest.raises(DataError, match=r"pruned.json cannot be read .*restore it from a backup"):
        rollup(settings)


def test_every_event_pruned_is_not_an_unmounted_disk(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path / "data"))
    write_history(settings.data_dir, days=3, n=5)
    rollup(settings)
    data = settings.datadir
    report = prune(data, keep_days=MIN_KEEP_DAYS, now=datetime(DAY0.year, DAY0.month, DAY0.day, tzinfo=UTC)
                   + timedelta(days=MIN_KEEP_DAYS + 3))
    assert len(report.pruned) == 3
    again = rollup(settings)
    assert again.rolled_up == [] and again.kept == []


def test_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, data = _store(tmp_path)
    base = ["--data-dir", str(data.root), "prune"]
    code, _, err = run_jobs([*base, "--keep-days", "7"], capsys)
    assert code == 2 and "7 is not in the range x>=32" in err
    with pytest.raises(ConfigError, match="too short"):
        prune(data, keep_days=7, now=NOW)
    code, out, _ = run_jobs(["--as-of", NOW.isoformat(), *base, "--keep-days", str(MIN_KEEP_DAYS), "--dry-run",
                             "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["pruned"] == [d.isoformat() for d in OLD] and doc["files_removed"] == 0
    assert all(_has_events(data, OLD[0]).values())
    code, out, _ = run_jobs(["--as-of", NOW.isoformat(), *base, "--keep-days", str(MIN_KEEP_DAYS)], capsys)
    assert code == 0 and out.startswith(f"pruned {len(OLD)} day(s) of events before {CUTOFF} ({OLD[0]}..{OLD[-1]}): ")
