from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import queries
from hive_core.errors import QueryError
from hive_core.store.datadir import DataDir
from hive_core.store.events import ApiCall, Usage, arrow_schema
from ingest.log import EventLog
from tests.cases import T0, api_call, sample_events

#: example values for report parameters, by name (each report documents its params in a header)
EXAMPLE_PARAMS = {"since": "2026-01-01", "until": "2026-12-31", "day": "2026-11-20", "model": "openai/gpt-4o",
                  "days": 7, "limit": 10, "name": "exp1", "period_start": "2026-11-01", "period_end": "2026-11-30",
                  "share": 0.8}


def _params(sql: str) -> dict[str, object]:
    return {name: EXAMPLE_PARAMS.get(name, "x") for name in set(re.findall(r"\$([A-Za-z_]\w*)", sql))}


@pytest.mark.parametrize("name", queries.names())
def test_every_named_query_runs_against_an_empty_store(name: str, data_dir: Path) -> None:
    sql = queries.load(name)
    with queries.connect(data_dir) as store:
        queries.run_sql(store, sql, _params(sql)).fetchall()


def test_views_read_every_event_type(data_dir: Path) -> None:
    with EventLog(data_dir) as log:
        log.record_many(sample_events())
    with queries.connect(data_dir) as store:
        counts = {v: queries.run_sql(store, f"select count(*) from {v}").fetchall()[0][0]
                  for v in ("api_calls", "usage", "stream_outcomes", "selections", "quality_ratings",
                            "budget_alerts", "budget_overrides", "ab_assignments", "requests")}
    assert counts == {"api_calls": 2, "usage": 1, "stream_outcomes": 1, "selections": 1, "quality_ratings": 1,
                      "budget_alerts": 1, "budget_overrides": 1, "ab_assignments": 1, "requests": 1}


def test_files_of_an_older_schema_version_still_read(data_dir: Path) -> None:
    old = pa.Table.from_pylist([api_call(1).model_dump()], schema=arrow_schema(ApiCall))
    old = old.drop_columns(["generation_id", "ttft_ms"])
    path = DataDir(data_dir).partition("api_call", T0.date()) / "old-000001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(old, path)
    with EventLog(data_dir) as log:
        log.record(api_call(2, generation_id="gen-2"))
    with queries.connect(data_dir) as store:
        rows = queries.run_sql(store, "select request_id, generation_id from api_calls order by 1").fetchall()
    assert rows == [("r1", None), ("r2", "gen-2")]


def test_usage_files_of_schema_1_read_the_new_columns_as_null(data_dir: Path) -> None:
    """Usage schema 2 added the whole usage object; a schema-1 file lacks those columns: not
    recorded, so NULL, beside a schema-2 event's values."""
    new_columns = [n for n in Usage.model_fields if n not in _USAGE_V1]
    old = pa.Table.from_pylist([Usage(request_id="r1", model="m", cost_source="billed", cost_usd=0.5,
                                      is_byok=True).model_dump()], schema=arrow_schema(Usage))
    path = DataDir(data_dir).partition("usage", old["ts"][0].as_py().date()) / "old-000001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(old.drop_columns(new_columns), path)
    with EventLog(data_dir) as log:
        log.record(Usage(request_id="r2", model="m", cost_source="billed", cost_usd=0.001, is_byok=True,
                         upstream_cost_usd=0.2, cache_write_tokens=0, web_search_requests=1))
    with queries.connect(data_dir) as store:
        rows = queries.run_sql(store, "select request_id, is_byok, upstream_cost_usd, cache_write_tokens, "
                                      "web_search_requests from usage order by 1").fetchall()
    assert new_columns and rows == [("r1", True, None, None, None), ("r2", True, 0.2, 0, 1)]


#: the usage columns of schema 1
_USAGE_V1 = {"event_id", "ts", "type", "schema_version", "request_id", "app", "user", "tags", "model", "provider",
             "request_type", "task_category", "prompt_tokens", "completion_tokens", "reasoning_tokens",
             "cached_tokens", "cost_usd", "cost_source", "is_byok", "generation_id", "supersedes"}


def test_superseded_usage_is_counted_once(data_dir: Path) -> None:
    first = Usage(request_id="r", model="m", cost_source="estimated", cost_usd=0.01)
    with EventLog(data_dir) as log:
        log.record(first)
        log.record(Usage(request_id="r", model="m", cost_source="billed", cost_usd=0.012, supersedes=first.event_id))
    with queries.connect(data_dir) as store:
        assert queries.run_sql(store, "select cost_source, cost_usd from usage").fetchall() == [("billed", 0.012)]


