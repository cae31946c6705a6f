"""8 processes x 12 requests through ``ask()`` against the emulator, under a daily budget that fits
the maximum cost of about a third of them: billed spend stays within the limit plus one request's
maximum cost, nothing is reserved twice, and every refusal is one clear line."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hive_core.budget import BudgetConfig, Ledger, Limit, max_cost, save_budget_config
from hive_core.catalog.catalog import load_catalog
from hive_core.store.datadir import DataDir
from tests.plugins.emulator import MODEL

PROCESSES, REQUESTS, MAX_TOKENS = 8, 12, 120
PROMPT = "Explain in detail how budgets hold under concurrent traffic."


def worker(base_url: str, api_key: str, data_dir: str, start: Any, results: Any, connections: int = 1,
           ledger_url: str | None = None) -> None:
    """One process: ``connections`` threads, each with a ledger connection of its own, sending 12
    requests each through the real ask pipeline with a budget; reports what happened."""
    import threading

    from hive_core.ask import AskOptions, ask
    from hive_core.budget import Budget
    from hive_core.errors import BudgetExceeded
    from hive_core.openrouter import OpenRouterClient
    from hive_core.settings import Settings
    from ingest.log import EventLog

    settings = Settings(api_key=api_key, base_url=base_url, data_dir=Path(data_dir), app="load", ledger_url=ledger_url)
    catalog = load_catalog(settings.datadir.catalog_file)
    sent: list[str] = []  # (list.append is atomic across threads; += on a shared int is not)
    refusals: list[str] = []
    with EventLog(settings.data_dir) as log:

        def connection() -> None:
            with (Budget(settings.data_dir, prices=catalog, app=settings.app, ledger_url=ledger_url) as budget,
                  OpenRouterClient(settings, sink=budget.settling_sink(log), prices=catalog) as client):
                start.wait()
                for _ in range(REQUESTS):
                    try:
                        ask(client, PROMPT, [MODEL], AskOptions(stream=False, max_tokens=MAX_TOKENS), budget=budget)
                        sent.append("ok")
                    except BudgetExceeded as refused:
                        refusals.append(str(refused))

        threads = [threading.Thread(target=connection) for _ in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    results.put((len(sent), refusals))


def stop_resource_tracker() -> None:
    """Stop the helper process that ``spawn`` semaphores start in this process (it would otherwise
    outlive the test, and the session's backstop would report it)."""
    import gc
    from multiprocessing import resource_tracker

    gc.collect()  # the semaphores are unregistered as they are collected: before the tracker stops
    stop = getattr(resource_tracker._resource_tracker, "_stop", None)  # private, 3.11.5+; harmless if absent
    if stop is not None:
        stop()


def reservation_ids(data_dir: Path, ledger_url: str | None) -> tuple[int, int]:
    """(reservations, distinct request ids) in the ledger, read with the database's own driver."""
    sql = "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM reservations"
    if ledger_url:
        import psycopg

        with psycopg.connect(ledger_url) as pg:
            row = pg.execute(sql.replace("reservations", "hive.reservations")).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])
    con = sqlite3.connect(DataDir(data_dir).ledger)
    try:
        count, distinct = con.execute(sql).fetchone()
    finally:
        con.close()
    return int(count), int(distinct)


