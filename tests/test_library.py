"""The library's front door, ``hive``: a Session from the environment that records, budgets and
flushes; the store for notebooks under ``hive-jobs sql``'s file rules; and the README's Library
examples, run as written against the emulator with a temporary data directory."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import hive
import queries
from hive_core.budget import Ledger
from hive_core.budget.admin import set_budget
from hive_core.errors import BudgetExceeded, ConfigError, QueryError
from hive_core.store.datadir import DataDir
from hive_core.store.events import Usage
from tests.cases import T0, write_events, write_history
from tests.plugins.cli import hive_env, run_jobs
from tests.plugins.emulator import MODEL

README = Path(__file__).resolve().parents[1] / "README.md"


def library_examples() -> list[str]:
    """The fenced python blocks of the README's Library section, in order."""
    section = README.read_text().split("\n## Library\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture
def library_env(emulator: Any, tmp_path: Path, catalog_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment a user has after ``hive models sync``: key and URL (the emulator's), a data
    directory with the catalog; nothing else of Hive's. Returns the data directory."""
    data_dir = tmp_path / "data"
    for name in [n for n in os.environ if n.startswith(("HIVE_", "OPENROUTER_"))]:
        monkeypatch.delenv(name)
    for name, value in hive_env(emulator, data_dir).items():
        if name.startswith(("HIVE_", "OPENROUTER_")):
            monkeypatch.setenv(name, value)
    DataDir(data_dir).catalog_file.parent.mkdir(parents=True)
    shutil.copy(catalog_path, DataDir(data_dir).catalog_file)
    return data_dir


def ledger_states(data_dir: Path) -> dict[str, int]:
    with Ledger(DataDir(data_dir).ledger) as ledger:
        return ledger.states()


def test_public_surface() -> None:
    assert sorted(hive.__all__) == ["AskOptions", "AskResult", "BudgetExceeded", "HiveError", "SelectionRequest",
                                    "Session", "Store"]
    assert all(hasattr(hive, name) for name in hive.__all__)


# -- the README's Library examples run as written ----------------------------------------------------

#: what each example must have left in its namespace (beyond running): example index -> check
EXAMPLE_CHECKS: dict[int, Any] = {
    1: lambda ns: ns["result"].text and not ns["result"].tool_calls and len(ns["messages"]) >= 3,
    2: lambda ns: set(ns["city"]) == {"city", "population"},
    3: lambda ns: ns["handle"].result.outcome == "cancelled",
}
#: requests each example sends (the async one: three chats and a stream)
EXAMPLE_REQUESTS = [2, 2, 1, 1, 4, 1]


def test_the_library_section_has_the_examples() -> None:
    examples = library_examples()
    assert len(examples) == 6
    assert "tools=[WEATHER]" in examples[1] and "response_format" in examples[2]
    assert "handle.cancel()" in examples[3] and "session.aio()" in examples[4] and "session.store" in examples[5]


@pytest.mark.parametrize("index", range(6), ids=["start", "tool-loop", "structured", "stream-cancel", "async", "store"])
def test_readme_library_example_runs(index: int, library_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each example runs on its own; every request it sent was recorded, reserved and settled."""
    code = library_examples()[index]
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    exec(compile(code, f"README.md Library example {index + 1}", "exec"), namespace)
    assert capsys.readouterr().out.strip()
    assert EXAMPLE_CHECKS.get(index, lambda ns: True)(namespace)
    with queries.connect(library_env, warn=False) as store:
        (requests,) = store.con.execute("SELECT count(*) FROM requests").fetchone() or (0,)
        (billed,) = store.con.execute("SELECT count(*) FROM usage").fetchone() or (0,)
    assert requests == EXAMPLE_REQUESTS[index] and billed == requests
    assert ledger_states(library_env) == {"settled": requests}  # every request reserved, then settled


# -- the Session: settings from the environment, its own event log, budgets on -------------------------

def test_from_env_records_and_close_flushes(library_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is on disk while the log buffers; closing the Session writes it all."""
    monkeypatch.setenv("HIVE_FLUSH_EVENTS", "100000")
    monkeypatch.setenv("HIVE_FLUSH_AGE", "3600")
    with hive.Session.from_env(app="notebook") as session:
        result = session.chat("Say hi", model=MODEL, max_tokens=10)
        assert session.settings.data_dir == library_env and session.log.pending >= 2
        assert not DataDir(library_env).events.exists()
    with queries.connect(library_env, warn=False) as store:
        rows = store.con.execute("SELECT request_id, app FROM usage").fetchall()
    assert rows == [(result.request_id, "notebook")]
    with pytest.raises(Exception, match="closed"):
        session.chat("Say hi", model=MODEL, max_tokens=10)


def test_kill_switch_through_the_library(library_env: Path) -> None:
    """``hive budget set --daily 0`` refuses every library path before anything is sent."""
    set_budget(DataDir(library_env).config_file, daily="0")
    import asyncio

    async def async_chat(session: hive.Session) -> None:
        async with session.aio() as aio:
            await aio.chat("Say hi", model=MODEL, max_tokens=5)

    with hive.Session.from_env() as session:
        for send in (lambda: session.chat("Say hi", model=MODEL, max_tokens=5, over_budget=True),
                     lambda: session.stream("Say hi", model=MODEL),
                     lambda: session.ask("Say hi", [MODEL]),
                     lambda: asyncio.run(async_chat(session))):
            with pytest.raises(BudgetExceeded, match=r"^the daily budget of global is 0, so every request is refused"):
                send()
    assert not (DataDir(library_env).events / "api_call").exists()


def test_a_moved_clock_is_refused_before_anything_opens(library_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests are recorded at the real time: HIVE_AS_OF would move budget days but not events."""
    monkeypatch.setenv("HIVE_AS_OF", "2026-01-01T00:00:00Z")
    with pytest.raises(ConfigError, match="requests are always recorded at the real time"):
        hive.Session.from_env()
    assert not DataDir(library_env).events.exists()


# -- the store: hive-jobs sql's views and the rollup tables, as relations and LazyFrames -------------

def test_store_sees_the_sessions_own_requests(library_env: Path) -> None:
    with hive.Session.from_env() as session:
        store = session.store
        assert store.lazy("usage").collect().height == 0
        first = session.chat("Say hi", model=MODEL, max_tokens=5)
        assert store.lazy("usage").select("request_id").collect()["request_id"].to_list() == [first.request_id]
        session.chat("Say hi", model=MODEL, max_tokens=5)
        assert store.relation("requests").count("*").fetchall() == [(2,)]
        ((spent,),) = store.sql("SELECT sum(cost_usd) FROM usage WHERE model = $model", model=MODEL).fetchall()
    assert spent > 0


def test_store_follows_the_sql_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Corrections supersede, foreign files are skipped (with the same warning), and every view
    reads the same rows through DuckDB, Polars and ``hive-jobs sql``."""
    data_dir = tmp_path / "data"
    write_history(data_dir, days=2, n=20)
    original = Usage(ts=T0, request_id="fixed", model=MODEL, cost_usd=None, cost_source="unknown")
    write_events(data_dir, [original, Usage(ts=T0 + timedelta(hours=1), request_id="fixed", model=MODEL,
                                            cost_usd=0.5, cost_source="billed", supersedes=original.event_id)],
                 writer="t1")
    stray = next((data_dir / "events" / "usage").glob("date=*")) / "copy of usage.parquet"
    stray.write_bytes(b"not parquet")
    with hive.Store(data_dir) as store:
        for name in store.tables[:10]:
            relation = store.relation(name)
            assert store.lazy(name).collect().height == relation.count("*").fetchall()[0][0], name
        warned = capsys.readouterr().err  # once, when the first read opened the store
        fixed = store.lazy("usage").filter(pl.col("request_id") == "fixed").select("cost_usd").collect()
        assert [path for path, _ in store.skipped] == [stray]
    assert fixed["cost_usd"].to_list() == [0.5]
    assert warned.count("warning: skipped") == 1 and f"warning: skipped {stray}: stray" in warned
    code, out, _ = run_jobs(["--data-dir", str(data_dir), "sql", "select count(*) n from usage", "--format", "json"],
                            capsys)
    assert code == 0 and json.loads(out)[0]["n"] == store_count(data_dir, "usage")


def store_count(data_dir: Path, name: str) -> int:
    with hive.Store(data_dir) as store:
        return int(store.relation(name).count("*").fetchall()[0][0])


def test_rollup_tables(tmp_path: Path) -> None:
    from hive_core.settings import Settings
    from jobs.pipeline import rollup

    data_dir = tmp_path / "data"
    days = write_history(data_dir, days=3, n=30)
    with hive.Store(data_dir) as store:
        with pytest.raises(QueryError, match=r"no rollup_daily in .* yet: run `hive-jobs rollup` first"):
            store.relation("rollup_daily")
        with pytest.raises(QueryError, match="no table named 'rollups'"):
            store.relation("rollups")
    rollup(Settings(data_dir=data_dir, as_of="2026-11-12T23:00:00Z"))  # the rankings' window holds the days
    (DataDir(data_dir).rollups_daily / "date=2026-11-11" / "copy.parquet").write_bytes(b"stray")
    with hive.Store(data_dir) as store:
        daily = store.lazy("rollup_daily").collect()
        assert sorted(set(daily["day"].to_list())) == days
        assert daily.height == store.relation("rollup_daily").count("*").fetchall()[0][0]
        totals = store.lazy("rollup_monthly_totals").collect()
        assert totals.height and store.lazy("rollup_monthly_days").collect().height
        assert store.relation("rankings").count("*").fetchall()[0][0] > 0
        ((requests,),) = store.sql("SELECT count(DISTINCT request_id) FROM api_calls").fetchall()
    assert requests == 90
