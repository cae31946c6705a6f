"""8 processes x 12 requests through ``ask()`` against the emulator, under a daily budget that fits
the maximum cost of about a third of them: billed spend stays within the limit plus one request's
maximum cost, nothing is reserved twice, and every refusal is one clear line."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hive_core.budget import LEDGER_NAME, BudgetConfig, Ledger, Limit, max_cost, save_budget_config
from hive_core.catalog import load_catalog

MODEL = "openai/gpt-4o-mini"
PROCESSES, REQUESTS, MAX_TOKENS = 8, 12, 120
PROMPT = "Explain in detail how budgets hold under concurrent traffic."


def worker(base_url: str, api_key: str, data_dir: str, start: Any, results: Any) -> None:
    """One process: 12 requests through the real ask pipeline with a budget; reports what happened."""
    from hive_core.ask import AskOptions, ask
    from hive_core.budget import Budget
    from hive_core.errors import BudgetExceeded
    from hive_core.openrouter import OpenRouterClient
    from hive_core.settings import Settings
    from ingest.log import EventLog

    settings = Settings(api_key=api_key, base_url=base_url, data_dir=Path(data_dir), app="load")
    catalog = load_catalog(settings.catalog_path)
    ok, refusals = 0, []
    with (EventLog(settings.data_dir) as log, Budget(settings.data_dir, prices=catalog, app=settings.app) as budget,
          OpenRouterClient(settings, sink=budget.settling_sink(log), prices=catalog) as client):
        start.wait()
        for _ in range(REQUESTS):
            try:
                ask(client, PROMPT, [MODEL], AskOptions(stream=False, max_tokens=MAX_TOKENS), budget=budget)
                ok += 1
            except BudgetExceeded as refused:
                refusals.append(str(refused))
    results.put((ok, refusals))


@pytest.mark.slow
def test_eight_processes_hold_the_budget(emulator: Any, data_dir: Path, catalog_path: Path) -> None:
    (data_dir / "catalog").mkdir()
    shutil.copy(catalog_path, data_dir / "catalog" / "models.json")
    bound = max_cost(load_catalog(data_dir / "catalog" / "models.json"), MODEL, PROMPT,
                     max_tokens=MAX_TOKENS, default_max_tokens=4096).max_usd
    limit = round(bound * PROCESSES * REQUESTS / 3, 9)
    save_budget_config(data_dir / "config.json", BudgetConfig(limits={"global": Limit("global", daily_usd=limit)}))
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited emulator thread or locks
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(emulator.base_url, emulator.api_key, str(data_dir), start, results))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    start.set()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    sent = sum(ok for ok, _ in outcomes)
    refusals = [message for _, messages in outcomes for message in messages]
    assert sent + len(refusals) == PROCESSES * REQUESTS
    assert PROCESSES * REQUESTS / 3 <= sent < PROCESSES * REQUESTS  # billed < max: more than a third fit

    from queries import connect

    with connect(data_dir) as store:
        billed, usage_rows, requests = store.con.execute(
            "SELECT SUM(cost_usd), COUNT(*), COUNT(DISTINCT request_id) FROM usage").fetchone()
        (calls,) = store.con.execute("SELECT COUNT(*) FROM api_calls").fetchone()
    assert billed <= limit + bound
    assert billed <= limit  # reservations hold the maximum: the limit itself is never crossed
    assert usage_rows == requests == calls == sent  # refused requests never reached OpenRouter

    with Ledger(data_dir / "state" / LEDGER_NAME) as ledger:
        states = ledger.states()
        assert ledger.spend_by_day()[("global", max(d for _, d in ledger.spend_by_day()))] == pytest.approx(billed)
    assert states == {"settled": sent}  # nothing left in flight, nothing reserved twice
    con = sqlite3.connect(data_dir / "state" / LEDGER_NAME)
    try:
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT request_id) FROM reservations").fetchone() == (sent, sent)
    finally:
        con.close()
    print(f"sent {sent}, refused {len(refusals)}, billed ${billed:.6f} of ${limit:.6f} (max per request ${bound:.6f})")
    for message in refusals:
        assert "\n" not in message
        assert message.startswith(f"daily budget of global exceeded: limit ${limit:.6f}".rstrip("0"))
        assert "reserved $" in message and message.endswith("lower --max-tokens, or pass --over-budget")