def hold_the_budget(emulator: Any, data_dir: Path, catalog_path: Path, *, processes: int, connections: int = 1,
                    ledger_url: str | None = None) -> None:
    """The trial: ``processes`` x ``connections`` ledger connections send 12 requests each under a
    daily limit that fits the maximum cost of a third of them; billed spend never crosses it."""
    from hive_core.budget.ledgers import open_ledger

    streams = processes * connections
    (data_dir / "catalog").mkdir()
    shutil.copy(catalog_path, data_dir / "catalog" / "models.json")
    bound = max_cost(load_catalog(data_dir / "catalog" / "models.json"), MODEL, PROMPT,
                     max_tokens=MAX_TOKENS, default_max_tokens=4096).max_usd
    limit = round(bound * streams * REQUESTS / 3, 9)
    save_budget_config(DataDir(data_dir).config_file, BudgetConfig(limits={"global": Limit("global", daily_usd=limit)}))
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited emulator thread or locks
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(emulator.base_url, emulator.api_key, str(data_dir), start, results,
                                              connections, ledger_url))
             for _ in range(processes)]
    try:
        for p in procs:
            p.start()
        start.set()
        outcomes = [results.get(timeout=90) for _ in procs]
        for p in procs:
            p.join(timeout=30)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        del start, results
        stop_resource_tracker()
    assert [p.exitcode for p in procs] == [0] * processes
    sent = sum(ok for ok, _ in outcomes)
    refusals = [message for _, messages in outcomes for message in messages]
    assert sent + len(refusals) == streams * REQUESTS
    assert streams * REQUESTS / 3 <= sent < streams * REQUESTS  # billed < max: more than a third fit

    from queries import connect

    with connect(data_dir) as store:
        billed, usage_rows, requests = store.con.execute(
            "SELECT SUM(cost_usd), COUNT(*), COUNT(DISTINCT request_id) FROM usage").fetchone()
        (calls,) = store.con.execute("SELECT COUNT(*) FROM api_calls").fetchone()
    assert billed <= limit + bound
    assert billed <= limit  # reservations hold the maximum: the limit itself is never crossed
    assert usage_rows == requests == calls == sent  # refused requests never reached OpenRouter

    with open_ledger(data_dir, ledger_url) as ledger:
        states = ledger.states()
        assert ledger.spend_by_day()[("global", max(d for _, d in ledger.spend_by_day()))] == pytest.approx(billed)
    assert states == {"settled": sent}  # nothing left in flight, nothing reserved twice
    assert reservation_ids(data_dir, ledger_url) == (sent, sent)
    print(f"sent {sent}, refused {len(refusals)}, billed ${billed:.6f} of ${limit:.6f} (max per request ${bound:.6f})")
    for message in refusals:
        assert "\n" not in message
        assert message.startswith(f"daily budget of global exceeded: limit ${limit:.6f}".rstrip("0"))
        assert "reserved $" in message and message.endswith("lower --max-tokens, or pass --over-budget")


@pytest.mark.slow
def test_eight_processes_hold_the_budget(emulator: Any, data_dir: Path, catalog_path: Path) -> None:
    hold_the_budget(emulator, data_dir, catalog_path, processes=PROCESSES)


# -- rebuild-ledger while traffic flows -------------------------------------------------------------

#: writer processes; each settles at least MIN_ROUNDS requests, then goes on until the rebuilds are done
WRITERS, MIN_ROUNDS, MAX_ROUNDS = 12, 10, 400


def nusd_of(writer: int, round_: int) -> int:
    """The cost of one request, in nano-dollars: distinct per request, so a loss shows."""
    return 1_000 * (writer * MAX_ROUNDS + round_ + 1)


def settling_writer(data_dir: str, writer: int, start: Any, stop: Any, settled: Any, count: Any) -> None:
    """One process of traffic: reserve, record the usage event through the settling sink (which
    settles the reservation), then add the settled cost to ``settled`` (nano-dollars).

    Half the writers flush their event log every 50 ms, the other half keep every event buffered
    until they close: a rebuild meets events on disk, in a buffer, and settling under its feet."""
    import time

    from hive_core.budget import Budget
    from hive_core.store.events import Usage
    from ingest.log import EventLog

    deadline = time.monotonic() + 60
    with (EventLog(Path(data_dir), max_age_s=0.05 if writer % 2 else 600.0) as log,
          Budget(Path(data_dir), app=f"app{writer % 3}") as budget):
        sink = budget.settling_sink(log)
        start.wait(10)
        for round_ in range(MAX_ROUNDS):
            if round_ >= MIN_ROUNDS and (stop.is_set() or time.monotonic() > deadline):
                break
            model = MODEL if round_ % 2 else "anthropic/claude-haiku-4.5"
            reservation = budget.reserve(model, PROMPT)
            cost = nusd_of(writer, round_)
            sink.record(Usage(request_id=reservation.request_id, app=budget.app, model=model,
                              cost_usd=cost / 1e9, cost_source="billed"))
            with settled.get_lock():
                settled.value += cost
                count.value += 1
            time.sleep(0.05)  # a realistic pace, and CPU left for the rebuilds on a small machine


