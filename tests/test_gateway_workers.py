"""The gateway's port and its workers, over real processes: a port is one gateway's (a second one is
refused in one line, the first keeps every request), a worker that dies while serving is said, reaped
and replaced (and the gateway gives up on workers that keep dying at once), ``--check`` says a taken
port."""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import httpx
import pytest

from hive_emulator import Emulator
from hive_gateway.config import GatewayConfig, ListenError, check, listen
from tests.plugins.cli import BIN, hive_env, run_cli
from tests.plugins.emulator import MODEL
from tests.plugins.gateway import free_port

if TYPE_CHECKING:
    from tests.plugins.gateway import GatewayProcess

Start = Callable[..., "GatewayProcess"]
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
#: how long a refused start may take before the test calls it a start that went through
REFUSAL_S = 15.0


def _taken(port: int) -> str:
    return (f"error: 127.0.0.1:{port} is already in use (another gateway or program listens there): "
            "stop it or choose another --port")


def _kids(pid: int) -> dict[int, str]:
    """The child processes of ``pid`` and their state (``Z``: exited, not reaped), from ``/proc``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]  # the command name may hold anything
        if int(ppid) == pid:
            found[int(entry.name)] = state
    return found


def _children(pid: int) -> set[int]:
    """The live children of ``pid``: its workers."""
    return {child for child, state in _kids(pid).items() if state != "Z"}


def _until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.05)


def _stderr(gateway: GatewayProcess) -> str:
    return (gateway.output / "stderr").read_text()


def test_listen_takes_the_port_for_itself() -> None:
    with listen("127.0.0.1", 0) as held:
        port = held.getsockname()[1]
        with pytest.raises(ListenError) as refused:
            listen("127.0.0.1", port)
        assert f"error: {refused.value}" == _taken(port)
        with socket.socket() as intruder:  # what a gateway of before asked for: a share of the connections
            intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with pytest.raises(OSError):
                intruder.bind(("127.0.0.1", port))


@pytest.mark.parametrize(("first", "second"), [("2", "2"), ("1", "2"), ("2", "1")])
def test_a_second_gateway_on_a_taken_port_is_refused_and_the_first_keeps_every_request(
        emulator: Emulator, gateway_factory: Start, tmp_path: Path, first: str, second: str) -> None:
    """The first gateway checks keys; the second, next to it, would take requests without one."""
    running = gateway_factory(emulator, "--workers", first)
    env = hive_env(emulator, tmp_path / "other")
    started = time.monotonic()
    intruder = subprocess.Popen([str(BIN / "hive"), "gateway", "--no-auth", "--workers", second,
                                 "--port", str(running.port)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        _, err = intruder.communicate(timeout=REFUSAL_S)
    except subprocess.TimeoutExpired:  # it serves: what the first gateway's clients get meanwhile says why
        err = ""
    statuses = [httpx.post(f"{running.base_url}/v1/chat/completions", json=BODY, timeout=30).status_code
                for _ in range(20)]
    if intruder.poll() is None:
        intruder.send_signal(signal.SIGTERM)
        intruder.communicate(timeout=60)
    assert statuses == [401] * 20, "a keyless request reached a gateway that does not check keys"
    assert intruder.returncode != 0
    assert err.splitlines() == [_taken(running.port)], err
    assert time.monotonic() - started < REFUSAL_S
    assert running.stop() == 0


def test_a_worker_killed_is_said_reaped_and_replaced(emulator: Emulator, gateway_factory: Start) -> None:
    running = gateway_factory(emulator, "--no-auth", "--workers", "2")
    parent = running.proc.pid
    _until(lambda: "listening on" in _stderr(running), "every worker listens")  # before: a failed start
    workers = _children(parent)
    for victim in sorted(workers):  # each in turn: the second kill leaves only replacements to answer
        os.kill(victim, signal.SIGKILL)
        line = f"error: gateway worker {victim} died (SIGKILL); starting another"
        _until(lambda: line in _stderr(running), line)  # noqa: B023 - waited for here, in this iteration
        _until(lambda: len(_children(parent)) == 2 and victim not in _children(parent),  # noqa: B023
               "a replacement")
        assert _kids(parent).get(victim) != "Z"  # reaped
        with httpx.Client(base_url=running.base_url, timeout=30) as http:
            for _ in range(5):
                assert http.post("/v1/chat/completions", json=BODY).status_code == 200
    replacements = _children(parent)
    assert not replacements & workers
    assert running.stop() == 0
    for victim in workers:
        assert running.stderr.count(f"gateway worker {victim} died") == 1
    assert "Traceback" not in running.stderr


def test_workers_that_keep_dying_at_once_stop_the_gateway(emulator: Emulator, gateway_factory: Start) -> None:
    """Each replacement killed as soon as it appears: after a few, the gateway stops in one line
    rather than forking forever, and the waits between them grow."""
    running = gateway_factory(emulator, "--no-auth", "--workers", "2")
    parent = running.proc.pid
    _until(lambda: "listening on" in _stderr(running), "every worker listens")  # before: a failed start
    survivor = min(_children(parent))
    killed: list[tuple[int, float]] = []
    deadline = time.monotonic() + 60
    while running.proc.poll() is None and time.monotonic() < deadline:
        for pid in _children(parent) - {survivor} - {pid for pid, _ in killed}:
            os.kill(pid, signal.SIGKILL)
            killed.append((pid, time.monotonic()))
        time.sleep(0.01)
    status = running.stop()
    assert status == 1, running.stderr
    died = [line for line in running.stderr.splitlines() if re.match(r"error: gateway worker \d+ died", line)]
    # the first original worker may have lived longer than a quick death: then one more
    assert len(died) == len(killed) in (5, 6), running.stderr
    assert all(line.endswith("starting another") for line in died[:-1])
    assert died[-1].endswith("5 workers in a row died within 5 s of starting; stopping the gateway "
                             "(the lines above may say why)")
    gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(killed)]
    assert gaps[-1] > 0.4  # the fourth replacement waited 0.4 s: no hot loop
    assert "Traceback" not in running.stderr


def test_check_says_a_port_in_use(emulator: Emulator, tmp_path: Path) -> None:
    from hive_core.settings import Settings

    env = hive_env(emulator, tmp_path / "data")
    with listen("127.0.0.1", 0) as held:  # any program listening there
        port = held.getsockname()[1]
        config = GatewayConfig(Settings.from_env(env), port=port, no_auth=True)
        assert _taken(port).removeprefix("error: ") in check(config)
        assert _taken(port).removeprefix("error: ") not in check(config, catalog=False)  # a start says it itself
        done = run_cli("hive", ["gateway", "--check", "--no-auth", "--port", str(port)], env)
    assert done.returncode == 1
    assert _taken(port).removeprefix("error: ") in done.stdout.splitlines()
    assert "Traceback" not in done.stderr
    free = run_cli("hive", ["gateway", "--check", "--no-auth", "--port", str(port)], env)
    assert str(port) not in free.stdout


@pytest.mark.parametrize(("key", "said"), [
    ("not-an-openrouter-key-0123456789", "OpenRouter refuses OPENROUTER_API_KEY (invalid, disabled or deleted): set a valid key"),
    (None, None),
])
def test_check_asks_openrouter_whether_it_takes_the_key(emulator: Emulator, tmp_path: Path, key: str | None,
                                                        said: str | None) -> None:
    """A key OpenRouter refuses makes every request a 502: ``--check`` asks ``GET /key`` (as ``hive
    key`` does) and says so in one line; the emulator's own key passes. A gateway's start does not
    wait on the network for it."""
    from hive_core.settings import Settings

    env = hive_env(emulator, tmp_path / "data")
    if key is not None:
        env["OPENROUTER_API_KEY"] = key
    done = run_cli("hive", ["gateway", "--check", "--no-auth", "--port", "0"], env)
    told = [line for line in done.stdout.splitlines() if "GET /key" in line or "OPENROUTER_API_KEY" in line]
    assert told == ([said + " (`hive key` checks one)"] if said else []), done.stdout
    assert "Traceback" not in done.stderr and (key is None or key not in done.stdout + done.stderr)
    config = GatewayConfig(Settings.from_env(env), no_auth=True, port=0)
    assert not [line for line in check(config, catalog=False) if "OPENROUTER_API_KEY" in line]


def test_check_says_an_openrouter_it_cannot_reach_without_the_urls_password(tmp_path: Path) -> None:
    env = hive_env(SimpleNamespace(api_key="sk-or-v1-" + "0" * 64,
                                   base_url=f"http://user:pw-S3cret@127.0.0.1:{free_port()}/api/v1"), tmp_path / "data")
    done = run_cli("hive", ["gateway", "--check", "--no-auth", "--port", "0"], env)
    told = [line for line in done.stdout.splitlines() if "GET /key" in line]
    assert len(told) == 1 and "pw-S3cret" not in done.stdout + done.stderr, done.stdout
    assert done.returncode == 1
