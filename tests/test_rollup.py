"""The daily rollup: exact single-day percentiles, mergeable ranges, idempotence, incrementality,
rebuild == incremental, the lock, an empty store and a corrupt file. Library and CLI (TestCli)."""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hive_core.errors import LockHeld
from hive_core.events import ApiCall, Event, StreamOutcome, Usage
from hive_core.settings import Settings
from ingest import EventLog
from jobs import cli as jobs_cli
from jobs.lock import job_lock
from jobs.model_rollup import merge_by, read_models
from jobs.rollup import day_path, rollup

DAY0 = date(2026, 11, 10)
MODELS = {"acme/fast": ("Acme", 300.0, 0.02), "acme/slow": ("Acme", 2500.0, 0.10), "zeta/mid": (None, 900.0, 0.05)}
TASKS = ("chat", "code-generation", None)


def day_events(day: date, n: int = 60, seed: int = 0, models: dict[str, tuple[str | None, float, float]] = MODELS) -> list[Event]:
    """``n`` requests on ``day``: retries after transient errors, streamed and plain calls, usage with cost."""
    rng = random.Random(f"{day}-{seed}")
    events: list[Event] = []
    for i in range(n):
        model = rng.choice(sorted(models))
        provider, median, fail = models[model]
        rid = f"{day}-{seed}-{i}"
        ts = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 86_000))
        task, rtype, streamed = rng.choice(TASKS), rng.choice(("chat", "test")), rng.random() < 0.5
        attempt = 1
        while rng.random() < fail and attempt < 3:
            events.append(ApiCall(ts=ts, request_id=rid, attempt=attempt, model=model, provider=provider,
                                  request_type=rtype, task_category=task, status="rate_limited", http_status=429,
                                  latency_ms=rng.uniform(50, 200), streamed=streamed))
            attempt += 1
        latency = rng.lognormvariate(0, 0.6) * median
        ttft = latency * rng.uniform(0.1, 0.4) if streamed else None
        events.append(ApiCall(ts=ts + timedelta(seconds=1), request_id=rid, attempt=attempt, model=model,
                              served_model=model, provider=provider, request_type=rtype, task_category=task,
                              status="ok", http_status=200, latency_ms=latency, ttft_ms=ttft, streamed=streamed))
        events.append(Usage(ts=ts + timedelta(seconds=2), request_id=rid, model=model, provider=provider,
                            request_type=rtype, task_category=task, prompt_tokens=rng.randint(10, 900),
                            completion_tokens=rng.randint(1, 500), cost_usd=round(rng.uniform(1e-5, 0.02), 9),
                            cost_source=rng.choice(("billed", "billed", "estimated"))))
        if streamed:
            events.append(StreamOutcome(ts=ts + timedelta(seconds=2), request_id=rid, model=model, request_type=rtype,
                                        task_category=task, outcome=rng.choice(("completed", "completed", "cancelled")),
                                        ttft_ms=ttft, duration_ms=latency, tokens_per_s=rng.uniform(20, 200)))
    return events


def write_events(data_dir: Path, events: list[Event], writer: str = "t0") -> None:
    with EventLog(data_dir, writer=writer) as log:
        log.record_many(events)


def write_history(data_dir: Path, days: int = 3, n: int = 60) -> list[date]:
    dates = [DAY0 + timedelta(days=i) for i in range(days)]
    write_events(data_dir, [e for d in dates for e in day_events(d, n)])
    return dates


def snapshot(data_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every rollup file's bytes and mtime."""
    root = data_dir / "rollups"
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*.parquet"))}


def exact_percentiles(data_dir: Path) -> dict[tuple[Any, ...], tuple[float, ...]]:
    """Independent of Hive: plain DuckDB over the raw files, quantile_cont over successful attempts."""
    sql = f"""
        select cast(ts at time zone 'UTC' as date), coalesce(served_model, model), provider, request_type, task_category,
               quantile_cont(latency_ms, [0.5, 0.95, 0.99]), quantile_cont(ttft_ms, [0.5, 0.95, 0.99])
        from read_parquet('{data_dir}/events/api_call/*/*.parquet') where status = 'ok' group by all"""
    return {tuple(r[:5]): (*r[5], *(r[6] or [None] * 3)) for r in duckdb.connect().sql(sql).fetchall()}


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


def test_single_day_percentiles_equal_exact_quantile_cont(settings: Settings) -> None:
    write_history(settings.data_dir)
    rollup(settings)
    exact = exact_percentiles(settings.data_dir)
    rows = [r for d in (DAY0, DAY0 + timedelta(days=1), DAY0 + timedelta(days=2))
            for r in pq.read_table(day_path(settings.rollups_dir, d)).to_pylist()]
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
                f"sum(streams_cancelled), sum(errors) from '{settings.rollups_dir}/daily/*/part.parquet'").fetchall()[0]
    assert t == (calls, ok, first, calls - first, pytest.approx(cost, abs=1e-9), tokens, cancelled, calls - ok)