def ledger_total(path: Path, scope: str = "global") -> int:
    """Settled spend of ``scope`` over every day, nano-dollars, read as any reader would."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        (total,) = con.execute("SELECT COALESCE(SUM(amount_nusd), 0) FROM spend WHERE scope = ?", (scope,)).fetchone()
    finally:
        con.close()
    return int(total)


def traffic_under_rebuilds(data_dir: Path, fork_ctx: Any, rebuild: Callable[[], None],
                           rebuilds: int) -> tuple[int, int, list[int]]:
    """Run the writers while ``rebuild`` runs ``rebuilds`` times, a thread watching the ledger.
    Returns (settled nano-dollars, settlements, shortfalls: each time a reader saw less spend than
    was settled before it looked)."""
    import threading
    import time

    path = DataDir(data_dir).ledger
    Ledger(path).close()
    start, stop = fork_ctx.Event(), fork_ctx.Event()
    settled, count = fork_ctx.Value("q", 0), fork_ctx.Value("q", 0)
    procs = [fork_ctx.Process(target=settling_writer, args=(str(data_dir), w, start, stop, settled, count))
             for w in range(WRITERS)]
    shortfalls: list[int] = []
    done = threading.Event()

    def observe() -> None:
        while not done.is_set():
            before = settled.value  # settled before the read: the ledger must show at least this
            seen = ledger_total(path)
            if seen < before:
                shortfalls.append(before - seen)

    observer = threading.Thread(target=observe, daemon=True)
    try:
        for p in procs:
            p.start()
        observer.start()
        start.set()
        for _ in range(rebuilds):
            rebuild()
            time.sleep(0.2)  # traffic waits while a rebuild reads: let it run between rebuilds
        stop.set()
        for p in procs:
            p.join(timeout=60)
    finally:
        stop.set()
        done.set()
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        observer.join(timeout=30)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    return settled.value, count.value, shortfalls


def assert_never_lowered(data_dir: Path, rebuilds: int, traffic: tuple[int, int, list[int]]) -> None:
    from jobs.budget.ledger import rebuild_ledger
    from jobs.budget.spend import read_spend

    total, settlements, shortfalls = traffic
    path = DataDir(data_dir).ledger
    print(f"{rebuilds} rebuilds during {settlements} settlements; worst shortfall "
          f"${max(shortfalls, default=0) / 1e9:.6f} of ${total / 1e9:.6f} in {len(shortfalls)} reads")
    assert settlements > WRITERS * MIN_ROUNDS
    assert shortfalls == []  # never, not even for a moment, less than what was settled
    assert ledger_total(path) == total  # nothing lost, nothing counted twice
    events = {(scope, day): usd for scope, day, usd in read_spend(data_dir).scope_days()}
    rebuild_ledger(data_dir, now=datetime.now(UTC))  # quiet now: the events are all on disk
    with Ledger(path) as ledger:
        assert ledger.spend_by_day() == pytest.approx(events, abs=1e-9)
        assert ledger.states() == {"settled": settlements}
    assert ledger_total(path) == total


@pytest.mark.slow
def test_rebuild_during_traffic_never_lowers_spend(data_dir: Path, fork_ctx: Any) -> None:
    """12 writer processes settling requests while ``rebuild-ledger`` runs 5 times: no reader ever
    sees less spend than was settled before it looked, and at the end the ledger equals the usage
    events, scope by scope and day by day."""
    from jobs.budget.ledger import rebuild_ledger

    def rebuild() -> None:
        rebuild_ledger(data_dir, now=datetime.now(UTC))

    assert_never_lowered(data_dir, 5, traffic_under_rebuilds(data_dir, fork_ctx, rebuild, 5))


@pytest.mark.slow
def test_rebuild_during_traffic_never_lowers_spend_cli(data_dir: Path, fork_ctx: Any) -> None:
    import subprocess
    import sys

    def rebuild() -> None:
        done = subprocess.run([str(Path(sys.executable).parent / "hive-jobs"), "--data-dir", str(data_dir),
                               "rebuild-ledger"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stderr == "", done.stderr

    assert_never_lowered(data_dir, 2, traffic_under_rebuilds(data_dir, fork_ctx, rebuild, 2))


@pytest.mark.slow
def test_four_processes_two_connections_hold_the_budget(emulator: Any, data_dir: Path, catalog_path: Path,
                                                          pg_url: str) -> None:
    """The SQLite ledger's trial through ``ask()`` and the emulator, on PostgreSQL: 4 processes x 2
    ledger connections, billed spend never past the limit, nothing reserved twice."""
    hold_the_budget(emulator, data_dir, catalog_path, processes=4, connections=2, ledger_url=pg_url)
