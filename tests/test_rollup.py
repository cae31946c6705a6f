"""The daily rollup: exact single-day percentiles, mergeable ranges, idempotence, incrementality,
rebuild == incremental, the lock, an empty store and a corrupt file. Library and CLI (TestCli)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hive_core.errors import DataError, LockHeld
from hive_core.settings import Settings
from hive_core.store.datadir import DataDir
from hive_core.store.events import ApiCall, Usage, arrow_schema
from hive_core.store.lock import job_lock
from jobs.pipeline import rollup
from jobs.rollup.monthly import merge_by, read_models
from jobs.rollup.state import FORMAT
from tests.cases import DAY0, day_events, write_events, write_history
from tests.faults import fill, read_only
from tests.plugins.cli import run_jobs


def snapshot(data_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every rollup file's bytes and mtime."""
    root = DataDir(data_dir).rollups
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*.parquet"))}


def exact_percentiles(data_dir: Path) -> dict[tuple[Any, ...], tuple[float, ...]]:
    """Independent of Hive: plain DuckDB over the raw files, quantile_cont over successful attempts."""
    sql = f"""
        select cast(ts at time zone 'UTC' as date), coalesce(served_model, model), provider, request_type, task_category,
               quantile_cont(latency_ms, [0.5, 0.95, 0.99]), quantile_cont(ttft_ms, [0.5, 0.95, 0.99])
        from read_parquet('{data_dir}/events/api_call/*/*.parquet') where status = 'ok' group by all"""
    return {tuple(r[:5]): (*r[5], *(r[6] or [None] * 3)) for r in duckdb.connect().sql(sql).fetchall()}


def outputs(data_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every file the rollup and its ranking step own (state included): bytes and mtime."""
    datadir = DataDir(data_dir)
    return {str(p.relative_to(data_dir)): (p.read_bytes(), p.stat().st_mtime_ns)
            for sub in (datadir.rollups, datadir.rankings) for p in sorted(sub.rglob("*")) if p.is_file()}


def cost_by_day(settings: Settings, dates: list[date]) -> dict[date, float]:
    """What the reports read: rollup rows for a range (the files, or the events for stale days)."""
    from jobs.rollup.period_rows import fine_rows, model_rows

    rows = fine_rows(settings, dates[0], dates[-1])
    models = model_rows(settings, dates[0], dates[-1])
    assert rows is not None and models is not None
    total = sum(models["cost_usd"].to_pylist())
    by_day: dict[date, float] = {}
    for row in rows.select(["day", "cost_usd"]).to_pylist():
        by_day[row["day"]] = by_day.get(row["day"], 0.0) + row["cost_usd"]
    assert total == pytest.approx(sum(by_day.values()), rel=1e-9)
    return {d: round(v, 9) for d, v in by_day.items()}


def plant_foreign(data_dir: Path, kind: str, ts: datetime, partition: date | None = None) -> Path:
    """A foreign writer's file (pyarrow, bypassing Hive's writer): rows of ``kind`` dated ``ts``, in
    the partition of ``ts``'s day (or ``partition``). Returns the partition directory."""
    template = next(DataDir(data_dir).event_type(kind).rglob("*.parquet"))
    table = pq.read_table(template).slice(0, 3)
    ts_type = table.schema.field("ts").type
    table = table.set_column(table.schema.get_field_index("ts"), "ts", pa.array([ts] * 3, ts_type))
    directory = DataDir(data_dir).partition(kind, partition or ts.date())
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, directory / f"foreign-{ts.year:04d}-000001.parquet")
    return directory


def _write_and_hang(target: Path, ready: Any) -> None:
    from hive_core.store.atomic import atomic_file

    with atomic_file(target) as sink:
        sink.write(b"PAR1 half a rollup file")
        sink.flush()
        ready.set()
        time.sleep(60)


def killed_mid_write(target: Path, fork_ctx: Any) -> Path:
    """Start a writer of ``target`` (the rollup's atomic write), SIGKILL it mid-file; its temporary."""
    ready = fork_ctx.Event()
    child = fork_ctx.Process(target=_write_and_hang, args=(target, ready))
    child.start()
    try:
        assert ready.wait(20)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.is_alive():
            child.kill()
        child.join(20)
    (tmp,) = target.parent.glob(f".{target.name}.{child.pid}.*.tmp")
    return tmp


