"""Faults are attributed to whoever caused them (issue 11, section 4).

A wrong key (401), a wrong base URL (404), a network outage (a closed port on 127.0.0.1) and an
unknown model id (400) are the caller's faults. Six requests of each, through the same ``ask`` the
CLI runs, against a store with measured traffic: every attempt is recorded with the status that
says so, each chain stops at its first model after one attempt, and the circuit file, the
``hive models recommend`` choice and ``hive models performance`` are what they were before.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hive_core.ask import AskOptions, ask, falls_back, model_is_unwell
from hive_core.errors import (
    AuthError,
    BadRequest,
    CallerFault,
    Cancelled,
    ConnectTimeout,
    InsufficientCredits,
    MalformedResponse,
    MidStreamError,
    Moderated,
    NotFound,
    OpenRouterError,
    RateLimited,
    ReadTimeout,
    ServerError,
    Unreachable,
)
from hive_core.openrouter import OpenRouterClient
from hive_core.openrouter.retry import RetryPolicy
from hive_core.selection.health import CircuitBreaker
from hive_core.settings import Settings
from ingest import EventLog
from tests.plugins.cli import hive_env, run_cli, run_hive, run_jobs
from tests.plugins.store import events

KEY = "sk-or-v1-attribution0123456789abcdef0123456789abcdef"
#: B is first in every chain: charging it a caller's fault would open its circuit (3 + 2 >= 5)
A, B = "openai/gpt-4o-mini", "mistralai/mistral-small-3.2-24b-instruct"
TRIES = 6


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def asks(settings: Settings, chain: list[str], n: int) -> list[OpenRouterError]:
    """``n`` requests along ``chain`` as ``hive ask`` makes them (events, shared circuit breaker)."""
    errors: list[OpenRouterError] = []
    policy = RetryPolicy.from_settings(settings, base_s=0.01)
    breaker = CircuitBreaker(settings.datadir)
    with EventLog(settings.data_dir) as log, OpenRouterClient(settings, sink=log, policy=policy) as client:
        for i in range(n):
            try:
                ask(client, f"say hi {i}", chain, AskOptions(stream=i % 2 == 0, max_tokens=8, task_category="chat"),
                    breaker=breaker)
            except OpenRouterError as error:
                errors.append(error)
    return errors


def snapshot(settings: Settings, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """What the caller's faults must not change: circuits, the selector's choice, performance."""
    code, out, err = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
    assert code == 0, err
    code, out, err = run_hive(["--data-dir", str(settings.data_dir), "models", "recommend", "--task", "chat",
                               "--allow", f"{A},{B}", "--strategy", "balanced", "--json"], capsys)
    assert code == 0, err
    recommended = json.loads(out)
    code, out, err = run_hive(["--data-dir", str(settings.data_dir), "models", "performance", "--period", "7d",
                               "--json"], capsys)
    assert code == 0, err
    keep = ("model", "attempts", "success_rate", "errors", "health", "p50_ms", "p95_ms")
    performance = sorted(({k: row[k] for k in keep} for row in json.loads(out)), key=lambda r: r["model"])
    circuits = settings.datadir.circuits
    return {"primary": recommended["primary"], "fallbacks": recommended["fallbacks"], "performance": performance,
            "circuits": circuits.read_bytes() if circuits.exists() else None}


@pytest.fixture
def measured(emulator_factory: Any, tmp_path: Path, catalog_path: Path) -> tuple[Any, Settings]:
    """A store with measured traffic: A answers, B failed 3 times in a row (its circuit still closed)."""
    emu = emulator_factory(api_key=KEY, faults=[f"{B}:502:1.0"], seed=3)
    settings = Settings(api_key=KEY, base_url=emu.base_url, data_dir=tmp_path / "data", max_attempts=2,
                        retry_max_wait_s=0.01, read_timeout_s=5)
    settings.datadir.catalog_file.parent.mkdir(parents=True)
    shutil.copy(catalog_path, settings.datadir.catalog_file)
    asks(settings, [A], 8)
    assert len(asks(settings, [B], 3)) == 3
    emu.set_faults([])
    assert CircuitBreaker(settings.datadir).state(B) == "closed"
    return emu, settings


def test_caller_faults_touch_no_model_statistics(measured: tuple[Any, Settings], closed_port: int,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    emu, settings = measured
    before = snapshot(settings, capsys)
    assert before["circuits"] is not None and B.encode() in before["circuits"]
    calls_before = len(events(settings.data_dir, "api_call", "status"))

    faults = {
        "auth": (settings.replace(api_key=KEY + "x"), [B, A], AuthError),
        "not_found": (settings.replace(base_url=emu.base_url.replace("/api/v1", "/wrong/v1")), [B, A], NotFound),
        "unreachable": (settings.replace(base_url=f"http://127.0.0.1:{closed_port}/api/v1"), [B, A], Unreachable),
        "bad_request": (settings, ["acme/no-such-model", B, A], BadRequest),
    }
    for status, (faulty, chain, cls) in faults.items():
        errors = asks(faulty, chain, TRIES)
        assert len(errors) == TRIES and all(type(e) is cls and isinstance(e, CallerFault) for e in errors), status

    calls = events(settings.data_dir, "api_call", "model, status, attempt, fallback_index")[calls_before:]
    # recorded, with the status that says whose fault; one attempt each: no retry, no fallback
    assert sorted(c[1] for c in calls) == sorted(s for s in faults for _ in range(TRIES))
    assert {(c[2], c[3]) for c in calls} == {(1, 0)}
    assert {c[0] for c in calls} == {B, "acme/no-such-model"}

    after = snapshot(settings, capsys)
    assert after == before
    assert "acme/no-such-model" not in [row["model"] for row in after["performance"]]


class TestCli:
    def test_caller_faults_touch_no_model_statistics(self, measured: tuple[Any, Settings], closed_port: int,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
        emu, settings = measured
        before = snapshot(settings, capsys)
        env = hive_env(emu, settings.data_dir, key=KEY)
        calls_before = len(events(settings.data_dir, "api_call", "status"))
        down = {**env, "OPENROUTER_BASE_URL": f"http://127.0.0.1:{closed_port}/api/v1"}
        wrong = {**env, "OPENROUTER_BASE_URL": emu.base_url.replace("/api/v1", "/wrong/v1")}
        for faulty, what in ((down, "cannot reach OpenRouter"), (wrong, "OPENROUTER_BASE_URL")):
            for _ in range(5):
                done = run_cli("hive", ["ask", "hi", "--model", B, "--fallback", A, "--max-tokens", "8"], faulty)
                assert done.returncode == 1 and "Traceback" not in done.stderr
                (line,) = done.stderr.splitlines()  # one line: no "failed: trying ..." walk down the chain
                assert line.startswith("error: ") and what in line
        calls = events(settings.data_dir, "api_call", "model, status, attempt")[calls_before:]
        assert sorted(calls) == sorted([(B, "unreachable", 1)] * 5 + [(B, "not_found", 1)] * 5)
        assert snapshot(settings, capsys) == before


@pytest.mark.parametrize(("error", "unwell", "next_model"), [
    (ServerError("down"), True, True),
    (RateLimited("slow down"), True, True),
    (ReadTimeout("quiet"), True, True),
    (MidStreamError("cut", code=502), True, True),
    (MalformedResponse("garbage"), True, False),
    (Moderated("flagged"), False, True),  # providers moderate differently: the next one may answer
    (AuthError("bad key"), False, False),
    (NotFound("no such endpoint"), False, False),
    (BadRequest("not a valid model ID"), False, False),
    (InsufficientCredits("no credits"), False, False),
    (Unreachable("refused"), False, False),
    (ConnectTimeout("slow network"), False, False),
    (Cancelled("Ctrl-C"), False, False),
])
def test_whose_fault_and_whether_the_chain_goes_on(error: OpenRouterError, unwell: bool, next_model: bool) -> None:
    assert model_is_unwell(error) is unwell and isinstance(error, CallerFault) is not unwell
    assert falls_back(error) is next_model