def test_parameters_are_bound_not_formatted(data_dir: Path) -> None:
    with EventLog(data_dir) as log:
        log.record(api_call(1))
    with queries.connect(data_dir) as store:
        hostile = "x' OR '1'='1"
        rows = queries.run_sql(store, "select count(*) from api_calls where model = $m", {"m": hostile}).fetchall()
    assert rows == [(0,)]


def test_unknown_query_name_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no query named"):
        queries.load("views/nope")
    with pytest.raises(KeyError):
        queries.load("../pyproject")


def test_a_store_keeps_its_snapshot_while_a_compaction_deletes_its_files(data_dir: Path) -> None:
    """Every file a store listed is held open: queries after a compaction (which deleted them) still
    see each event once, also on ``store.con`` directly (the rollup's path)."""
    from ingest import compact

    for writer in ("a", "b", "c"):
        with EventLog(data_dir, writer=writer) as log:
            log.record_many([api_call(i) for i in range(10)])
    with queries.connect(data_dir) as store:
        assert compact(data_dir, day=T0.date()).files_in == 3  # the listed files are gone now
        assert queries.run_sql(store, "select count(*) from api_calls").fetchall() == [(30,)]
        assert store.con.sql("select count(*) from requests").fetchall() == [(10,)]
    assert len(list(DataDir(data_dir).partition("api_call", T0.date()).glob("*.parquet"))) == 1


def test_views_have_exactly_the_schema_columns(data_dir: Path) -> None:
    """A foreign file's extra columns stay out of the views (compaction drops them too)."""
    table = pa.Table.from_pylist([api_call(1).model_dump()], schema=arrow_schema(ApiCall))
    path = DataDir(data_dir).partition("api_call", T0.date()) / "foreign-000001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table.append_column("extra", pa.array(["x"])), path)
    with queries.connect(data_dir) as store:
        columns = [r[0] for r in queries.run_sql(store, "describe raw_api_call").fetchall()]
    assert columns == arrow_schema(ApiCall).names


def test_more_files_than_descriptors_are_read_by_path(data_dir: Path) -> None:
    """A store with more files than the process may hold open is read by path (then a query that
    meets a file a compaction deleted is retried over a fresh listing) instead of failing."""
    import subprocess
    import sys

    for writer in range(80):
        with EventLog(data_dir, writer=f"w{writer}") as log:
            log.record(api_call(writer))
    code = ("import resource, sys, pathlib\nresource.setrlimit(resource.RLIMIT_NOFILE, (320, 320))\n"
            "import queries\nstore = queries.connect(pathlib.Path(sys.argv[1]))\n"
            "pinned = sum(len(f.pinned) for f in store.files.values())\n"
            "from ingest import compact\nprint(pinned, compact(store.data_dir, day=date.fromisoformat(sys.argv[2])).files_in,\n"
            "      queries.run_sql(store, 'select count(*) from api_calls').fetchall()[0][0])\n")
    out = subprocess.run([sys.executable, "-c", "from datetime import date\n" + code, str(data_dir), T0.date().isoformat()],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["0", "80", "80"]  # none pinned; all 80 deleted by the compaction; retried


def test_every_connection_is_utc_and_silent(data_dir: Path) -> None:
    """Hive's DuckDB sessions (hive_core.store.duck): UTC days, and no progress bar, which DuckDB would
    draw on stdout once a query runs for 2 s (cron mails any output)."""
    from hive_core.store.duck import open_duckdb

    with queries.connect(data_dir) as store, open_duckdb() as con:
        for session in (store.con, con):
            shown = session.sql("select current_setting('TimeZone'), current_setting('enable_progress_bar')")
            assert shown.fetchall() == [("UTC", False)]


def test_views_added_to_an_open_store_read_their_events_and_leave_the_others_as_they_are(data_dir: Path) -> None:
    """``Store.add_views``: a store opened with the api_calls view only gets quality_ratings (and the
    event type it reads) on demand; adding a view it has, or one it has through another, is a no-op."""
    with EventLog(data_dir) as log:
        log.record_many(sample_events())
    with queries.connect(data_dir, warn=False, views=("api_calls",)) as store:
        with pytest.raises(QueryError, match="quality_ratings"):
            queries.run_sql(store, "select count(*) from quality_ratings").fetchall()
        store.add_views(("quality_ratings",))
        store.add_views(("quality_ratings", "api_calls"))
        assert queries.run_sql(store, "select count(*) from quality_ratings").fetchall() == [(1,)]
        assert queries.run_sql(store, "select count(*) from api_calls").fetchall() == [(2,)]
        assert "quality_ratings" in store.views and "api_calls" in store.views