@pytest.fixture
def full_disk_settings(tmp_path: Path) -> Iterator[tuple[Settings, Path]]:
    """A data directory on its own small tmpfs (root only), and that tmpfs (:func:`tests.faults.fill` it)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN)")
    try:
        (mount / "data").mkdir()
        yield Settings(data_dir=mount / "data"), mount
    finally:
        subprocess.run(["umount", str(mount)], check=True, capture_output=True)


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


def test_single_day_percentiles_equal_exact_quantile_cont(settings: Settings) -> None:
    write_history(settings.data_dir)
    rollup(settings)
    exact = exact_percentiles(settings.data_dir)
    rows = [r for d in (DAY0, DAY0 + timedelta(days=1), DAY0 + timedelta(days=2))
            for r in pq.read_table(settings.datadir.rollup_day(d)).to_pylist()]
    checked = 0
    for row in rows:
        key = (row["day"], row["model"], row["provider"], row["request_type"], row["task_category"])
        if row["successes"] == 0:
            continue
        ours = (row["latency_p50_ms"], row["latency_p95_ms"], row["latency_p99_ms"],
                row["ttft_p50_ms"], row["ttft_p95_ms"], row["ttft_p99_ms"])
        for got, want in zip(ours, exact[key], strict=True):
            assert got == want if want is None else got == pytest.approx(want, rel=1e-12), key
        checked += 1
    assert checked == len(exact) > 20


def test_rollup_counts_and_costs_match_the_events(settings: Settings) -> None:
    write_history(settings.data_dir)
    rollup(settings)
    con = duckdb.connect()
    ev = f"{settings.data_dir}/events"
    calls, ok, first = con.sql(f"select count(*), count(*) filter (status='ok'), count(distinct request_id) from '{ev}/api_call/*/*.parquet'").fetchall()[0]
    cost, tokens = con.sql(f"select sum(cost_usd), sum(prompt_tokens) from '{ev}/usage/*/*.parquet'").fetchall()[0]
    cancelled = con.sql(f"select count(*) filter (outcome='cancelled') from '{ev}/stream_outcome/*/*.parquet'").fetchall()[0][0]
    t = con.sql(f"select sum(attempts), sum(successes), sum(requests), sum(retries), sum(cost_usd), sum(prompt_tokens), "
                f"sum(streams_cancelled), sum(errors) from '{settings.datadir.rollups_daily}/*/part.parquet'").fetchall()[0]
    assert t == (calls, ok, first, calls - first, pytest.approx(cost, abs=1e-9), tokens, cancelled, calls - ok)


def test_range_percentiles_from_histograms_within_1pct(settings: Settings) -> None:
    write_history(settings.data_dir, days=4, n=150)
    rollup(settings)
    merged = {r["model"]: r for r in merge_by(read_models(settings.datadir, DAY0, DAY0 + timedelta(days=3)), ("model",)).to_pylist()}
    sql = f"""select coalesce(served_model, model), quantile_cont(latency_ms, [0.5, 0.95, 0.99]), quantile_cont(ttft_ms, [0.5, 0.95, 0.99])
              from read_parquet('{settings.data_dir}/events/api_call/*/*.parquet') where status='ok' group by all"""
    for model, lat, ttft in duckdb.connect().sql(sql).fetchall():
        row = merged[model]
        for ours, exact in zip((row["latency_p50_ms"], row["latency_p95_ms"], row["latency_p99_ms"],
                                row["ttft_p50_ms"], row["ttft_p95_ms"], row["ttft_p99_ms"]), (*lat, *ttft), strict=True):
            assert abs(ours - exact) <= 0.01 * exact, model


def test_merge_by_groups_sum_and_order_keys_with_nulls_first(settings: Settings) -> None:
    write_history(settings.data_dir, days=2, n=120)
    rollup(settings)
    fine = pa.concat_tables([pq.read_table(settings.datadir.rollup_day(d)) for d in (DAY0, DAY0 + timedelta(days=1))])
    merged = merge_by(fine, ("task_category", "model"))
    keys = list(zip(merged["task_category"].to_pylist(), merged["model"].to_pylist(), strict=True))
    expected: dict[tuple[Any, Any], int] = {}
    for row in fine.select(["task_category", "model", "attempts"]).to_pylist():
        key = (row["task_category"], row["model"])
        expected[key] = expected.get(key, 0) + row["attempts"]
    assert keys == sorted(expected, key=lambda k: tuple((v is not None, v) for v in k))
    assert dict(zip(keys, merged["attempts"].to_pylist(), strict=True)) == expected
    by_day = merge_by(fine, ("day", "model"))
    assert by_day["day"].to_pylist() == sorted(by_day["day"].to_pylist()) and by_day.num_rows == len(
        set(zip(fine["day"].to_pylist(), fine["model"].to_pylist(), strict=True)))


def test_group_percentiles_are_each_groups_merged_histogram(settings: Settings) -> None:
    """jobs.rollup.groups.percentiles (reports, suggestions) merges every group at once: the same
    figures as merging each group's histograms and reading them (NULL keys and empty histograms too)."""
    import numpy as np

    from jobs.rollup import histogram
    from jobs.rollup.groups import percentiles

    write_history(settings.data_dir, days=2, n=120)
    rollup(settings)
    fine = pa.concat_tables([pq.read_table(settings.datadir.rollup_day(d)) for d in (DAY0, DAY0 + timedelta(days=1))])
    empty = fine.slice(0, 1)
    for name in ("latency_buckets", "latency_counts"):
        column = empty[name]
        empty = empty.set_column(fine.schema.get_field_index(name), name, pa.array([[]], column.type))
    fine = pa.concat_tables([fine, empty.set_column(fine.schema.get_field_index("model"), "model", pa.array(["x/none"]))])
    qs = [0.5, 0.95, 0.99]
    for keys in (("model",), ("task_category", "model"), ("day", "model", "provider")):
        rows: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in fine.select([*keys, "latency_buckets", "latency_counts"]).to_pylist():
            rows.setdefault(tuple(row[k] for k in keys), []).append(row)
        expected = {key: histogram.quantile_cont(*histogram.merge([np.array(r["latency_buckets"]) for r in group],
                                                                  [np.array(r["latency_counts"]) for r in group]), qs)
                    for key, group in rows.items()}
        assert percentiles(fine, keys, qs) == expected
        assert any(k[0] is None for k in expected) or keys[0] != "task_category"
    assert percentiles(fine, ("model",), qs)[("x/none",)] == [None, None, None]
    assert percentiles(fine.slice(0, 0), ("model",), qs) == {}


