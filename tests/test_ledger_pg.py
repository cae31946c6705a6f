"""The budget ledger on a real PostgreSQL server (``HIVE_LEDGER_URL``): the SQLite ledger's protocol
tests on it, processes x connections that never overshoot a limit, key scopes, rebuild and expiry
across hosts, the schema created on first use, and failures as one line without the password."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from hive_core.budget import Budget, BudgetConfig, Limit, save_budget_config
from hive_core.budget.ledger_core import RebuildCounts
from hive_core.budget.ledger_pg import PgLedger, display_url
from hive_core.budget.ledgers import open_ledger
from hive_core.catalog.catalog import Catalog
from hive_core.errors import ConfigError, LedgerAuthFailed, LedgerUnreachable, TransientError
from hive_core.period import Period
from hive_core.store.datadir import DataDir
from tests.plugins.emulator import MODEL
from tests.plugins.ledger_cases import NOW, reserve

if TYPE_CHECKING:
    from tests.plugins.postgres import PgServer


@pytest.fixture
def ledger(pg_url: str) -> Iterator[PgLedger]:
    with PgLedger(pg_url) as opened:
        yield opened


def tables(url: str) -> dict[str, str]:
    """``table.column -> type`` of the ledger's schema (empty when there is none)."""
    with psycopg.connect(url) as con:
        rows = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                           "WHERE table_schema = 'hive'").fetchall()
    return {f"{t}.{c}": d for t, c, d in rows}


def test_schema_is_created_on_first_use(pg_url: str) -> None:
    with PgLedger(pg_url, readonly=True) as view:  # a reader never creates it, and reads it as empty
        assert view.states() == {} and view.reserved("global") == 0 and view.spend_by_day() == {}
    assert tables(pg_url) == {}
    openers = [threading.Thread(target=lambda: PgLedger(pg_url).close()) for _ in range(4)]
    for opener in openers:  # first openers at once: one creates, the others wait and find it
        opener.start()
    for opener in openers:
        opener.join()
    columns = tables(pg_url)
    assert columns["spend.amount_nusd"] == columns["reservations.amount_nusd"] == "bigint"  # > $2.14 fits
    with PgLedger(pg_url) as again:
        assert reserve(again, "a", 3.0, force=True)  # 3e9 nano-dollars
        assert again.reserved("global") == 3.0


def test_key_scopes_count_and_survive_a_rebuild(ledger: PgLedger) -> None:
    limits = [Limit("key:k1", daily_usd=1.0)]
    common: dict[str, Any] = {"app": "gw", "model": MODEL, "now": NOW, "stale_after_s": 900}
    assert ledger.reserve("a", request_id="a", amount_usd=0.6, limits=limits, key="k1", **common) == []
    (breach,) = ledger.reserve("b", request_id="b", amount_usd=0.6, limits=limits, key="k1", **common)
    assert (breach.scope, breach.reserved_usd) == ("key:k1", 0.6)
    assert ledger.reserve("c", request_id="c", amount_usd=0.6, limits=[], key="k2", **common) == []
    assert ledger.reserved("key:k1") == 0.6 and ledger.reserved("key:k2") == 0.6 and ledger.reserved("global") == 1.2
    assert ledger.settle("a", 0.5, now=NOW, event_id="e-a")
    day = NOW.date().isoformat()
    counts = ledger.rebuild(lambda pending: ([("global", day, 0.5), ("key:k1", day, 0.2)], {"a"}),
                            now=NOW, stale_after_s=900)
    assert counts == RebuildCounts(0, 0.0, 1, 0)
    assert ledger.spend("key:k1", Period.daily(NOW)) == 0.5  # never lowered by events that name the key less
    assert ledger.spend("global", Period.daily(NOW)) == 0.5


def reserve_and_exit(url: str) -> None:
    """A process that reserves and dies without settling (a crashed ``hive ask``)."""
    with PgLedger(url) as ledger:
        reserve(ledger, "orphan", 0.2, now=datetime.now(UTC))


