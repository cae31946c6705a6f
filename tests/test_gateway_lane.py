"""The gateway's lane: ledger and counter writes run on the loop while their locks are free, and in a
thread while another process holds them - the loop goes on serving, nothing is lost or counted twice.

The lane's own rules over a real ledger file, then a real ``hive gateway`` whose ledger (and whose
keys' counters) another process holds: ``/healthz`` and a stream in flight go on, the requests that
need the lock wait for it and are recorded and settled once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from hive_core.budget import Ledger
from hive_core.budget.ledger_file import lock_path_of
from hive_core.budget.ledger_pg import PgLedger
from hive_core.errors import WouldWait
from hive_core.store.datadir import DataDir
from hive_emulator import Emulator
from hive_gateway.lane import Lane
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL
from tests.plugins.processes import flock_held_elsewhere

if TYPE_CHECKING:
    from tests.plugins.gateway import GatewayProcess

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)  # the ledger's own day: the test's spend, never the wall clock's


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger(tmp_path / "ledger.sqlite3")
    yield opened
    opened.close()


def _spend(ledger: Ledger | PgLedger, n: int, usd: float = 0.5) -> int:
    ledger.record_spend(f"r{n}", usd, request_id=f"q{n}", app="a", model=MODEL, key=None, now=NOW)
    return threading.get_ident()


def _spent(ledger: Ledger) -> float:
    return ledger.spend_by_day().get(("global", NOW.date().isoformat()), 0.0)


def _unexpected(error: BaseException, request_id: str | None) -> None:
    raise AssertionError(f"reported: {error!r}")


def test_work_runs_on_the_loop_at_once_while_the_ledger_is_free(ledger: Ledger) -> None:
    async def main() -> None:
        lane = Lane(_unexpected)
        lane.start([ledger])
        assert await lane.run([ledger], _spend, ledger, 1) == threading.get_ident()  # no thread, no hop
        lane.run_soon([ledger], _spend, ledger, 2)
        assert lane.waited == 0
        await lane.close()

    asyncio.run(main())
    assert _spent(ledger) == pytest.approx(1.0)


def test_work_waits_in_a_thread_while_another_process_holds_the_ledger_and_the_loop_goes_on(
        ledger: Ledger) -> None:
    async def main() -> tuple[int, int, int]:
        lane = Lane(_unexpected)
        lane.start([ledger])
        loop_thread = threading.get_ident()
        with flock_held_elsewhere(lock_path_of(ledger.path)):
            waiting = asyncio.create_task(lane.run([ledger], _spend, ledger, 1))
            ticks = 0
            for _ in range(20):  # the loop is not stalled: it goes round every 10 ms meanwhile
                await asyncio.sleep(0.01)
                ticks += 1
            assert not waiting.done()
            # the loop's own write, which no hold covers, is refused rather than waited for
            with pytest.raises(WouldWait):
                _spend(ledger, 9)
        worker_thread = await waiting
        await lane.close()
        return ticks, loop_thread, worker_thread

    ticks, loop_thread, worker_thread = asyncio.run(main())
    assert ticks == 20 and worker_thread != loop_thread
    assert _spent(ledger) == pytest.approx(0.5)  # written once, by the thread, after the lock was let go


def test_a_request_cancelled_while_its_work_waits_still_has_it_done_then_undone(ledger: Ledger) -> None:
    undone: list[int] = []

    def undo(thread: int) -> None:
        undone.append(thread)
        ledger.record_spend("undo", -0.5, request_id="undo", app="a", model=MODEL, key=None, now=NOW)

    async def main() -> None:
        lane = Lane(_unexpected)
        lane.start([ledger])
        with flock_held_elsewhere(lock_path_of(ledger.path)):
            waiting = asyncio.create_task(lane.run([ledger], _spend, ledger, 1, undo=undo))
            await asyncio.sleep(0.1)
            waiting.cancel()  # the client went away while the work waited for the lock
            with pytest.raises(asyncio.CancelledError):
                await waiting
        await lane.close()  # waits for the thread: the work, then its undo

    asyncio.run(main())
    assert len(undone) == 1 and undone[0] != threading.get_ident()
    assert _spent(ledger) == pytest.approx(0.0)


def test_work_not_awaited_waits_in_a_thread_and_its_failure_is_reported(ledger: Ledger) -> None:
    reported: list[str] = []

    def fails() -> None:
        _spend(ledger, 1)
        raise RuntimeError("after writing")

    async def main() -> None:
        lane = Lane(lambda error, request_id: reported.append(str(error)))
        lane.start([ledger])
        with flock_held_elsewhere(lock_path_of(ledger.path)):
            lane.run_soon([ledger], fails)
            await asyncio.sleep(0.1)
            assert reported == [] and lane.waited == 1
        await lane.close()

    asyncio.run(main())
    assert reported == ["after writing"] and _spent(ledger) == pytest.approx(0.5)


# -- through a real gateway -----------------------------------------------------------------------

def _chat(base_url: str, *, stream: bool = False, secret: str | None = None, max_tokens: int = 40) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.post(f"{base_url}/v1/chat/completions", headers=headers, timeout=60,
                      json={"model": MODEL, "messages": [{"role": "user", "content": "hello"}],
                            "max_tokens": max_tokens, "stream": stream})


def _healthz_seconds(base_url: str) -> float:
    started = time.monotonic()
    assert httpx.get(f"{base_url}/healthz", timeout=30).status_code == 200
    return time.monotonic() - started


def _in_thread(fn: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[httpx.Response]]:
    out: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    return thread, out


HOLD_S = 2.0


@pytest.mark.slow
def test_a_ledger_another_process_holds_stalls_neither_health_checks_nor_streams_in_flight(
        gateway_factory: Callable[..., GatewayProcess], emulator_factory: Callable[..., Emulator],
        tmp_path: Path) -> None:
    emu = emulator_factory(latency_scale=10.0)  # slow pacing: the stream in flight lasts ~6 s (0.7 s at 1.0)
    data = tmp_path / "data"
    env = hive_env(emu, data)
    assert run_cli("hive", ["budget", "set", "--daily", "100"], env).returncode == 0  # reservations write
    gateway = gateway_factory(emu, "--no-auth", data_dir=data, env={"HIVE_READ_TIMEOUT": "30"})
    chunks: list[float] = []

    def stream() -> httpx.Response:
        with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions", timeout=60,
                          json={"model": MODEL, "messages": [{"role": "user", "content": "tell a long story"}],
                                "max_tokens": 400, "stream": True}) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    chunks.append(time.monotonic())
            return response

    in_flight, streamed = _in_thread(stream)
    deadline = time.monotonic() + 30
    while len(chunks) < 3 and time.monotonic() < deadline:  # it is relaying
        time.sleep(0.02)
    assert len(chunks) >= 3
    with flock_held_elsewhere(lock_path_of(DataDir(data).ledger)):
        held_at = time.monotonic()
        assert in_flight.is_alive(), "the stream ended before the lock was held: slow the emulator further"
        waiting, answered = _in_thread(lambda: _chat(gateway.base_url))  # needs a reservation: waits
        health = [_healthz_seconds(gateway.base_url) for _ in range(3)]
        time.sleep(HOLD_S)
        assert waiting.is_alive()  # still waiting for the ledger
        released_at = time.monotonic()
    assert max(health) < HOLD_S / 4, health  # answered at once, not after the lock
    assert any(held_at < t < released_at for t in chunks)  # the stream went on meanwhile
    waiting.join(timeout=60)
    in_flight.join(timeout=60)
    assert answered[0].status_code == 200 and streamed[0].status_code == 200
    assert gateway.stop() == 0 and "Traceback" not in gateway.stderr
    _assert_settled_once(data, 2)


def _assert_settled_once(data: Path, requests: int, *, ledger_url: str | None = None) -> None:
    """Every request's usage recorded once and settled once: the ledger's spend is the events' cost."""
    from tests.plugins.store import events

    usage = events(data, "usage", "request_id, cost_usd")
    assert len(usage) == requests and len({row[0] for row in usage}) == requests
    with PgLedger(ledger_url) if ledger_url else Ledger(DataDir(data).ledger) as ledger:
        assert ledger.states().get("reserved", 0) == 0
        spent = sum(amount for (scope, _), amount in ledger.spend_by_day().items() if scope == "global")
    assert spent == pytest.approx(sum(row[1] for row in usage), abs=1e-9)


