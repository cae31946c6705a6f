"""The budget ledger: one-transaction reservations, stale expiry, idempotent settlement, and the
rebuild from events; reservation accounting across success, failure, retry, fallback and
cancellation against the emulator equals the events (library and ``hive-jobs rebuild-ledger``).
The tests taking ``any_ledger`` use only the shared protocol and run on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hive_cli.hive_jobs import main as jobs_main
from hive_core.budget import Budget, Ledger, Limit, save_budget_config
from hive_core.budget.config import BudgetConfig
from hive_core.budget.ledger import RebuildCounts
from hive_core.budget.ledger_core import LedgerCore
from hive_core.catalog.catalog import Catalog
from hive_core.errors import BudgetExceeded, DataError, OpenRouterError
from hive_core.period import Period
from hive_core.store.datadir import DataDir
from ingest.log import EventLog
from jobs.budget.ledger import rebuild_ledger
from tests.plugins.cli import run
from tests.plugins.emulator import MODEL, emu_settings, fast_policy
from tests.plugins.ledger_cases import NOW, reserve


@pytest.fixture
def ledger(data_dir: Path) -> Iterator[Ledger]:
    with Ledger(DataDir(data_dir).ledger) as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgresql"])
def any_ledger(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[LedgerCore]:
    """The protocol's two implementations: the data directory's SQLite file, and PostgreSQL (a real
    server the session starts, tests/plugins/postgres.py)."""
    from hive_core.budget.ledger_pg import PgLedger

    opened: LedgerCore = (Ledger(DataDir(data_dir).ledger) if request.param == "sqlite"
                          else PgLedger(request.getfixturevalue("pg_url")))
    with opened:
        yield opened


def test_wal_and_schema(ledger: Ledger) -> None:
    con = sqlite3.connect(ledger.path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()
    assert {"reservations", "spend"} <= tables


def test_reserve_counts_spent_and_in_flight(any_ledger: LedgerCore) -> None:
    assert reserve(any_ledger, "a", 0.6) == []
    (breach,) = reserve(any_ledger, "b", 0.6)  # 0.6 in flight + 0.6 > 1.0
    assert (breach.scope, breach.window, breach.reserved_usd, breach.needed_usd) == ("global", "daily", 0.6, 0.6)
    assert any_ledger.states() == {"reserved": 1}  # a refusal records nothing
    assert any_ledger.settle("a", 0.25, now=NOW)
    assert not any_ledger.settle("a", 0.25, now=NOW)  # idempotent
    assert reserve(any_ledger, "b", 0.6) == []
    assert any_ledger.release("b", now=NOW) and not any_ledger.release("b", now=NOW)
    assert any_ledger.spend("global", Period.daily(NOW)) == 0.25 and any_ledger.reserved("global") == 0
    assert reserve(any_ledger, "c", 0.0) == [] and reserve(any_ledger, "d", 5.0, force=True)  # forced: recorded anyway
    assert any_ledger.reserved("global") == 5.0



def test_unreserved_spend_and_batches(any_ledger: LedgerCore) -> None:
    """A request no limit applied to is written once, settled (record_spend); a batch writes its
    settlements in one transaction, and none of them when it fails."""
    any_ledger.record_spend("free", 0.3, request_id="q-free", app="search", model=MODEL, key="k1", now=NOW,
                            billed_model="openai/gpt-4o", event_id="e-free")
    assert any_ledger.states() == {"settled": 1}
    day = Period.daily(NOW)
    assert [any_ledger.spend(scope, day) for scope in ("global", "app:search", "model:openai/gpt-4o", "key:k1",
                                                      f"model:{MODEL}")] == [0.3, 0.3, 0.3, 0.3, 0.0]
    assert reserve(any_ledger, "a", 0.2) == []
    with any_ledger.batch():
        assert any_ledger.settle("a", 0.1, now=NOW)
        any_ledger.record_spend("b", 0.05, request_id=None, app=None, model=MODEL, key=None, now=NOW)
    assert any_ledger.states() == {"settled": 3} and any_ledger.spend("global", day) == pytest.approx(0.45)
    with pytest.raises(RuntimeError), any_ledger.batch():
        any_ledger.record_spend("c", 0.05, request_id=None, app=None, model=MODEL, key=None, now=NOW)
        raise RuntimeError("the batch fails")
    assert any_ledger.states() == {"settled": 3} and any_ledger.spend("global", day) == pytest.approx(0.45)

def test_stale_reservations_expire(any_ledger: LedgerCore) -> None:
    reserve(any_ledger, "crashed", 0.9)
    assert reserve(any_ledger, "next", 0.9, now=NOW + timedelta(seconds=60))
    assert reserve(any_ledger, "later", 0.9, now=NOW + timedelta(seconds=901)) == []
    assert any_ledger.states() == {"expired": 1, "reserved": 1}
    assert any_ledger.settle("crashed", 0.1, now=NOW)  # its process came back: the spend still counts
    assert any_ledger.spend("global", Period.daily(NOW)) == pytest.approx(0.1)


def test_amounts_are_exact(any_ledger: LedgerCore) -> None:
    for i in range(1000):
        reserve(any_ledger, f"r{i}", 0.0001)
        any_ledger.settle(f"r{i}", 0.1 + 0.2 - 0.3 + 1e-7, now=NOW)
    assert any_ledger.spend("global", Period.daily(NOW)) == pytest.approx(1000 * 1e-7, abs=1e-12)


def test_prune_keeps_in_flight_and_what_the_events_do_not_hold(any_ledger: LedgerCore) -> None:
    reserve(any_ledger, "old", 0.1)
    any_ledger.settle("old", 0.1, now=NOW, event_id="e-old")
    reserve(any_ledger, "flying", 0.1)
    assert any_ledger.prune(before=NOW + timedelta(seconds=1)) == 0  # its usage event was never seen on disk
    any_ledger.rebuild(lambda pending: ([("global", NOW.date().isoformat(), 0.1)], {s.reservation_id for s in pending}),
                   now=NOW, stale_after_s=900)
    assert any_ledger.prune(before=NOW + timedelta(seconds=1)) == 1
    assert any_ledger.states() == {"reserved": 1}


# -- accounting against the emulator: the any_ledger equals the events ----------------------------------

class StopReading(Exception):
    """Raised from ``on_text`` to cancel a stream mid-way, as Ctrl-C would."""


def ask_budgeted(client: Any, budget: Budget, chain: list[str], *, stream: bool, cancel_after: int | None = None,
                 max_tokens: int = 60) -> None:
    """One ``hive ask`` through the real pipeline with a budget; failures end the request quietly."""
    from hive_core.ask import AskOptions, ask

    pieces = 0

    def on_text(_text: str) -> None:
        nonlocal pieces
        pieces += 1
        if cancel_after is not None and pieces >= cancel_after:
            raise StopReading

    with contextlib.suppress(OpenRouterError, StopReading):
        ask(client, "Tell me about budgets", chain, AskOptions(stream=stream, max_tokens=max_tokens),
            on_text=on_text, budget=budget)


def event_spend(data_dir: Path) -> dict[tuple[str, str], float]:
    from jobs.budget.spend import read_spend

    return {(scope, day): usd for scope, day, usd in read_spend(data_dir).scope_days()}


def assert_same(ledger: dict[tuple[str, str], float], events: dict[tuple[str, str], float]) -> None:
    keys = {k for k, v in ledger.items() if v} | {k for k, v in events.items() if v}
    assert keys
    for key in keys:
        assert ledger.get(key, 0.0) == pytest.approx(events.get(key, 0.0), abs=1e-9), key


FALLBACK = "anthropic/claude-haiku-4.5"


@pytest.fixture
def accounted(emulator_factory: Any, tmp_path: Path, catalog: Catalog) -> Path:
    """Traffic through every outcome, recorded and settled; returns the data directory."""
    from hive_core.openrouter import OpenRouterClient

    emu = emulator_factory(faults=[f"{MODEL}:500:0.3", f"{MODEL}:midstream-error:0.15"], seed=11)
    settings = emu_settings(emu, tmp_path, max_attempts=3, app="acct")
    data_dir = settings.data_dir
    save_budget_config(DataDir(data_dir).config_file, BudgetConfig(limits={"global": Limit("global", daily_usd=50)}))
    with EventLog(data_dir) as log, Budget(data_dir, prices=catalog, app=settings.app) as budget:
        sink = budget.settling_sink(log)
        with OpenRouterClient(settings, sink=sink, prices=catalog, policy=fast_policy(settings)) as client:
            for i in range(24):
                ask_budgeted(client, budget, [MODEL, FALLBACK], stream=i % 2 == 0,
                             cancel_after=2 if i % 5 == 0 else None)
        states = budget.ledger.states()
    assert states.get("reserved", 0) == 0 and states["settled"] >= 20
    return data_dir


def outcomes(data_dir: Path) -> dict[str, int]:
    from queries import connect

    with connect(data_dir) as store:
        rows = store.con.execute("SELECT status, COUNT(*) FROM api_calls GROUP BY 1 UNION ALL "
                                 "SELECT 'stream:' || outcome, COUNT(*) FROM stream_outcomes GROUP BY 1 UNION ALL "
                                 "SELECT 'fallback', COUNT(*) FROM api_calls WHERE fallback_index > 0 UNION ALL "
                                 "SELECT 'retried', COUNT(*) FROM api_calls WHERE attempt > 1").fetchall()
    return dict(rows)


def test_rebuild_ledger(accounted: Path) -> None:
    seen = outcomes(accounted)
    # every path was exercised: retries, failures, fallbacks, cancels and mid-stream errors
    assert seen["retried"] and seen["server_error"] and seen["fallback"] and seen["stream:cancelled"]
    assert seen.get("stream:errored", 0) + seen.get("stream:completed", 0)
    with Ledger(DataDir(accounted).ledger) as ledger:
        live = ledger.spend_by_day()
    assert_same(live, event_spend(accounted))  # the ledger as the requests left it
    result = rebuild_ledger(accounted, now=datetime.now(UTC))
    with Ledger(DataDir(accounted).ledger) as ledger:
        assert_same(ledger.spend_by_day(), event_spend(accounted))
        assert ledger.reserved("global") == 0
    assert result.total_usd == pytest.approx(sum(v for (s, _), v in event_spend(accounted).items() if s == "global"))


def reserve_and_exit(path: str) -> None:
    """A process that reserves and dies without settling (a crashed ``hive ask``)."""
    with Ledger(Path(path)) as ledger:
        reserve(ledger, "orphan", 0.2, now=datetime.now(UTC))


def test_rebuild_ledger_cli(accounted: Path, capsys: pytest.CaptureFixture[str], fork_ctx: Any) -> None:
    path = DataDir(accounted).ledger
    con = sqlite3.connect(path)
    try:
        with con:  # a ledger gone wrong
            con.execute("INSERT INTO spend (scope, day, amount_nusd) VALUES ('global', '2020-01-01', 99000000000)")
    finally:
        con.close()
    child = fork_ctx.Process(target=reserve_and_exit, args=(str(path),))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    with Ledger(path) as ledger:
        assert reserve(ledger, "live", 0.2, now=datetime.now(UTC)) == []  # this process is alive: kept
    code, out, _ = run(jobs_main, capsys, "--data-dir", str(accounted), "rebuild-ledger")
    assert code == 0 and "1 in-flight reservation(s) expired, 1 live kept" in out
    with Ledger(DataDir(accounted).ledger) as ledger:
        assert_same(ledger.spend_by_day(), event_spend(accounted))
    code, out, _ = run(jobs_main, capsys, "--data-dir", str(accounted), "sql",
                       "SELECT COUNT(*) AS n FROM usage", "--format", "json")
    assert code == 0 and json.loads(out)


def test_refused_requests_send_nothing(emulator: Any, tmp_path: Path, catalog: Catalog) -> None:
    from hive_core.openrouter import OpenRouterClient

    settings = emu_settings(emulator, tmp_path)
    save_budget_config(settings.datadir.config_file,
                       BudgetConfig(limits={"global": Limit("global", daily_usd=0.0002)}))
    sent: dict[str, int] = defaultdict(int)
    refusals = 0
    with (EventLog(settings.data_dir) as log, Budget(settings.data_dir, prices=catalog) as budget,
          OpenRouterClient(settings, sink=budget.settling_sink(log), prices=catalog) as client):
        for _ in range(10):
            try:
                ask_budgeted(client, budget, [MODEL], stream=False, max_tokens=200)
                sent["ok"] += 1
            except BudgetExceeded:
                refusals += 1
    assert sent["ok"] >= 1 and refusals >= 1
    assert outcomes(settings.data_dir)["ok"] == sent["ok"]
    assert sum(v for (s, _), v in event_spend(settings.data_dir).items() if s == "global") <= 0.0002


# -- a corrupt ledger: one line everywhere, rebuilt by rebuild-ledger --------------------------------

GARBAGE = b"not a database, a half-copied backup\n" * 200


def usage_on_disk(data_dir: Path) -> dict[tuple[str, str], float]:
    from hive_core.store.events import Usage

    with EventLog(data_dir) as log:
        for i, model in enumerate([MODEL, FALLBACK, MODEL]):
            log.record(Usage(request_id=f"r{i}", app="acct", model=model, cost_usd=0.001 * (i + 1),
                             cost_source="billed"))
    return event_spend(data_dir)


def clobber_pages(path: Path) -> None:
    """A ledger whose header is intact but whose tables are garbage ("disk image is malformed")."""
    with Ledger(path) as ledger:
        for i in range(200):
            ledger.reserve(f"r{i}", request_id=f"r{i}", app=None, model=MODEL, amount_usd=0.0, limits=[], now=NOW,
                           stale_after_s=900)
    data = bytearray(path.read_bytes())
    data[4096:] = GARBAGE[: len(data) - 4096].ljust(len(data) - 4096, b"x")
    path.write_bytes(bytes(data))


def test_corrupt_ledger_is_rebuilt(data_dir: Path) -> None:
    events = usage_on_disk(data_dir)
    path = DataDir(data_dir).ledger
    path.parent.mkdir()
    path.write_bytes(GARBAGE)
    with pytest.raises(DataError, match=rf"{path} is unreadable .*run `hive-jobs rebuild-ledger`"):
        Ledger(path)
    result = rebuild_ledger(data_dir, now=NOW)
    assert result.moved_aside == Path(f"{path}.corrupt-1")
    assert result.moved_aside.read_bytes() == GARBAGE  # nothing lost
    with Ledger(path) as ledger:
        assert_same(ledger.spend_by_day(), events)
    clobber_pages(path)
    assert rebuild_ledger(data_dir, now=NOW).moved_aside == Path(f"{path}.corrupt-2")
    with Ledger(path) as ledger:
        assert_same(ledger.spend_by_day(), events)
    assert Path(f"{path}.corrupt-1").read_bytes() == GARBAGE


def test_corrupt_ledger_is_rebuilt_cli(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = usage_on_disk(data_dir)
    path = DataDir(data_dir).ledger
    path.parent.mkdir()
    path.write_bytes(GARBAGE)
    code, out, err = run(jobs_main, capsys, "--data-dir", str(data_dir), "rebuild-ledger")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"the unreadable ledger was moved to {path}.corrupt-1"
    assert out.splitlines()[1].startswith(f"ledger rebuilt: ${sum(v for (s, _), v in events.items() if s == 'global'):.6f}")
    with Ledger(path) as ledger:
        assert_same(ledger.spend_by_day(), events)


def test_commands_on_a_corrupt_ledger_say_so_in_one_line(emulator: Any, data_dir: Path, catalog_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``hive budget show`` explains; ``hive ask`` under a budget refuses (never sends unbudgeted)."""
    import shutil

    from hive_cli.hive import main as hive_main
    from queries import connect

    (data_dir / "catalog").mkdir()
    shutil.copy(catalog_path, data_dir / "catalog" / "models.json")
    monkeypatch.setenv("OPENROUTER_API_KEY", emulator.api_key)
    monkeypatch.setenv("OPENROUTER_BASE_URL", emulator.base_url)
    save_budget_config(DataDir(data_dir).config_file, BudgetConfig(limits={"global": Limit("global", daily_usd=5)}))
    path = DataDir(data_dir).ledger
    path.parent.mkdir()
    path.write_bytes(GARBAGE)
    expected = f"error: the budget ledger {path} is unreadable (file is not a database): run `hive-jobs rebuild-ledger`"
    for args in (["budget", "show"], ["ask", "Say hi", "--model", MODEL, "--max-tokens", "20", "--no-stream"]):
        code, out, err = run(hive_main, capsys, "--data-dir", str(data_dir), *args)
        assert (code, out) == (1, "") and err.startswith(expected) and err.count("\n") == 1, args
    with connect(data_dir) as store:
        assert store.con.execute("SELECT COUNT(*) FROM api_calls").fetchone() == (0,)  # nothing was sent
    assert path.read_bytes() == GARBAGE  # and nothing was touched


