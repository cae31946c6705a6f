"""``hive models benchmark`` against the emulator: real async calls, recorded as benchmark requests."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hive_core.benchmark import benchmark, format_table
from hive_core.session import Session
from ingest.log import EventLog
from tests.plugins.cli import BIN, budgeted_store, hive_env, run_cli
from tests.plugins.emulator import emu_settings
from tests.plugins.env import shared_path
from tests.plugins.store import events, ledger_spend

MODELS = ["openai/gpt-4o-mini", "anthropic/claude-3-haiku"]


def test_benchmark(emulator_factory: Any, data_dir: Path) -> None:
    # Tokens a few ms apart (latency scale 0.2), so each stream arrives in several reads even on a
    # loaded machine: a stream read in one go has no measurable rate (tokens_per_s is null, by design).
    emu = emulator_factory(faults=[{"model": MODELS[1], "kind": "500", "rate": 1.0}], seed=2, latency_scale=0.2)
    # A generous read timeout: a loaded test machine must not turn variant A's answers into failures.
    settings = emu_settings(emu, data_dir.parent, data_dir=data_dir, max_attempts=1, read_timeout_s=10)
    done: list[int] = []
    with EventLog(data_dir) as log, Session(settings, log) as session:
        rows = benchmark(session, MODELS, ["Say hi", "Count to 3"], requests=6, concurrency=3, max_tokens=16,
                         on_done=lambda: done.append(1))
        # its failures count like any request's: the failing model's circuit is open for `hive ask`
        assert [session.breaker.state(m) for m in MODELS] == ["closed", "open"]
    assert len(done) == 12
    good, bad = rows
    assert (good["requests"], good["success_rate"], bad["success_rate"]) == (6, 1.0, 0.0)
    assert good["ttft_p50_ms"] <= good["latency_p50_ms"] and good["latency_p50_ms"] <= good["latency_p95_ms"]
    assert good["tokens_per_s"] and good["cost_per_request_usd"] and bad["errors"] == {"server_error": 6}
    assert {r[0] for r in events(data_dir, "api_call", "request_type")} == {"benchmark"}
    assert "anthropic/claude-3-haiku" in format_table(rows)


def test_benchmark_cli(emulator: Any, data_dir: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Say hi\nName a colour\n")
    env = hive_env(emulator, data_dir)
    out = run_cli("hive", ["models", "benchmark", "--models", ",".join(MODELS), "--prompts", str(prompts),
                           "--requests", "3", "--concurrency", "2", "--max-tokens", "8", "--json"], env)
    assert out.returncode == 0, out.stderr
    assert [r["model"] for r in json.loads(out.stdout)] == MODELS
    assert "benchmark" in out.stderr  # the progress bar label, on stderr
    text = run_cli("hive", ["models", "benchmark", "--models", MODELS[0], "--requests", "2"], env)
    assert text.returncode == 0 and "TTFT p50" in text.stdout
    both = run_cli("hive", ["models", "benchmark", "--models", MODELS[0], "--top", "2"], env)
    assert both.returncode == 2


def test_benchmark_reserves_budget_and_stops_when_it_runs_out(emulator_factory: Any, data_dir: Path) -> None:
    """Benchmark requests cost money like any other: each reserves first, a refusal stops the run."""

    from hive_core.budget import BudgetConfig, Limit, save_budget_config
    from hive_core.errors import BudgetExceeded

    emu = emulator_factory()
    settings = emu_settings(emu, data_dir.parent, data_dir=data_dir, max_attempts=1, read_timeout_s=10)
    catalog_file = settings.datadir.catalog_file
    catalog_file.parent.mkdir(parents=True)
    catalog_file.write_bytes(shared_path("models-2026-06.json").read_bytes())
    # about three requests' maximum cost of gpt-4o-mini at 16 output tokens
    save_budget_config(settings.datadir.config_file,
                       BudgetConfig(limits={"global": Limit(scope="global", daily_usd=0.00003)}))
    with EventLog(data_dir) as log, Session(settings, log) as session, pytest.raises(BudgetExceeded):
        benchmark(session, MODELS[:1], ["Say hi"], requests=20, concurrency=1, max_tokens=16)
    sent = events(data_dir, "usage", "cost_usd")
    assert 1 <= len(sent) < 20 and sum(c for (c,) in sent) <= 0.00003


class CountingRelay:
    """A TCP relay on 127.0.0.1 in front of the emulator that counts the SSE content deltas it has
    forwarded to the client: a test can act once tokens are flowing, without guessing a delay."""

    def __init__(self, upstream_port: int) -> None:
        import socket
        import threading

        self.upstream_port = upstream_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.deltas = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[Any] = []
        self._closed = False
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            for source, sink, count in ((client, upstream, False), (upstream, client, True)):
                thread = threading.Thread(target=self._pump, args=(source, sink, count), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pump(self, source: Any, sink: Any, count: bool) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                if count:
                    with self._lock:
                        self.deltas += data.count(b'"content":"')
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(2)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.server.shutdown(2)  # wakes the accept() (close alone does not)
        self.server.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(2)
        for thread in [self._accepting, *self._threads]:
            thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()


def test_sigterm_during_benchmark_ends_like_ctrl_c(emulator_factory: Any, data_dir: Path, tmp_path: Path,
                                                    catalog_path: Path) -> None:
    """SIGTERM while benchmark streams are in flight: every started request is recorded (api_call,
    usage with its partial tokens, stream_outcome cancelled), the ledger settles exactly the usage
    cost, exit 143 and one line. Before the fix: `RuntimeError: EventLog is closed`, events lost."""
    from urllib.parse import urlsplit


    emu = emulator_factory(latency_scale=0.3)
    relay = CountingRelay(urlsplit(emu.base_url).port or 0)
    try:
        env = {**hive_env(emu, data_dir), "OPENROUTER_BASE_URL": f"http://127.0.0.1:{relay.port}/api/v1",
               "HIVE_FLUSH_AGE": "600"}  # only the exit path may flush
        budgeted_store(data_dir, catalog_path, env)
        prompts = tmp_path / "prompts.txt"
        prompts.write_text("A long story\n")
        proc = subprocess.Popen(
            [str(BIN / "hive"), "models", "benchmark", "--models", MODELS[0], "--prompts", str(prompts),
             "--requests", "2", "--concurrency", "2", "--max-tokens", "3000", "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while relay.deltas < 40 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.01)
            assert proc.poll() is None and relay.deltas >= 40, "the streams did not start"
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        relay.close()
    assert proc.returncode == 143, err
    assert [line for line in err.decode().splitlines() if line != "benchmark"] == ["terminated"], err
    outcomes = events(data_dir, "stream_outcome", "request_id, outcome, completion_tokens")
    assert len(outcomes) == 2 and {o[1] for o in outcomes} == {"cancelled"}
    assert sum(o[2] for o in outcomes) > 0 and all(o[2] < 3000 for o in outcomes)
    assert sorted(events(data_dir, "api_call", "status")) == [("cancelled",), ("cancelled",)]
    usage = events(data_dir, "usage", "request_id, completion_tokens, cost_usd")
    assert sorted(u[0] for u in usage) == sorted(o[0] for o in outcomes)
    assert {u[0]: u[1] for u in usage} == {o[0]: o[2] for o in outcomes}
    assert ledger_spend(data_dir) == pytest.approx(sum(u[2] for u in usage), abs=1e-9) and ledger_spend(data_dir) > 0