@pytest.mark.slow
def test_keys_counters_another_process_holds_stall_no_health_check(
        gateway_factory: Callable[..., GatewayProcess], emulator: Emulator, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = hive_env(emulator, data)
    made = run_cli("hive", ["keys", "create", "--json", "--app", "a", "--rpm", "100"], env)
    assert made.returncode == 0, made.stderr
    secret = json.loads(made.stdout)["secret"]
    gateway = gateway_factory(emulator, data_dir=data)
    rate = DataDir(data).keys_rate
    with flock_held_elsewhere(rate.with_name(rate.name + ".lock")):
        waiting, answered = _in_thread(lambda: _chat(gateway.base_url, secret=secret))
        health = [_healthz_seconds(gateway.base_url) for _ in range(3)]
        time.sleep(HOLD_S)
        assert waiting.is_alive()  # its request is counted once the counters are free
    assert max(health) < HOLD_S / 4, health
    waiting.join(timeout=60)
    assert answered[0].status_code == 200
    assert gateway.stop() == 0 and "Traceback" not in gateway.stderr
    _assert_settled_once(data, 1)


def test_a_postgresql_ledger_is_never_written_on_the_loop(pg_url: str) -> None:
    with PgLedger(pg_url) as remote:
        async def main() -> tuple[int, int]:
            lane = Lane(_unexpected)
            lane.start([remote])
            with pytest.raises(WouldWait):  # every write is a round trip: never on the loop's thread
                _spend(remote, 9)
            thread = await lane.run([remote], _spend, remote, 1)
            waited = lane.waited
            await lane.close()
            return thread, waited

        thread, waited = asyncio.run(main())
        assert thread != threading.get_ident() and waited == 1
        assert remote.spend_by_day()[("global", NOW.date().isoformat())] == pytest.approx(0.5)


@pytest.mark.slow
def test_requests_through_a_gateway_on_a_postgresql_ledger_are_settled_once(
        gateway_factory: Callable[..., GatewayProcess], emulator: Emulator, tmp_path: Path, pg_url: str) -> None:
    data = tmp_path / "data"
    env = {**hive_env(emulator, data), "HIVE_LEDGER_URL": pg_url}
    assert run_cli("hive", ["budget", "set", "--daily", "100"], env).returncode == 0
    gateway = gateway_factory(emulator, "--no-auth", data_dir=data, env={"HIVE_LEDGER_URL": pg_url})
    sent = [_in_thread(partial(_chat, gateway.base_url, stream=n % 2 == 1)) for n in range(8)]
    for thread, _ in sent:
        thread.join(timeout=60)
    assert [answer[0].status_code for _, answer in sent] == [200] * 8
    assert gateway.stop() == 0 and "Traceback" not in gateway.stderr
    _assert_settled_once(data, 8, ledger_url=pg_url)