def test_a_nan_latency_stays_out_of_percentiles_and_histograms(settings: Settings) -> None:
    """Hive's own events cannot carry one (latency_ms >= 0), a foreign writer's file can."""
    write_history(settings.data_dir, days=1)
    ts = datetime(DAY0.year, DAY0.month, DAY0.day, 12, tzinfo=UTC)
    write_events(settings.data_dir, [ApiCall(ts=ts, request_id="odd", attempt=1, model="acme/fast", served_model="acme/fast",
                                             provider="Acme", request_type="chat", task_category="chat", status="ok",
                                             http_status=200, latency_ms=5.0)], writer="foreign")
    (path,) = settings.datadir.event_type("api_call").rglob("foreign*.parquet")
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index("latency_ms"), "latency_ms", pa.array([float("nan")])), path)
    rollup(settings)
    row = next(r for r in pq.read_table(settings.datadir.rollup_day(DAY0)).to_pylist()
               if (r["model"], r["request_type"], r["task_category"]) == ("acme/fast", "chat", "chat"))
    assert row["latency_buckets"] == sorted(row["latency_buckets"])
    assert sum(row["latency_counts"]) == row["successes"] - 1
    sql = f"""select quantile_cont(latency_ms, 0.95) from read_parquet('{settings.data_dir}/events/api_call/*/*.parquet')
              where status = 'ok' and not isnan(latency_ms) and coalesce(served_model, model) = 'acme/fast'
              and request_type = 'chat' and task_category = 'chat'"""
    (exact,) = duckdb.connect().sql(sql).fetchall()[0]
    assert row["latency_p95_ms"] == pytest.approx(exact, rel=1e-12)


def test_second_run_changes_nothing(settings: Settings) -> None:
    write_history(settings.data_dir)
    first = rollup(settings)
    before = snapshot(settings.data_dir)
    time.sleep(0.01)
    second = rollup(settings)
    assert len(first.rolled_up) == 3 and second.rolled_up == [] and second.unchanged == 3
    assert snapshot(settings.data_dir) == before


def test_late_event_rewrites_only_its_day(settings: Settings) -> None:
    dates = write_history(settings.data_dir)
    rollup(settings)
    before = snapshot(settings.data_dir)
    write_events(settings.data_dir, day_events(dates[0], n=3, seed=9), writer="late")
    report = rollup(settings)
    after = snapshot(settings.data_dir)
    assert report.rolled_up == [dates[0]]
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {f"daily/date={dates[0]}/part.parquet", "monthly/month=2026-11/days.parquet",
                       "monthly/month=2026-11/totals.parquet"}