def test_rebuild_expires_dead_processes_here_and_only_stale_ones_elsewhere(ledger: PgLedger, pg_url: str,
                                                                              fork_ctx: Any) -> None:
    child = fork_ctx.Process(target=reserve_and_exit, args=(pg_url,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    now = datetime.now(UTC)
    reserve(ledger, "live", 0.1, now=now)  # this process, alive
    reserve(ledger, "remote", 0.1, now=now)
    reserve(ledger, "remote-old", 0.1, now=now - timedelta(seconds=600))
    with psycopg.connect(pg_url) as con:  # two reservations of a process on another host (its pid is dead here)
        con.execute("UPDATE hive.reservations SET host = 'other-host', pid = %s WHERE id LIKE 'remote%%'",
                    (child.pid,))
    counts = ledger.rebuild(lambda pending: ([], set()), now=now, stale_after_s=300)
    assert (counts.live_reservations, counts.expired_reservations) == (2, 2)  # live + remote kept
    assert ledger.reserved("global") == pytest.approx(0.2)
    assert ledger.states() == {"reserved": 2, "expired": 2}
    later = ledger.rebuild(lambda pending: ([], set()), now=now + timedelta(seconds=301), stale_after_s=300)
    assert (later.live_reservations, later.expired_reservations) == (0, 2)  # stale: expired wherever they are


def test_rebuild_replaces_spend_and_keeps_what_the_events_miss(ledger: PgLedger) -> None:
    for rid, cost in (("on-disk", 0.25), ("buffered", 0.5)):
        reserve(ledger, rid, 0.5)
        ledger.settle(rid, cost, now=NOW, event_id=f"e-{rid}")
    day = NOW.date().isoformat()
    counts = ledger.rebuild(lambda pending: ([("global", day, 0.25), (f"model:{MODEL}", day, 0.25)], {"on-disk"}),
                            now=NOW, stale_after_s=900)
    assert (counts.kept_settlements, counts.kept_usd) == (1, 0.5)
    assert ledger.spend_by_day() == {("global", day): 0.75, (f"model:{MODEL}", day): 0.75}
    again = ledger.rebuild(lambda pending: ([("global", day, 0.75), (f"model:{MODEL}", day, 0.75)],
                                            {s.reservation_id for s in pending}), now=NOW, stale_after_s=900)
    assert again.kept_settlements == 0 and ledger.spend_by_day()[("global", day)] == 0.75  # never twice


# -- processes x connections against one limit ------------------------------------------------------

PROCESSES, CONNECTIONS, ATTEMPTS, AMOUNT, LIMIT = 4, 2, 40, 0.01, 1.0


def reserving_process(url: str, start: Any, accepted: Any) -> None:
    """One process, two ledger connections (threads): reserve, then settle the full amount or release."""
    def connection(n: int) -> None:
        with PgLedger(url) as ledger:
            start.wait(30)
            for i in range(ATTEMPTS):
                rid = f"{threading.get_native_id()}-{n}-{i}"
                if reserve(ledger, rid, AMOUNT, now=datetime.now(UTC)):
                    continue  # refused
                if i % 4 == 3:
                    ledger.release(rid, now=datetime.now(UTC))
                else:
                    ledger.settle(rid, AMOUNT, now=datetime.now(UTC))
                    with accepted.get_lock():
                        accepted.value += 1

    threads = [threading.Thread(target=connection, args=(n,)) for n in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_processes_and_connections_never_overshoot(pg_url: str, fork_ctx: Any) -> None:
    """4 processes x 2 connections, 320 attempts at $0.01 against $1.00 a day: the spend ends exactly
    at the limit (every refusal saw it full, counting what was in flight), never past it."""
    PgLedger(pg_url).close()
    start, accepted = fork_ctx.Event(), fork_ctx.Value("q", 0)
    procs = [fork_ctx.Process(target=reserving_process, args=(pg_url, start, accepted)) for _ in range(PROCESSES)]
    try:
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(timeout=120)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    with PgLedger(pg_url, readonly=True) as view:
        spent = view.spend("global", Period.daily(datetime.now(UTC)))
        states = view.states()
    assert spent <= LIMIT
    assert accepted.value == round(LIMIT / AMOUNT) and spent == pytest.approx(LIMIT)
    assert states.get("reserved", 0) == 0 and states["settled"] == accepted.value


# -- the setting, and failures as one line ----------------------------------------------------------

def test_budget_uses_the_ledger_url(data_dir: Path, pg_url: str, catalog: Catalog) -> None:
    save_budget_config(DataDir(data_dir).config_file, BudgetConfig(limits={"global": Limit("global", daily_usd=1)}))
    with Budget(data_dir, prices=catalog, ledger_url=pg_url, clock=lambda: NOW) as budget:
        assert isinstance(budget.ledger, PgLedger)
        budget.reserve(MODEL, "Say hi", max_tokens=10).release()
    assert not DataDir(data_dir).ledger.exists()  # nothing written beside the events
    with PgLedger(pg_url, readonly=True) as view:
        assert view.states() == {"released": 1}
    with pytest.raises(ConfigError, match="must be a postgresql://") as refused:
        open_ledger(data_dir, "mysql://u:Pa55word@h/db")
    assert "Pa55word" not in str(refused.value)


def test_display_url_never_shows_the_password() -> None:
    assert display_url("postgresql://hive:s3cr%40t@db.example:6432/budgets?password=other&sslmode=require") == \
        "postgresql://hive@db.example:6432/budgets"
    assert display_url("postgres://db/x") == "postgres://db/x"


def test_a_wrong_password_is_one_line(pg_server: PgServer, pg_url: str) -> None:
    wrong = pg_url.replace(pg_server.password, "Wr0ng-Pa55word")
    with pytest.raises(LedgerAuthFailed) as refused:
        PgLedger(wrong)
    text = str(refused.value)
    assert text == (f"the budget ledger {display_url(wrong)} refused the login (password authentication failed "
                    'for user "hive"): fix the user or password in HIVE_LEDGER_URL')
    assert "Wr0ng-Pa55word" not in text and pg_server.password not in text


def test_an_unreachable_server_is_one_line(pg_server: PgServer) -> None:
    from tests.plugins.postgres import free_port

    url = f"postgresql://hive:{pg_server.password}@127.0.0.1:{free_port()}/hive"
    with pytest.raises(LedgerUnreachable) as refused:
        PgLedger(url, connect_timeout_s=2)
    text = str(refused.value)
    assert isinstance(refused.value, TransientError)
    assert text.startswith(f"the budget ledger {display_url(url)} cannot be reached (Connection refused")
    assert "\n" not in text and pg_server.password not in text


def test_a_dropped_connection_fails_once_then_reconnects(ledger: PgLedger, pg_url: str) -> None:
    reserve(ledger, "before", 0.1)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'hive-ledger' AND datname = current_database()")
    with pytest.raises(LedgerUnreachable, match=r"^the budget ledger .* went away \(.*\): check the server and retry$"):
        reserve(ledger, "lost", 0.1)
    assert reserve(ledger, "after", 0.1) == []  # a new connection
    assert ledger.states() == {"reserved": 2}


def test_budget_show_cli(data_dir: Path, pg_server: PgServer, pg_url: str, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``hive budget show`` reads the reservations in flight from PostgreSQL under HIVE_LEDGER_URL,
    and a refused login is one line without the password."""
    from hive_cli.hive import main as hive_main
    from tests.plugins.cli import run

    save_budget_config(DataDir(data_dir).config_file, BudgetConfig(limits={"global": Limit("global", daily_usd=5)}))
    with PgLedger(pg_url) as ledger:
        reserve(ledger, "flying", 0.25, now=datetime.now(UTC), app="acct")
    monkeypatch.setenv("HIVE_LEDGER_URL", pg_url)
    code, out, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "show", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["scopes"][0]["reserved_usd"] == pytest.approx(0.25)
    assert not DataDir(data_dir).ledger.exists()  # the data directory's SQLite ledger was not opened
    wrong = pg_url.replace(pg_server.password, "Wr0ng-Pa55word")
    monkeypatch.setenv("HIVE_LEDGER_URL", wrong)
    code, out, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "show")
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert err.startswith(f"error: the budget ledger {display_url(wrong)} refused the login")
    assert "Wr0ng-Pa55word" not in err and pg_server.password not in err
