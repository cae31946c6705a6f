"""A virtual key's daily/monthly limits are the budget scope ``key:<key_id>``: reserved with the
other scopes in one ledger transaction (8 processes x 3 keys never overshoot), the kill switch
works for a key, ``hive budget show`` reports key scopes, a rebuild keeps their spend, and keys
created at once by several processes all keep their limits."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hive_cli.hive import main as hive_main
from hive_core.budget import Budget, Ledger, max_cost
from hive_core.budget.config import load_budget_config
from hive_core.catalog.catalog import Catalog
from hive_core.errors import BudgetExceeded
from hive_core.keys import KeyStore
from hive_core.period import Period
from hive_core.store.datadir import DataDir
from tests.plugins.cli import run
from tests.plugins.emulator import MODEL

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
PROMPT = "How do budgets hold when three keys share a gateway?"
MAX_TOKENS = 120


def _bound(catalog: Catalog) -> float:
    return max_cost(catalog, MODEL, PROMPT, max_tokens=MAX_TOKENS, default_max_tokens=4096).max_usd


def _budget(data_dir: Path, catalog: Catalog) -> Budget:
    return Budget(data_dir, prices=catalog, app="gw", clock=lambda: NOW)


def test_key_limits_are_a_budget_scope(data_dir: Path, catalog: Catalog) -> None:
    bound = _bound(catalog)
    with KeyStore(DataDir(data_dir)) as keys:
        _, limited = keys.create(app="gw", daily_usd=round(bound * 2.5, 9), now=NOW)
        _, free = keys.create(app="gw", now=NOW)
    scope = f"key:{limited.key_id}"
    with _budget(data_dir, catalog) as budget:
        held = [budget.reserve(MODEL, PROMPT, max_tokens=MAX_TOKENS, key=limited.key_id) for _ in range(2)]
        assert budget.ledger.reserved(scope) == pytest.approx(2 * bound)
        with pytest.raises(BudgetExceeded, match=f"daily budget of {scope} exceeded") as refused:
            budget.reserve(MODEL, PROMPT, max_tokens=MAX_TOKENS, key=limited.key_id)
        assert refused.value.scopes == (scope,)
        assert "`hive budget set --daily N --key " + limited.key_id in str(refused.value)
        # another key, and no key, are not held by it
        budget.reserve(MODEL, PROMPT, max_tokens=MAX_TOKENS, key=free.key_id).release()
        budget.reserve(MODEL, PROMPT, max_tokens=MAX_TOKENS).release()
        held[0].settle(bound / 2)
        held[1].release()
        assert budget.ledger.spend(scope, Period.daily(NOW)) == pytest.approx(bound / 2)
        assert budget.ledger.spend(f"key:{free.key_id}", Period.daily(NOW)) == 0
        assert budget.ledger.spend("app:gw", Period.daily(NOW)) == pytest.approx(bound / 2)
        budget.reserve(MODEL, PROMPT, max_tokens=MAX_TOKENS, key=limited.key_id).release()  # room again


def test_kill_switch_on_a_key(data_dir: Path, catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    with KeyStore(DataDir(data_dir)) as keys:
        _, key = keys.create(app="gw", daily_usd=5, now=NOW)
        _, other = keys.create(app="gw", daily_usd=5, now=NOW)
    code, out, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "set", "--daily", "0",
                         "--key", key.key_id)
    assert code == 0, err
    assert f"key:{key.key_id}: the daily limit is 0" in out
    with _budget(data_dir, catalog) as budget:
        for over in (False, True):
            with pytest.raises(BudgetExceeded, match=f"the daily budget of key:{key.key_id} is 0") as refused:
                budget.reserve(MODEL, PROMPT, max_tokens=MAX_TOKENS, key=key.key_id, over_budget=over)
        assert f"`hive budget unset --key {key.key_id}`" in str(refused.value)
        budget.reserve(MODEL, PROMPT, max_tokens=MAX_TOKENS, key=other.key_id).release()
        with KeyStore(DataDir(data_dir)) as keys:
            assert keys.get(key.key_id).daily_usd == 0
        code, _, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "unset", "--key", key.key_id)
        assert code == 0, err
        budget.reserve(MODEL, PROMPT, max_tokens=MAX_TOKENS, key=key.key_id).release()  # lifted at once


def test_kill_switch_from_keys_create(data_dir: Path, catalog: Catalog) -> None:
    with KeyStore(DataDir(data_dir)) as keys:
        _, key = keys.create(app="gw", daily_usd=0, now=NOW)
    with _budget(data_dir, catalog) as budget, pytest.raises(BudgetExceeded, match="is 0"):
        budget.reserve(MODEL, PROMPT, max_tokens=MAX_TOKENS, key=key.key_id)


def test_budget_show_reports_key_scopes(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with KeyStore(DataDir(data_dir)) as keys:
        _, key = keys.create(app="gw", daily_usd=3, monthly_usd=30, now=NOW)
    code, out, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "show", "--json")
    assert code == 0, err
    shown = {s["scope"]: s for s in json.loads(out)["scopes"]}
    assert shown[f"key:{key.key_id}"]["daily_limit_usd"] == 3 and shown[f"key:{key.key_id}"]["monthly_limit_usd"] == 30


def test_budget_set_names_an_existing_key(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with KeyStore(DataDir(data_dir)) as keys:
        _, key = keys.create(app="gw", now=NOW)
    code, out, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "set", "--daily", "1",
                         "--key", key.key_id[:-1])
    assert code == 1 and out == "" and f"did you mean {key.key_id}?" in err and err.count("\n") == 1
    assert not DataDir(data_dir).config_file.exists()
    code, _, err = run(hive_main, capsys, "--data-dir", str(data_dir), "budget", "set", "--daily", "1",
                       "--key", key.key_id, "--app", "x")
    assert code == 1 and "give one of --app, --model or --key" in err


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_rebuild_counts_key_spend_from_the_events_and_never_lowers_it(data_dir: Path, backend: str,
                                                                     request: pytest.FixtureRequest) -> None:
    """Usage events name the key (schema 3): a rebuild counts a key's spend from them and from the
    settlements not on disk yet, like any scope's, but never below what the ledger holds (events
    from before schema 3 name no key)."""
    from hive_core.budget import Limit
    from hive_core.budget.ledger_core import LedgerCore
    from hive_core.budget.ledger_pg import PgLedger

    day = NOW.date().isoformat()
    opened: LedgerCore = (Ledger(DataDir(data_dir).ledger) if backend == "sqlite"
                          else PgLedger(request.getfixturevalue("pg_url")))
    with opened as ledger:
        for n, key in enumerate(("k1", "k2", "k3"), 1):
            ledger.reserve(f"r{n}", request_id=f"q{n}", app="gw", model=MODEL, amount_usd=1.0,
                           limits=[Limit(f"key:{key}", daily_usd=5)], now=NOW, stale_after_s=900, key=key)
            ledger.settle(f"r{n}", 0.4, now=NOW, event_id=f"e{n}")
        others = [("global", day, 0.8), ("app:gw", day, 0.8), (f"model:{MODEL}", day, 0.8)]
        # k1's events hold more (a settlement the ledger lost), k2's less (older events without its id);
        # r3's usage event is not on disk yet: counted from its settlement, for every scope
        rows = [*others, ("key:k1", day, 0.9), ("key:k2", day, 0.1)]
        ledger.rebuild(lambda pending: (rows, {s.reservation_id for s in pending if s.reservation_id != "r3"}),
                       now=NOW, stale_after_s=900)
        spend = ledger.spend_by_day()
        assert spend[("global", day)] == pytest.approx(1.2)  # the events' 0.8 and r3's 0.4, once
        assert [spend[(f"key:{key}", day)] for key in ("k1", "k2", "k3")] == pytest.approx([0.9, 0.4, 0.4])
        # a rebuild again finds r3 on disk now, with its key: nothing counts twice
        rows = [("global", day, 1.2), ("app:gw", day, 1.2), (f"model:{MODEL}", day, 1.2), ("key:k1", day, 0.9),
                ("key:k2", day, 0.1), ("key:k3", day, 0.4)]
        ledger.rebuild(lambda pending: (rows, {s.reservation_id for s in pending}), now=NOW, stale_after_s=900)
        spend = ledger.spend_by_day()
        assert spend[("global", day)] == pytest.approx(1.2)
        assert [spend[(f"key:{key}", day)] for key in ("k1", "k2", "k3")] == pytest.approx([0.9, 0.4, 0.4])


# -- across processes -------------------------------------------------------------------------------

def make_key(data_dir: str, n: int, start: Any, out: Any) -> None:
    with KeyStore(DataDir(Path(data_dir))) as keys:
        start.wait(20)
        out.put(keys.create(app=f"app{n}", daily_usd=n + 1, now=datetime.now(UTC))[1].key_id)


def test_keys_created_at_once_all_keep_their_limits(data_dir: Path, fork_ctx: Any) -> None:
    start, out = fork_ctx.Event(), fork_ctx.Queue()
    procs = [fork_ctx.Process(target=make_key, args=(str(data_dir), n, start, out)) for n in range(8)]
    for p in procs:
        p.start()
    start.set()
    made = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=20)
    limits = load_budget_config(DataDir(data_dir).config_file).limits
    assert {f"key:{k}" for k in made} == set(limits) and len(set(made)) == 8


PROCESSES, KEYS, ROUNDS = 8, 3, 12


def spender(data_dir: str, catalog: Catalog, key_ids: list[str], seed: int, start: Any, out: Any) -> None:
    """A gateway worker: ROUNDS requests per key in turn, each settled at a random part of what it held."""
    rng = random.Random(seed)
    settled = dict.fromkeys(key_ids, 0.0)
    refused = 0
    with Budget(Path(data_dir), prices=catalog, app="gw") as budget:
        start.wait(20)
        for _ in range(ROUNDS):
            for key_id in key_ids:
                try:
                    reservation = budget.reserve(MODEL, PROMPT, max_tokens=MAX_TOKENS, key=key_id)
                except BudgetExceeded as exc:
                    assert exc.scopes == (f"key:{key_id}",)
                    refused += 1
                    continue
                cost = round(reservation.amount_usd * rng.uniform(0.3, 1.0), 9)
                reservation.settle(cost)
                settled[key_id] += cost
    out.put((settled, refused))


@pytest.mark.slow
def test_eight_processes_three_keys_never_overshoot(data_dir: Path, catalog: Catalog, fork_ctx: Any) -> None:
    bound = _bound(catalog)
    limit = round(bound * PROCESSES * ROUNDS / 3, 9)  # a third of the requests fit at their maximum
    with KeyStore(DataDir(data_dir)) as keys:
        key_ids = [keys.create(app="gw", user=f"u{n}", daily_usd=limit, now=datetime.now(UTC))[1].key_id
                   for n in range(KEYS)]
    start, out = fork_ctx.Event(), fork_ctx.Queue()
    procs = [fork_ctx.Process(target=spender, args=(str(data_dir), catalog, key_ids, n, start, out))
             for n in range(PROCESSES)]
    for p in procs:
        p.start()
    try:
        start.set()
        results = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=20)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    assert sum(refused for _, refused in results) > 0  # the limits were reached
    today = Period.daily(datetime.now(UTC))
    with Ledger(DataDir(data_dir).ledger) as ledger:
        for key_id in key_ids:
            spent = ledger.spend(f"key:{key_id}", today)
            assert spent == pytest.approx(sum(s[key_id] for s, _ in results))  # every settlement counted once
            assert spent <= limit  # reservations hold the maximum: no key ever crosses its limit
            assert spent > limit / 3  # and each key was used well past a third
            assert ledger.reserved(f"key:{key_id}") == 0
        assert ledger.states() == {"settled": PROCESSES * ROUNDS * KEYS - sum(r for _, r in results)}