def test_rebuild_equals_incremental(settings: Settings, tmp_path: Path) -> None:
    dates = write_history(settings.data_dir)
    for d in dates:  # incremental, one day at a time, with a late event on the way
        rollup(settings, day=d)
    write_events(settings.data_dir, day_events(dates[0], n=2, seed=5), writer="late")
    rollup(settings)
    incremental = {k: v[0] for k, v in snapshot(settings.data_dir).items()}
    report = rollup(settings, rebuild=True)
    assert report.rolled_up == dates
    assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == incremental


def test_day_without_events_keeps_its_rollup(settings: Settings) -> None:
    """A day whose events vanished (pruned, or part of the store lost) keeps its rollup, reported:
    it is then the only record of that day's spend. Deleting it once cost the day's figures."""
    dates = write_history(settings.data_dir)
    rollup(settings)
    before = snapshot(settings.data_dir)
    for kind in ("api_call", "usage", "stream_outcome"):
        shutil.rmtree(settings.datadir.partition(kind, dates[1]))
    report = rollup(settings)
    assert (report.kept, report.rolled_up) == ([dates[1]], [])
    assert snapshot(settings.data_dir) == before  # not a byte, not an mtime changed
    assert read_models(settings.datadir, dates[1], dates[1]).num_rows > 0
    assert rollup(settings).kept == [dates[1]] and snapshot(settings.data_dir) == before
    # Its month's files, lost too, are rebuilt from the day files: the kept day's included.
    for part in ("days", "totals"):
        settings.datadir.rollup_month("2026-11", part).unlink()
    assert rollup(settings).kept == [dates[1]]
    assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == {k: v[0] for k, v in before.items()}


def test_damaged_rollup_of_a_day_without_events_is_one_line(settings: Settings) -> None:
    """Nothing can recompute it: the run says which file and what to do, and keeps the others."""
    dates = write_history(settings.data_dir)
    rollup(settings)
    for kind in ("api_call", "usage", "stream_outcome"):
        shutil.rmtree(settings.datadir.partition(kind, dates[1]))
    path = settings.datadir.rollup_day(dates[1])
    path.write_bytes(b"PAR1 torn PAR1")
    with pytest.raises(DataError, match=rf"^{path}: unreadable rollup file \(.*\): run `hive-jobs rollup` to "
                                        r"regenerate it \(or restore it from a backup if its events are gone\)$"):
        rollup(settings)
    assert path.read_bytes() == b"PAR1 torn PAR1" and settings.datadir.rollup_day(dates[0]).exists()


def test_missing_events_directory_is_an_error_and_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    """An unmounted disk at cron time once made the rollup delete every day and rank nothing, exit 0."""
    write_history(settings.data_dir, days=2)
    rollup(settings)
    before = outputs(settings.data_dir)
    settings.datadir.events.rename(tmp_path / "elsewhere")
    with pytest.raises(DataError, match=rf"^events directory {settings.datadir.events} is missing but 2 day\(s\) of rollups "
                                        r"exist: is the disk mounted\? nothing was changed"):
        rollup(settings)
    settings.datadir.events.mkdir()  # the empty mount point
    with pytest.raises(DataError, match=r"holds no events but 2 day\(s\) of rollups exist"):
        rollup(settings, day=DAY0)
    assert outputs(settings.data_dir) == before
    settings.datadir.events.rmdir()
    (tmp_path / "elsewhere").rename(settings.datadir.events)  # mounted again: nothing to redo
    assert rollup(settings).rolled_up == [] and snapshot(settings.data_dir) == {
        k.removeprefix("rollups/"): v for k, v in before.items() if k.endswith(".parquet") and k.startswith("rollups/")}


def test_deleted_day_rollup_is_regenerated(settings: Settings) -> None:
    """A deleted day file was "up to date" forever and the day reported $0."""
    dates = write_history(settings.data_dir)
    rollup(settings)
    before = {k: v[0] for k, v in snapshot(settings.data_dir).items()}
    spend = cost_by_day(settings, dates)
    shutil.rmtree(settings.datadir.rollup_day(dates[1]).parent)
    assert cost_by_day(settings, dates) == spend  # readers compute it from the events meanwhile
    assert rollup(settings).rolled_up == [dates[1]]
    assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == before
    # A damaged day file, and a month's lost files, are regenerated the same way.
    settings.datadir.rollup_day(dates[0]).write_bytes(b"PAR1 not what the rollup wrote PAR1")
    assert cost_by_day(settings, dates) == spend
    assert rollup(settings).rolled_up == [dates[0]]
    settings.datadir.rollup_month("2026-11", "totals").unlink()
    assert cost_by_day(settings, dates) == spend
    assert rollup(settings).rolled_up == dates
    assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == before
    assert rollup(settings).rolled_up == []


