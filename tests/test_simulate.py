from __future__ import annotations

from datetime import date
from pathlib import Path

import queries
from hive_cli.hive_jobs import main as jobs_main
from jobs.simulate.simulate import simulate
from jobs.simulate.world import MODELS
from tests.plugins.store import glob_count

END = date(2026, 11, 20)


def test_simulate_writes_exactly_m_requests_per_day(data_dir: Path) -> None:
    report = simulate(data_dir, days=3, calls_per_day=2000, seed=5, end=END)
    assert report.requests == 6000 and glob_count(data_dir) == report.total_events
    with queries.connect(data_dir) as store:
        per_day = queries.run_sql(store, "select ts::date d, count(*) from (select request_id, min(ts) ts "
                                  "from api_calls group by 1) group by 1 order by 1").fetchall()
        mix = dict(queries.run_sql(store, "select status, count(*) from api_calls group by 1").fetchall())
        attempts = queries.run_sql(store, "select max(attempt), max(fallback_index), count(distinct model) from api_calls").fetchall()[0]
        outcomes = {r[0] for r in queries.run_sql(store, "select distinct outcome from stream_outcomes").fetchall()}
        cost = queries.run_sql(store, "select count(*), sum(cost_usd) > 0 from usage where cost_usd is not null").fetchall()[0]
    assert [n for _, n in per_day] == [2000, 2000, 2000]
    assert mix["ok"] > 0.9 * sum(mix.values()) and {"rate_limited", "server_error", "timeout"} <= set(mix)
    assert attempts[0] >= 3 and attempts[1] == 1 and attempts[2] == len(MODELS)
    assert {"completed", "cancelled", "truncated"} <= outcomes
    assert cost[1]


def test_simulate_is_deterministic(tmp_path: Path) -> None:
    a = simulate(tmp_path / "a", days=1, calls_per_day=500, seed=9, end=END)
    b = simulate(tmp_path / "b", days=1, calls_per_day=500, seed=9, end=END)
    assert a == b
    query = "select event_id, request_id, latency_ms from api_calls order by event_id"
    with queries.connect(tmp_path / "a") as sa, queries.connect(tmp_path / "b") as sb:
        assert queries.run_sql(sa, query).fetchall() == queries.run_sql(sb, query).fetchall()


def test_simulate_cli(data_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    try:
        jobs_main(["--data-dir", str(data_dir), "simulate", "--days", "2", "--calls-per-day", "100"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "simulated 200 requests over 2 days" in capsys.readouterr().out