def test_budget_show_reads_a_read_only_store(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``hive budget show`` only reads the ledger: it works where nothing can be written."""
    import subprocess

    from hive_cli.hive import main as hive_main

    usage_on_disk(data_dir)
    with Ledger(DataDir(data_dir).ledger) as ledger:
        reserve(ledger, "flying", 0.25, now=datetime.now(UTC), app="acct")
    view = data_dir.parent / "read-only"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(data_dir), str(view)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"a read-only bind mount is not permitted here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True, capture_output=True)
        with pytest.raises(OSError):
            (view / "probe").write_text("x")
        code, out, err = run(hive_main, capsys, "--data-dir", str(view), "budget", "show", "--json")
    finally:
        subprocess.run(["umount", str(view)], check=True)
    assert (code, err) == (0, "")
    assert json.loads(out)["scopes"][0]["reserved_usd"] == pytest.approx(0.25)


def test_a_ledger_from_before_settlement_ids_is_upgraded_in_place(data_dir: Path) -> None:
    """Settlements written before the ledger recorded their usage event are left to the events, as
    every rebuild did then; the columns are added on first open."""
    path = DataDir(data_dir).ledger
    path.parent.mkdir()
    con = sqlite3.connect(path)
    try:
        with con:
            con.executescript("""
                CREATE TABLE reservations (id TEXT PRIMARY KEY, request_id TEXT, app TEXT, model TEXT NOT NULL,
                    amount_nusd INTEGER NOT NULL, state TEXT NOT NULL, created REAL NOT NULL, finished REAL,
                    cost_nusd INTEGER);
                CREATE TABLE spend (scope TEXT NOT NULL, day TEXT NOT NULL, amount_nusd INTEGER NOT NULL,
                    PRIMARY KEY (scope, day)) WITHOUT ROWID;
                INSERT INTO reservations VALUES ('old', 'r-old', NULL, 'm', 5, 'settled', 1.0, 2.0, 5);
                INSERT INTO reservations VALUES ('crashed', 'r-x', NULL, 'm', 5, 'reserved', 1.0, NULL, NULL);
                INSERT INTO spend VALUES ('global', '2026-11-20', 5);
            """)
    finally:
        con.close()
    with Ledger(path) as ledger:
        counts = ledger.rebuild(lambda pending: ([], {s.reservation_id for s in pending}), now=NOW, stale_after_s=900)
        assert counts == RebuildCounts(kept_settlements=0, kept_usd=0.0, live_reservations=0, expired_reservations=1)
        assert ledger.spend_by_day() == {} and ledger.states() == {"settled": 1, "expired": 1}


def test_a_full_disk_says_so(tmp_path: Path) -> None:
    """A full disk reaches SQLite as SQLITE_FULL or as an I/O error; either way the one line says to
    free space (not to rebuild a ledger that is fine)."""
    from tests.faults import full_disk

    def prepare(mount: Path) -> None:
        with Ledger(DataDir(mount).ledger) as fresh:
            reserve(fresh, "before", 0.1)

    with (full_disk(tmp_path / "disk", prepare=prepare) as mount,
          pytest.raises(DataError, match="the disk is full; free space and retry"),
          Ledger(DataDir(mount).ledger) as full):
        for i in range(200):  # until a page no longer fits
            reserve(full, f"r{i}", 0.001)