def test_rollups_without_a_state_are_read_as_they_are(settings: Settings, tmp_path: Path) -> None:
    """Rollup files copied without their state.json (or an older Hive's state) are still read:
    only a state that recorded them can say they changed."""
    dates = write_history(settings.data_dir)
    rollup(settings)
    spend = cost_by_day(settings, dates)
    settings.datadir.rollup_state.unlink()
    settings.datadir.events.rename(tmp_path / "elsewhere")
    assert cost_by_day(settings, dates) == spend


def test_foreign_rows_dated_9999_do_not_stop_the_rollup(settings: Settings) -> None:
    """One row dated 9999-12-31 made every rollup fail with OverflowError, forever."""
    dates = write_history(settings.data_dir, days=2)
    rollup(settings)
    before = {k: v[0] for k, v in snapshot(settings.data_dir).items()}
    far, past = datetime(9999, 12, 31, 12, tzinfo=UTC), datetime(1900, 1, 1, tzinfo=UTC)
    planted = [plant_foreign(settings.data_dir, "api_call", far), plant_foreign(settings.data_dir, "usage", far),
               plant_foreign(settings.data_dir, "api_call", past)]
    plant_foreign(settings.data_dir, "api_call", far, partition=DAY0)  # an out-of-range row in a real day
    report = rollup(settings)
    assert report.rolled_up == [DAY0] and "rankings" in report.steps
    assert set(planted) <= {path for path, _ in report.skipped}
    assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == before  # every day's figures unchanged
    assert sorted(p.name for p in settings.datadir.rollups_daily.iterdir()) == [f"date={d}" for d in dates]


def test_temporaries_of_a_killed_rollup_are_removed(settings: Settings, fork_ctx: Any) -> None:
    """A killed rollup left ``.part.parquet.<pid>.<tid>.tmp`` files forever."""
    write_history(settings.data_dir, days=1)
    rollup(settings)
    target = settings.datadir.rollup_day(DAY0)
    tmp = killed_mid_write(target, fork_ctx)
    stray = settings.datadir.rollups / ".state.json.4242.7f.tmp"
    stray.write_bytes(b"{")
    rollup(settings)
    assert tmp.exists() and stray.exists()  # young: it could be a live writer's
    for path in (tmp, stray):
        os.utime(path, (path.stat().st_mtime - 120,) * 2)
    report = rollup(settings)
    assert not tmp.exists() and not stray.exists()
    assert sorted(report.repaired) == sorted(f"{p}: removed temporary file left by a killed run" for p in (tmp, stray))
    assert [p.name for p in target.parent.iterdir()] == ["part.parquet"]


def test_unreadable_state_recomputes_every_day(settings: Settings) -> None:
    """state.json is a cache of what is on disk: unreadable, it is rebuilt (lossless), and said so."""
    dates = write_history(settings.data_dir, days=2)
    rollup(settings)
    before = {k: v[0] for k, v in snapshot(settings.data_dir).items()}
    state = settings.datadir.rollup_state
    for body in (b"\x00\xff{ torn", b"[]", b'{"format": "%s", "days": [], "outputs": {}}' % FORMAT.encode(),
                 b'{"format": "%s", "days": {"2026-13-45": "x"}, "outputs": {}}' % FORMAT.encode()):
        state.write_bytes(body)
        report = rollup(settings)
        assert report.rolled_up == dates
        assert len(report.repaired) == 1 and report.repaired[0].startswith(f"{state}: unreadable (")
        assert report.repaired[0].endswith("every day recomputed from the events")
        assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == before
        assert rollup(settings).rolled_up == []


def test_read_only_data_directory_is_one_line(settings: Settings) -> None:
    write_history(settings.data_dir, days=1)
    rollup(settings)
    write_events(settings.data_dir, day_events(DAY0, n=2, seed=4), writer="late")
    before = outputs(settings.data_dir)
    with read_only(settings.data_dir), pytest.raises(DataError) as caught:
        rollup(settings)
    message = str(caught.value)
    assert message.startswith("rollup stopped: ") and "\n" not in message
    assert "make the data directory writable and run it again" in message
    assert outputs(settings.data_dir) == before
    assert rollup(settings).rolled_up == [DAY0]


