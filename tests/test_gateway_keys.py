"""Virtual keys through a real ``hive gateway`` (two worker processes) in front of the emulator:
8 clients x 3 keys with daily budgets at once never overshoot a key, a revoked key gets 401 on its
very next request, and a key over its requests per minute gets 429 with ``Retry-After``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from hive_core.budget import Ledger
from hive_core.period import Period
from hive_core.store.datadir import DataDir
from hive_emulator import Emulator
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL
from tests.plugins.store import events

if TYPE_CHECKING:
    from tests.plugins.gateway import GatewayProcess


MESSAGES = [{"role": "user", "content": "Explain in detail how budgets hold under concurrent traffic."}]
MAX_TOKENS = 120
CLIENTS, KEYS, ROUNDS = 8, 3, 6


def _create(env: dict[str, str], *args: str) -> tuple[str, str]:
    made = run_cli("hive", ["keys", "create", "--json", *args], env)
    assert made.returncode == 0, made.stderr
    document = json.loads(made.stdout)
    return document["secret"], document["key"]["key_id"]


def _chat(base_url: str, secret: str) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"}, timeout=30,
                      json={"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS})


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.mark.slow
def test_eight_clients_three_keys_never_overshoot(gateway_factory: Callable[..., GatewayProcess], emulator: Emulator,
                                                  data: Path) -> None:
    env = hive_env(emulator, data)
    data.mkdir()
    gateway = gateway_factory(emulator, "--workers", "2", data_dir=data)
    # the first answer says what one request costs at most and in fact; the limit fits a third of the rest
    probe_secret, _ = _create(env, "--app", "probe")
    probe = _chat(gateway.base_url, probe_secret)
    assert probe.status_code == 200, probe.text
    (cost,) = [row[0] for row in gateway.wait_events("usage", 1, "cost_usd")]
    limit = round(cost * CLIENTS * ROUNDS / 3, 9)
    keys = [_create(env, "--app", f"app{n}", "--daily", str(limit)) for n in range(KEYS)]
    statuses: dict[str, list[int]] = {key_id: [] for _, key_id in keys}
    lock = threading.Lock()

    def client(n: int) -> None:
        for round_ in range(ROUNDS):
            for k in range(KEYS):
                secret, key_id = keys[(n + round_ + k) % KEYS]
                status = _chat(gateway.base_url, secret).status_code
                with lock:
                    statuses[key_id].append(status)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    answered = sum(s.count(200) for s in statuses.values())
    assert all(set(s) <= {200, 402} for s in statuses.values()), statuses
    assert all(s.count(402) > 0 for s in statuses.values())  # every key reached its limit
    usage = gateway.wait_events("usage", answered + 1, "app, cost_usd")
    assert gateway.stop() == 0
    today = Period.daily(datetime.now(UTC))
    with Ledger(DataDir(data).ledger) as ledger:
        for n, (_, key_id) in enumerate(keys):
            billed = sum(c for app, c in usage if app == f"app{n}")
            assert billed <= limit  # the events: no key spent past its limit
            assert ledger.spend(f"key:{key_id}", today) == pytest.approx(billed)  # the ledger agrees
            assert ledger.reserved(f"key:{key_id}") == 0
            assert statuses[key_id].count(200) == sum(1 for app, _ in usage if app == f"app{n}")


def test_a_revoked_key_gets_401_at_once(gateway_factory: Callable[..., GatewayProcess], emulator: Emulator,
                                        data: Path) -> None:
    env = hive_env(emulator, data)
    data.mkdir()
    gateway = gateway_factory(emulator, "--workers", "2", data_dir=data)
    secret, key_id = _create(env, "--app", "a")
    assert _chat(gateway.base_url, secret).status_code == 200
    assert run_cli("hive", ["keys", "revoke", key_id], env).returncode == 0
    for _ in range(4):  # whichever worker answers
        refused = _chat(gateway.base_url, secret)
        assert refused.status_code == 401 and refused.json()["error"]["type"]
    assert secret not in refused.text
    assert len(events(data, "api_call", "*")) <= 1


def test_rpm_is_429_with_retry_after(gateway_factory: Callable[..., GatewayProcess], emulator: Emulator,
                                     data: Path) -> None:
    env = hive_env(emulator, data)
    data.mkdir()
    gateway = gateway_factory(emulator, "--workers", "2", data_dir=data)
    secret, _ = _create(env, "--app", "a", "--rpm", "2")
    other, _ = _create(env, "--app", "b", "--rpm", "2")
    assert [_chat(gateway.base_url, secret).status_code for _ in range(2)] == [200, 200]
    limited = _chat(gateway.base_url, secret)
    assert limited.status_code == 429 and limited.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert _chat(gateway.base_url, other).status_code == 200  # keys count apart


def test_a_keys_spend_is_in_its_usage_events_and_comes_back_from_them_after_a_corrupt_ledger(
        gateway_factory: Callable[..., GatewayProcess], emulator: Emulator, data: Path) -> None:
    """The usage events name the key (``key_id``), so a ledger lost to corruption gets the key's
    spend back from them at the rebuild, and ``hive budget show`` counts it from the events."""
    env = hive_env(emulator, data)
    data.mkdir()
    secret, key_id = _create(env, "--app", "spender", "--daily", "50")
    gateway = gateway_factory(emulator, data_dir=data)
    for _ in range(3):
        assert _chat(gateway.base_url, secret).status_code == 200
    assert gateway.stop() == 0
    usage = events(data, "usage", "key_id, app, cost_usd")
    assert [(row[0], row[1]) for row in usage] == [(key_id, "spender")] * 3
    spent = sum(row[2] for row in usage)
    ledger_path = DataDir(data).ledger
    for side in (Path(f"{ledger_path}-wal"), Path(f"{ledger_path}-shm")):
        side.unlink(missing_ok=True)
    ledger_path.write_bytes(b"not a database, a half-copied backup\n" * 200)
    rebuilt = run_cli("hive-jobs", ["rebuild-ledger"], env)
    assert rebuilt.returncode == 0 and "corrupt-1" in rebuilt.stdout + rebuilt.stderr, rebuilt.stderr
    with Ledger(ledger_path) as ledger:
        by_day = ledger.spend_by_day()
    assert sum(usd for (scope, _), usd in by_day.items() if scope == f"key:{key_id}") == pytest.approx(spent)
    shown = run_cli("hive", ["budget", "show", "--json"], env)
    assert shown.returncode == 0, shown.stderr
    scope = next(s for s in json.loads(shown.stdout)["scopes"] if s["scope"] == f"key:{key_id}")
    assert scope["spent_today_usd"] == pytest.approx(scope["ledger_spent_today_usd"])  # the events' = the ledger's