def test_range_percentiles_from_histograms_within_1pct(settings: Settings) -> None:
    write_history(settings.data_dir, days=4, n=150)
    rollup(settings)
    merged = {r["model"]: r for r in merge_by(read_models(settings.rollups_dir, DAY0, DAY0 + timedelta(days=3)), ("model",)).to_pylist()}
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
    fine = pa.concat_tables([pq.read_table(day_path(settings.rollups_dir, d)) for d in (DAY0, DAY0 + timedelta(days=1))])
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


def test_a_nan_latency_stays_out_of_percentiles_and_histograms(settings: Settings) -> None:
    """Hive's own events cannot carry one (latency_ms >= 0), a foreign writer's file can."""
    write_history(settings.data_dir, days=1)
    ts = datetime(DAY0.year, DAY0.month, DAY0.day, 12, tzinfo=UTC)
    write_events(settings.data_dir, [ApiCall(ts=ts, request_id="odd", attempt=1, model="acme/fast", served_model="acme/fast",
                                             provider="Acme", request_type="chat", task_category="chat", status="ok",
                                             http_status=200, latency_ms=5.0)], writer="foreign")
    (path,) = (settings.data_dir / "events" / "api_call").rglob("foreign*.parquet")
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index("latency_ms"), "latency_ms", pa.array([float("nan")])), path)
    rollup(settings)
    row = next(r for r in pq.read_table(day_path(settings.rollups_dir, DAY0)).to_pylist()
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


def test_day_without_events_loses_its_rollup(settings: Settings) -> None:
    import shutil

    dates = write_history(settings.data_dir)
    rollup(settings)
    for kind in ("api_call", "usage", "stream_outcome"):
        shutil.rmtree(settings.events_dir / kind / f"date={dates[1]}")
    report = rollup(settings)
    assert report.removed == [dates[1]] and not day_path(settings.rollups_dir, dates[1]).exists()


def test_lock_held_by_another_run(settings: Settings, fork_ctx: Any) -> None:
    write_history(settings.data_dir, days=1)
    ready, release = fork_ctx.Event(), fork_ctx.Event()

    def hold() -> None:
        with job_lock(settings.state_dir, "rollup", timeout_s=0):
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
    bad = settings.events_dir / "api_call" / f"date={DAY0}" / "zz-000001.parquet"
    bad.write_bytes(b"PAR1 this is not parquet at all PAR1")
    report = rollup(settings)
    assert [p for p, _ in report.skipped] == [bad]
    assert report.rolled_up == [DAY0, DAY0 + timedelta(days=1)]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``hive-jobs`` in-process; (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        jobs_cli.main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


class TestCli:
    """The same features through ``hive-jobs rollup``."""

    def test_second_run_changes_nothing(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir)
        code, out, _ = run_cli(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert code == 0 and "rolled up 3 day(s)" in out and "rankings:" in out
        before = snapshot(settings.data_dir)
        code, out, _ = run_cli(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert code == 0 and "nothing changed" in out
        assert snapshot(settings.data_dir) == before

    def test_late_event_rewrites_only_its_day(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        dates = write_history(settings.data_dir)
        run_cli(["--data-dir", str(settings.data_dir), "rollup"], capsys)
        write_events(settings.data_dir, day_events(dates[2], n=2, seed=3), writer="late")
        code, out, _ = run_cli(["--data-dir", str(settings.data_dir), "rollup", "--json"], capsys)
        assert code == 0 and '"rolled_up": [\n    "2026-11-12"\n  ]' in out

    def test_rebuild_equals_incremental(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir)
        run_cli(["--data-dir", str(settings.data_dir), "rollup", "--since", "2026-11-11"], capsys)
        run_cli(["--data-dir", str(settings.data_dir), "rollup", "--date", "2026-11-10"], capsys)
        incremental = {k: v[0] for k, v in snapshot(settings.data_dir).items()}
        code, out, _ = run_cli(["--data-dir", str(settings.data_dir), "rollup", "--rebuild"], capsys)
        assert code == 0 and "rolled up 3 day(s) 2026-11-10..2026-11-12" in out
        assert {k: v[0] for k, v in snapshot(settings.data_dir).items()} == incremental

    def test_lock_held_by_another_run(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir, days=1)
        with job_lock(settings.state_dir, "rollup", timeout_s=0):
            code, out, err = run_cli(["--data-dir", str(settings.data_dir), "rollup", "--wait", "0.1"], capsys)
        assert code == 1 and out == ""
        assert err.startswith("error: another rollup run holds") and err.count("\n") == 1

    def test_empty_store(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = run_cli(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
        assert code == 0 and "no events in" in out and "nothing to roll up" in out and err == ""

    def test_corrupt_file_is_skipped_and_reported(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        write_history(settings.data_dir, days=1)
        bad = settings.events_dir / "usage" / f"date={DAY0}" / "zz-000001.parquet"
        bad.write_bytes(b"")
        code, out, err = run_cli(["--data-dir", str(settings.data_dir), "rollup"], capsys)
        assert code == 0 and "rolled up 1 day(s)" in out
        assert f"warning: skipped {bad}: empty file" in err

    def test_bad_date_is_a_usage_error(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = run_cli(["--data-dir", str(settings.data_dir), "rollup", "--date", "yesterday"], capsys)
        assert code == 2 and "not a date" in err