def test_full_disk_is_one_line(full_disk_settings: tuple[Settings, Path]) -> None:
    settings, disk = full_disk_settings
    write_history(settings.data_dir, days=2, n=30)
    rollup(settings)
    write_events(settings.data_dir, day_events(DAY0, n=2, seed=4), writer="late")
    before = outputs(settings.data_dir)
    filler = fill(disk)
    with pytest.raises(DataError) as caught:
        rollup(settings)
    message = str(caught.value)
    assert message.startswith(f"rollup stopped: {settings.datadir.rollup_day(DAY0)}: No space left on device: "
                              "free some space and run it again") and "\n" not in message
    assert outputs(settings.data_dir) == before  # the old files whole, no temporary left
    filler.unlink()
    assert rollup(settings).rolled_up == [DAY0]
    incremental = {k: v[0] for k, v in snapshot(settings.data_dir).items()}
    rollup(settings, rebuild=True)
    assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == incremental


def test_lock_held_by_another_run(settings: Settings, fork_ctx: Any) -> None:
    write_history(settings.data_dir, days=1)
    ready, release = fork_ctx.Event(), fork_ctx.Event()

    def hold() -> None:
        with job_lock(settings.datadir, "rollup", timeout_s=0):
            ready.set()
            release.wait(10)

    child = fork_ctx.Process(target=hold)
    child.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LockHeld):
            rollup(settings, lock_timeout_s=0.2)
    finally:
        release.set()
        child.join()
    assert rollup(settings, lock_timeout_s=5).rolled_up == [DAY0]


def _rollup_and_report(settings: Settings, results: Any) -> None:
    results.put(len(rollup(settings).rolled_up))


