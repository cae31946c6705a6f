"""``hive-jobs prune`` on a real S3-compatible server (moto, tests/plugins/s3.py): old partitions' objects
go once their rollups hold them, never before; ``pruned.json`` first; range figures over pruned days
still come from the rollups."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hive_core.settings import Settings
from hive_core.store.datadir import DataDir
from hive_core.store.events import QualityRating
from hive_core.store.objects import as_object
from jobs.pipeline import rollup
from jobs.rollup.prune import MIN_KEEP_DAYS, load_pruned, prune
from jobs.rollup.state import SOURCES
from tests.cases import DAY0, day_events, write_events, write_history
from tests.plugins.cli import run_jobs

DAYS = 36
#: the instant every prune here runs at: DAYS days after the history starts (never the wall clock)
NOW = datetime(DAY0.year, DAY0.month, DAY0.day, 12, tzinfo=UTC) + timedelta(days=DAYS)
CUTOFF = NOW.date() - timedelta(days=MIN_KEEP_DAYS)
OLD = [DAY0 + timedelta(days=i) for i in range((CUTOFF - DAY0).days)]


@pytest.fixture
def store(s3_root: str) -> tuple[Settings, DataDir]:
    """:data:`DAYS` days of events in the bucket, rolled up, and a rating (a type prune keeps)."""
    settings = Settings.from_env({"HIVE_AS_OF": NOW.isoformat()}, data_dir=s3_root)
    write_history(settings.data_dir, days=DAYS, n=5)
    write_events(settings.data_dir, [QualityRating(ts=NOW - timedelta(days=DAYS - 1), request_id="r", score=1.0)],
                 writer="rating")
    rollup(settings)
    return settings, settings.datadir


def _rollup_bytes(data: DataDir) -> dict[str, bytes]:
    return {str(p)[len(str(data.rollups)) + 1:]: p.read_bytes()
            for p, _size in as_object(data.rollups).walk() if p.name.endswith(".parquet")}


def _has_events(data: DataDir, day: object) -> dict[str, bool]:
    return {t: bool(as_object(data.partition(t, day)).walk()) for t in SOURCES}  # type: ignore[arg-type]


def test_only_old_days_with_a_current_rollup_go(store: tuple[Settings, DataDir]) -> None:
    settings, data = store
    stale, missing = OLD[1], OLD[2]
    write_events(data.root, day_events(stale, n=2, seed=9), writer="late")  # a late event after the rollup
    data.rollup_day(missing).unlink()
    before = _rollup_bytes(data)

    report = prune(data, keep_days=MIN_KEEP_DAYS, now=NOW)

    assert report.cutoff == CUTOFF and report.pruned == [d for d in OLD if d not in (stale, missing)]
    assert [d for d, _ in report.refused] == [stale, missing]
    assert report.files_removed >= 2 * len(report.pruned) and report.bytes_removed > 0
    for day in report.pruned:
        assert _has_events(data, day) == dict.fromkeys(SOURCES, False)
    for day in (stale, missing, CUTOFF, NOW.date() - timedelta(days=1)):
        assert _has_events(data, day)["api_call"], day
    assert as_object(data.events / "quality_rating").walk()  # only the rolled-up types go
    assert _rollup_bytes(data) == before  # rollups untouched
    assert load_pruned(data) == frozenset(report.pruned)

    # the next rollup recomputes the two refused days, keeps the pruned ones as they were
    after = rollup(settings)
    assert sorted(after.rolled_up) == [stale, missing] and after.kept == []
    assert prune(data, keep_days=MIN_KEEP_DAYS, now=NOW).pruned == [stale, missing]


def test_range_figures_over_pruned_days_come_from_the_rollups(store: tuple[Settings, DataDir],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    settings, data = store
    args = ["--data-dir", str(data.root), "--as-of", NOW.isoformat(), "summary", "--period",
            f"{DAY0}..{CUTOFF - timedelta(days=1)}"]
    code, before, err = run_jobs(args, capsys)
    assert code == 0 and "requests" in before, err
    assert prune(data, keep_days=MIN_KEEP_DAYS, now=NOW).pruned == OLD
    assert rollup(settings).rolled_up == []
    code, after, _ = run_jobs(args, capsys)
    assert code == 0 and after == before


def test_a_killed_prune_never_makes_the_rollup_recompute_a_half_deleted_day(store: tuple[Settings, DataDir]) -> None:
    settings, data = store
    day = OLD[0]
    before = _rollup_bytes(data)
    # what a prune killed after listing the day and deleting one of its partitions leaves
    data.pruned_days.write_bytes(json.dumps({"days": [day.isoformat()]}).encode())
    as_object(data.partition("usage", day)).remove_tree()
    report = rollup(settings)
    assert day not in report.rolled_up and _rollup_bytes(data) == before
    # the next prune finishes the deletion, whatever its cutoff
    assert day in prune(data, keep_days=DAYS + 5, now=NOW).pruned
    assert _has_events(data, day) == dict.fromkeys(SOURCES, False)


def test_the_cli(store: tuple[Settings, DataDir], s3_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, data = store
    base = ["--data-dir", str(data.root), "--as-of", NOW.isoformat(), "prune", "--keep-days", str(MIN_KEEP_DAYS)]
    code, out, _ = run_jobs([*base, "--dry-run", "--json"], capsys)
    assert code == 0 and json.loads(out)["pruned"] == [d.isoformat() for d in OLD]
    assert _has_events(data, OLD[0])["api_call"]
    code, out, err = run_jobs(base, capsys)
    assert code == 0 and out.startswith(f"pruned {len(OLD)} day(s) of events before {CUTOFF} ({OLD[0]}..{OLD[-1]}): ")
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in out + err
    assert not any(_has_events(data, OLD[-1]).values())
