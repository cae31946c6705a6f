"""Budget reservation speed: ``reserve`` + ``settle`` through :class:`hive_core.budget.Budget`, measured
in-process while 8 processes do the same against one ledger as fast as they can (the worst case:
real traffic spends seconds in each request between the two calls).

Each iteration is what ``ask()`` adds to a request: estimate the maximum cost, check a global and
a model limit against spend and in-flight reservations and record the reservation in one
immediate transaction, then settle it to a cost. Target (issue 6): <= 1 ms median.

The same loop against the PostgreSQL ledger (``HIVE_LEDGER_URL``, issue 15), on a server started
for the run on 127.0.0.1 (tests/plugins/postgres.py), beside SQLite's in the same run: reservations
under a global limit take the same advisory lock, so they run one at a time as on SQLite, and each
costs network round trips (six per reservation, four per settlement) where SQLite's cost a system
call. The server runs with ``synchronous_commit=off``, the durability of SQLite's WAL with
``synchronous=NORMAL`` (a crash of the machine may lose the last commits, never corrupts).
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Figure

PROCESSES = 8
ITERATIONS = 1500
MODEL = "openai/gpt-4o-mini"


@dataclass(frozen=True)
class _Entry:
    pricing: Any


class _Prices:
    """One model's prices: the catalog lookup the request path makes, without loading 339 models."""

    def __init__(self) -> None:
        from hive_core.catalog.pricing import Pricing

        self.entry = _Entry(Pricing.from_openrouter({"prompt": "0.00000015", "completion": "0.0000006"}))

    def get(self, model_id: str) -> _Entry:
        return self.entry


def _worker(data_dir: str, iterations: int, start: Any, results: Any, ledger_url: str | None) -> None:
    from hive_core.budget import Budget

    samples = []
    with Budget(Path(data_dir), prices=_Prices(), app="bench", ledger_url=ledger_url) as budget:
        budget.reserve(MODEL, "warm-up", max_tokens=10).release()
        start.wait()
        first = time.perf_counter()
        for i in range(iterations):
            began = time.perf_counter()
            reservation = budget.reserve(MODEL, "Summarise the quarterly report in three bullet points.",
                                         max_tokens=256)
            reservation.settle(0.0001 + i * 1e-9)
            samples.append(time.perf_counter() - began)
        wall = time.perf_counter() - first
    results.put((samples, wall))


def _contended(processes: int, iterations: int, ledger_url: str | None = None) -> tuple[list[float], float]:
    """Every sample of every process, and the longest process's wall time (``ledger_url``: on
    PostgreSQL, else the data directory's SQLite ledger)."""
    from hive_core.budget import BudgetConfig, Limit, save_budget_config

    with tempfile.TemporaryDirectory() as tmp:
        limits = {"global": Limit("global", daily_usd=1e6, monthly_usd=1e7),
                  f"model:{MODEL}": Limit(f"model:{MODEL}", daily_usd=1e6)}
        save_budget_config(Path(tmp) / "config.json", BudgetConfig(limits=limits))
        ctx = multiprocessing.get_context("spawn")
        start, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(tmp, iterations, start, results, ledger_url))
                 for _ in range(processes)]
        for p in procs:
            p.start()
        time.sleep(0.2)
        start.set()
        outcomes = [results.get(timeout=300) for _ in procs]
        for p in procs:
            p.join()
    return [s for samples, _ in outcomes for s in samples], max(wall for _, wall in outcomes)


def _postgres(database: str) -> tuple[Any, str]:
    """A PostgreSQL server for the run and a URL of a fresh database on it."""
    from tests.plugins.postgres import start_pg

    server = start_pg(settings=("synchronous_commit=off",))
    server.admin(f"CREATE DATABASE {database}")
    return server, server.url(database)


def _pg_figures(sqlite_busy: list[float], sqlite_wall: float) -> list[Figure]:
    import shutil

    server, url = _postgres("bench")
    try:
        _contended(1, 50, url)  # creates the schema; warms the server's caches
        busy, wall = _contended(PROCESSES, ITERATIONS, url)
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)
    median_ms = statistics.median(busy) * 1000
    sqlite_ms = statistics.median(sqlite_busy) * 1000
    rate, sqlite_rate = len(busy) / wall, len(sqlite_busy) / sqlite_wall
    return [
        Figure("budget reserve+settle, 8 processes, PostgreSQL (median)", median_ms, "ms", "-", None,
               peer="SQLite ledger", peer_value=sqlite_ms, ratio=median_ms / sqlite_ms,
               note=f"p95 {statistics.quantiles(busy, n=20)[-1] * 1000:.2f} ms; server on 127.0.0.1, "
                    "synchronous_commit=off"),
        Figure("budget reserve+settle per second, 8 processes, PostgreSQL", rate, "/s", "-", None,
               peer="SQLite ledger", peer_value=sqlite_rate, ratio=rate / sqlite_rate,
               note="all processes together, under one global limit (one lock)"),
    ]


def run() -> list[Figure]:
    """Median and p95 of reserve + settle, alone and with 8 processes contending; the same on the
    PostgreSQL ledger beside it."""
    alone, _ = _contended(1, ITERATIONS)
    busy, wall = _contended(PROCESSES, ITERATIONS)
    median_ms = statistics.median(busy) * 1000
    p95_ms = statistics.quantiles(busy, n=20)[-1] * 1000
    rate = len(busy) / wall
    return [
        Figure("budget reserve+settle, 8 processes (median)", median_ms, "ms", "<= 1 ms", median_ms <= 1.0,
               note=f"{PROCESSES} processes x {ITERATIONS} back-to-back; p95 {p95_ms:.2f} ms; "
                    f"{rate:,.0f} reservations+settlements/s in all"),
        Figure("budget reserve+settle, 1 process (median)", statistics.median(alone) * 1000, "ms", "-", None,
               note="the same loop without contention"),
        *_pg_figures(busy, wall),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure)