def test_concurrent_runs_do_not_interleave(settings: Settings, fork_ctx: Any) -> None:
    write_history(settings.data_dir, days=3)
    results = fork_ctx.Queue()
    procs = [fork_ctx.Process(target=_rollup_and_report, args=(settings, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    # serialised: one run rolled up the 3 days, the other waited for it and found nothing new
    assert sorted(results.get(timeout=5) for _ in procs) == [0, 3]
    reference = {k: v[0] for k, v in snapshot(settings.data_dir).items()}
    rollup(settings, rebuild=True)
    assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == reference


def test_empty_store(settings: Settings) -> None:
    report = rollup(settings)
    assert report.empty and report.rolled_up == []


def test_corrupt_file_is_skipped_and_reported(settings: Settings) -> None:
    write_history(settings.data_dir, days=2)
    bad = settings.datadir.partition("api_call", DAY0) / "zz-000001.parquet"
    bad.write_bytes(b"PAR1 this is not parquet at all PAR1")
    report = rollup(settings)
    assert [p for p, _ in report.skipped] == [bad]
    assert report.rolled_up == [DAY0, DAY0 + timedelta(days=1)]


class TestCli:
    """The same features through ``hive-jobs rollup``."""

    def test_second_run_changes_nothing(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir)
        code, out, _ = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert code == 0 and "rolled up 3 day(s)" in out and "rankings:" in out
        before = snapshot(settings.data_dir)
        code, out, _ = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert code == 0 and "nothing changed" in out
        assert snapshot(settings.data_dir) == before

    def test_late_event_rewrites_only_its_day(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        dates = write_history(settings.data_dir)
        run_jobs(["--data-dir", str(settings.data_dir), "rollup"], capsys)
        write_events(settings.data_dir, day_events(dates[2], n=2, seed=3), writer="late")
        code, out, _ = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--json"], capsys)
        assert code == 0 and '"rolled_up": [\n    "2026-11-12"\n  ]' in out
        shown = json.loads(out)  # RollupReport.as_dict(), the whole document pinned
        assert shown == {"data_dir": str(settings.data_dir), "days_with_events": 3, "rolled_up": ["2026-11-12"],
                         "kept": [], "forgotten": [], "rows": shown["rows"], "skipped": [], "repaired": [],
                         "rankings_rows": shown["rankings_rows"]}
        assert shown["rows"] > 0 and isinstance(shown["rankings_rows"], int)

    def test_rebuild_equals_incremental(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir)
        run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--since", "2026-11-11"], capsys)
        run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--date", "2026-11-10"], capsys)
        incremental = {k: v[0] for k, v in snapshot(settings.data_dir).items()}
        code, out, _ = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--rebuild"], capsys)
        assert code == 0 and "rolled up 3 day(s) 2026-11-10..2026-11-12" in out
        assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == incremental

    def test_lock_held_by_another_run(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir, days=1)
        with job_lock(settings.datadir, "rollup", timeout_s=0):
            code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--wait", "0.1"], capsys)
        assert code == 1 and out == ""
        assert err.startswith("error: another rollup run holds") and err.count("\n") == 1

    def test_empty_store(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert code == 0 and "no events in" in out and "nothing to roll up" in out and err == ""

    def test_corrupt_file_is_skipped_and_reported(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir, days=1)
        bad = settings.datadir.partition("usage", DAY0) / "zz-000001.parquet"
        bad.write_bytes(b"")
        code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup"], capsys)
        assert code == 0 and "rolled up 1 day(s)" in out
        assert f"warning: skipped {bad}: empty file" in err

    def test_bad_date_is_a_usage_error(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--date", "yesterday"], capsys)
        assert code == 2 and "not a date" in err

    def test_day_without_events_keeps_its_rollup(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        dates = write_history(settings.data_dir)
        run_jobs(["--data-dir", str(settings.data_dir), "rollup"], capsys)
        before = snapshot(settings.data_dir)
        for kind in ("api_call", "usage", "stream_outcome"):
            shutil.rmtree(settings.datadir.partition(kind, dates[0]))
        code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert code == 0 and "rollups up to date" in out
        assert err == (f"warning: kept the rollups of 1 day(s) whose events are gone ({dates[0]}): they are now the "
                       "only record of those days; is part of the event store missing?\n")
        assert snapshot(settings.data_dir) == before

    def test_missing_events_directory_is_an_error_and_changes_nothing(self, settings: Settings, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir, days=2)
        run_jobs(["--data-dir", str(settings.data_dir), "rollup"], capsys)
        before = outputs(settings.data_dir)
        settings.datadir.events.rename(tmp_path / "elsewhere")
        code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert (code, out) == (1, "")
        assert err.startswith(f"error: events directory {settings.datadir.events} is missing but 2 day(s) of rollups exist: "
                              "is the disk mounted? nothing was changed") and err.count("\n") == 1
        assert outputs(settings.data_dir) == before

    def test_deleted_day_rollup_is_regenerated(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        dates = write_history(settings.data_dir)
        run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        before = {k: v[0] for k, v in snapshot(settings.data_dir).items()}
        subprocess.run(["rm", "-r", str(settings.datadir.rollup_day(dates[1]).parent)], check=True)
        code, out, _ = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert code == 0 and f"rolled up 1 day(s) {dates[1]} into" in out
        assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == before

    def test_foreign_rows_dated_9999_do_not_stop_the_rollup(self, settings: Settings,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir, days=2)
        partition = plant_foreign(settings.data_dir, "api_call", datetime(9999, 12, 31, 12, tzinfo=UTC))
        code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert code == 0 and "rolled up 2 day(s) 2026-11-10..2026-11-11" in out
        assert (f"warning: skipped {partition}: partition dated outside 2000..2199 (no event can be): not rolled up\n"
                in err)

    def test_temporaries_of_a_killed_rollup_are_removed(self, settings: Settings, fork_ctx: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir, days=1)
        run_jobs(["--data-dir", str(settings.data_dir), "rollup"], capsys)
        tmp = killed_mid_write(settings.datadir.rollup_day(DAY0), fork_ctx)
        os.utime(tmp, (tmp.stat().st_mtime - 120,) * 2)
        code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup"], capsys)
        assert code == 0 and "nothing changed" in out
        assert err == f"repaired: {tmp}: removed temporary file left by a killed run\n" and not tmp.exists()

    def test_unreadable_state_recomputes_every_day(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir, days=2)
        run_jobs(["--data-dir", str(settings.data_dir), "rollup"], capsys)
        state = settings.datadir.rollup_state
        state.write_text("{ torn")
        code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup"], capsys)
        assert code == 0 and "rolled up 2 day(s)" in out
        assert err.startswith(f"repaired: {state}: unreadable (") and err.count("\n") == 1
        assert err.endswith("every day recomputed from the events\n")

    def test_read_only_data_directory_is_one_line(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir, days=1)
        with read_only(settings.data_dir):
            code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert (code, out) == (1, "")
        assert err.startswith("error: rollup stopped: ") and err.count("\n") == 1

    def test_full_disk_is_one_line(self, full_disk_settings: tuple[Settings, Path],
                                   capsys: pytest.CaptureFixture[str]) -> None:
        settings, disk = full_disk_settings
        write_history(settings.data_dir, days=1, n=30)
        fill(disk)
        code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert (code, out) == (1, "")
        assert err.startswith("error: rollup stopped: ") and "No space left on device" in err and err.count("\n") == 1


#: the usage columns schema 2 added (a schema-1 file lacks them)
USAGE_V2 = ["cache_write_tokens", "prompt_audio_tokens", "prompt_image_tokens", "prompt_video_tokens",
            "completion_audio_tokens", "completion_image_tokens", "web_search_requests", "upstream_cost_usd",
            "upstream_prompt_cost_usd", "upstream_completion_cost_usd"]
#: the rollup counters format v4 added
ROLLUP_V4 = ["cache_write_tokens", "prompt_audio_tokens", "prompt_image_tokens", "completion_audio_tokens",
             "completion_image_tokens", "web_search_requests", "byok_requests", "byok_fee_usd", "byok_upstream_usd",
             "byok_upstream_unknown"]


def write_usage_v1(data_dir: Path, events: list[Usage]) -> None:
    """``events`` as a file an older Hive wrote: usage schema 1, without the schema-2 columns."""
    table = pa.Table.from_pylist([e.model_dump() for e in events], schema=arrow_schema(Usage)).drop_columns(USAGE_V2)
    table = table.set_column(table.schema.get_field_index("schema_version"), "schema_version",
                             pa.array([1] * table.num_rows, pa.int64()))
    path = DataDir(data_dir).partition("usage", events[0].ts.date()) / "old-000001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def test_rollup_counts_the_whole_usage_object_and_keeps_byok_upstream_apart(settings: Settings) -> None:
    """Schema-2 counters are summed, schema-1 files count as 0 (a BYOK one as upstream unknown), and
    a BYOK call's provider price never enters cost_usd."""
    at = datetime(DAY0.year, DAY0.month, DAY0.day, 12, tzinfo=UTC)

    def usage(rid: str, cost: float, **fields: Any) -> Usage:
        return Usage(ts=at, request_id=rid, model="acme/fast", cost_usd=cost, cost_source="billed", **fields)

    write_events(settings.data_dir, [
        usage("full", 0.01, cache_write_tokens=100, prompt_audio_tokens=7, prompt_image_tokens=170,
              completion_audio_tokens=5, completion_image_tokens=9, web_search_requests=2, upstream_cost_usd=0.008),
        usage("byok", 0.0005, is_byok=True, upstream_cost_usd=0.25, cache_write_tokens=0, web_search_requests=1),
    ])
    write_usage_v1(settings.data_dir, [usage("old-byok", 0.0, is_byok=True, upstream_cost_usd=9.0, cache_write_tokens=50),
                                       usage("old", 0.02)])
    rollup(settings)
    (row,) = pq.read_table(settings.datadir.rollup_day(DAY0)).to_pylist()
    assert {k: row[k] for k in ["usage_events", *ROLLUP_V4]} == {
        "usage_events": 4, "cache_write_tokens": 100, "prompt_audio_tokens": 7, "prompt_image_tokens": 170,
        "completion_audio_tokens": 5, "completion_image_tokens": 9, "web_search_requests": 3, "byok_requests": 2,
        "byok_fee_usd": 0.0005, "byok_upstream_usd": 0.25, "byok_upstream_unknown": 1}
    assert row["cost_usd"] == pytest.approx(0.0305, abs=1e-12)  # OpenRouter's charges only
    (month,) = pq.read_table(settings.datadir.rollup_month("2026-11", "totals")).to_pylist()
    assert {k: month[k] for k in ROLLUP_V4} == {k: row[k] for k in ROLLUP_V4}


def test_a_day_kept_in_an_older_format_still_reads(settings: Settings) -> None:
    """The format bump recomputes every day with events; a day kept without its events cannot be,
    so its file is read as it is, the counters it lacks as 0, by the rollup and by the reports."""
    from jobs.rollup.period_rows import fine_rows

    dates = write_history(settings.data_dir, days=2)
    rollup(settings)
    kept = settings.datadir.rollup_day(dates[0])
    pq.write_table(pq.read_table(kept).drop_columns(ROLLUP_V4), kept)  # as format v3 wrote it
    for kind in ("api_call", "usage", "stream_outcome"):
        shutil.rmtree(settings.datadir.partition(kind, dates[0]))
    state = json.loads(settings.datadir.rollup_state.read_text())
    settings.datadir.rollup_state.write_text(json.dumps({**state, "format": FORMAT.replace("daily-v4", "daily-v3")}))
    report = rollup(settings)
    assert (report.kept, report.rolled_up) == ([dates[0]], [dates[1]])  # an older state: every day redone
    rows = fine_rows(settings, dates[0], dates[1])
    assert rows is not None and set(ROLLUP_V4) <= set(rows.column_names)
    old = [r for r in rows.to_pylist() if r["day"] == dates[0]]
    assert old and all(r["byok_requests"] == 0 and r["byok_upstream_usd"] == 0.0 for r in old)
    totals = pq.read_table(settings.datadir.rollup_month("2026-11", "totals"))
    assert set(ROLLUP_V4) <= set(totals.column_names)
