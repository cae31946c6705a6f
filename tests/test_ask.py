"""``hive ask``: the library pipeline over a model chain, and the CLI (incl. Ctrl-C) as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hive_core.ask import AskOptions, ask, model_chain
from hive_core.errors import AuthError, MidStreamError
from hive_core.openrouter import OpenRouterClient
from hive_core.store.events import ApiCall, StreamOutcome
from tests.plugins.cli import BIN, budgeted_store, hive_env, run_cli
from tests.plugins.emulator import MODEL, emu_settings, fast_policy
from tests.plugins.store import ListSink, events, ledger_spend

OTHER = "anthropic/claude-3-haiku"


def test_model_chain() -> None:
    assert model_chain("a", ["b", "a", "c", "b"]) == ["a", "b", "c"]
    assert model_chain("a", ["b"], no_fallback=True) == ["a"]


def test_fallback(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(faults=[f"{MODEL}:503:1"])
    settings = emu_settings(emu, tmp_path)
    sink = ListSink()
    told: list[tuple[str, str]] = []
    with OpenRouterClient(settings, sink=sink, policy=fast_policy(settings)) as client:
        answer = ask(client, "hi", [MODEL, OTHER], AskOptions(stream=True, max_tokens=10),
                     on_fallback=lambda failed, error, nxt: told.append((failed, nxt)))
    assert (answer.model, answer.fallback_index, answer.result.outcome) == (OTHER, 1, "completed")
    assert [m for m, _ in answer.failures] == [MODEL] and told == [(MODEL, OTHER)]
    calls = sink.of(ApiCall)
    assert [(c.model, c.attempt, c.status, c.fallback_index) for c in calls] == [
        (MODEL, 1, "server_error", 0), (MODEL, 2, "server_error", 0), (OTHER, 1, "ok", 1)]
    assert len({c.request_id for c in calls}) == 1  # one logical request, fallback_index tells the model
    assert [o.outcome for o in sink.of(StreamOutcome)] == ["errored", "completed"]


def test_fallback_async(emulator_factory: Any, tmp_path: Path) -> None:
    """``aask`` (the async shell over the same ChainRun) falls back exactly like ``ask``."""
    import asyncio

    from hive_core.ask import AskResult, aask
    from hive_core.openrouter import AsyncOpenRouterClient

    emu = emulator_factory(faults=[f"{MODEL}:503:1"])
    settings = emu_settings(emu, tmp_path)
    sink = ListSink()
    told: list[tuple[str, str]] = []

    async def main() -> AskResult:
        async with AsyncOpenRouterClient(settings, sink=sink, policy=fast_policy(settings)) as client:
            return await aask(client, "hi", [MODEL, OTHER], AskOptions(stream=True, max_tokens=10),
                              on_fallback=lambda failed, error, nxt: told.append((failed, nxt)))

    answer = asyncio.run(main())
    assert (answer.model, answer.fallback_index, answer.result.outcome) == (OTHER, 1, "completed")
    assert [m for m, _ in answer.failures] == [MODEL] and told == [(MODEL, OTHER)]
    assert [(c.model, c.status, c.fallback_index) for c in sink.of(ApiCall)] == [
        (MODEL, "server_error", 0), (MODEL, "server_error", 0), (OTHER, "ok", 1)]
    assert [o.outcome for o in sink.of(StreamOutcome)] == ["errored", "completed"]


def test_fallback_cli(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(faults=[f"{MODEL}:503:1"])
    done = run_cli("hive", ["ask", "hi", "--model", MODEL, "--fallback", OTHER, "--max-tokens", "10", "--json"],
                   hive_env(emu, tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["model"], doc["fallback_index"], doc["cost_source"]) == (OTHER, 1, "billed")
    assert f"{MODEL} failed (server_error): trying {OTHER}" in done.stderr


def test_no_fallback_for_a_bad_key(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(api_key="sk-or-v1-the-only-valid-key")
    bad = emu_settings(emu, tmp_path, api_key="sk-or-v1-not-the-key")
    with OpenRouterClient(bad) as client, pytest.raises(AuthError):
        ask(client, "hi", [MODEL, OTHER], AskOptions(max_tokens=5))


@pytest.mark.parametrize("stream", [True, False])
def test_a_mid_stream_error_falls_back_streamed_or_not(emulator_factory: Any, tmp_path: Path, stream: bool) -> None:
    """A provider error after some text falls back to the next model whether the answer is streamed
    or not (streamed, it used to end the chain at the partial answer); both attempts are recorded,
    the failed one with its partial usage, and on_fallback comes between the two answers' text."""
    emu = emulator_factory(faults=[f"{MODEL}:midstream-error:1"])
    sink = ListSink()
    seen: list[str] = []
    with OpenRouterClient(emu_settings(emu, tmp_path), sink=sink) as client:
        answer = ask(client, "hi", [MODEL, OTHER], AskOptions(stream=stream, max_tokens=20), on_text=seen.append,
                     on_fallback=lambda failed, error, nxt: seen.append(f"<{failed} failed: {nxt}>"))
    assert (answer.model, answer.fallback_index, answer.result.outcome) == (OTHER, 1, "completed")
    assert [(m, type(e)) for m, e in answer.failures] == [(MODEL, MidStreamError)]
    told = seen.index(f"<{MODEL} failed: {OTHER}>")
    assert bool(seen[:told]) is stream and "".join(seen[told + 1:]) == answer.result.text  # partial text first
    assert [(c.model, c.status, c.fallback_index) for c in sink.of(ApiCall)] == [
        (MODEL, "server_error", 0), (OTHER, "ok", 1)]
    assert len({c.request_id for c in sink.of(ApiCall)}) == 1
    if stream:
        assert [o.outcome for o in sink.of(StreamOutcome)] == ["errored", "completed"]


def test_ask_cli_streams_and_summarises_without_a_catalog(emulator_factory: Any, tmp_path: Path) -> None:
    """OpenRouter's /models fails and there is no copy: an explicit model still works, billed."""
    emulator = emulator_factory(faults=["/models:503"])
    data = tmp_path / "data"
    done = run_cli("hive", ["ask", "Say hi", "--model", MODEL, "--max-tokens", "12"], hive_env(emulator, data))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    *_, summary, request_id = done.stderr.strip().splitlines()
    assert MODEL in summary and "billed" in summary and "TTFT" in summary
    assert events(data, "usage", "cost_source") == [("billed",)]
    assert [(request_id,)] == [(f"request id: {rid}",) for (rid,) in events(data, "usage", "request_id")]
    done = run_cli("hive", ["ask", "Say hi", "--model", MODEL, "--no-stream", "--json"], hive_env(emulator, data))
    assert json.loads(done.stdout)["outcome"] == "completed"
    missing = run_cli("hive", ["ask", "hi"], hive_env(emulator, data))  # the selector needs a catalog
    assert missing.returncode == 1 and "hive models sync" in missing.stderr


#: ``hive`` under an audit hook that counts how often the process opens the catalog or its parse cache
#: (``sys.argv[1:3]``), printed on stderr at exit: a load opens one of them (a cache hit, the cache)
_COUNT_CATALOG_OPENS = """
import atexit, os, sys
watched = {os.path.abspath(p) for p in sys.argv[1:3]}
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], str) and os.path.abspath(args[0]) in watched:
        opened.append(args[0])
sys.addaudithook(hook)
atexit.register(lambda: sys.stderr.write(f"catalog opened {len(opened)} time(s)\\n"))
sys.argv = ["hive", *sys.argv[3:]]
from hive_cli.hive import main
main()
"""


def test_catalog_loads_once(emulator: Any, tmp_path: Path) -> None:
    """One ``hive ask`` with selection, a budget and prices parses (or reads the cache of) the catalog
    once: the Session shares it (it was loaded three times, for the selector, the budget, the client)."""
    from hive_core.settings import Settings
    from hive_core.store.filecache import cache_file

    data = tmp_path / "data"
    env = hive_env(emulator, data)
    assert run_cli("hive", ["models", "sync"], env).returncode == 0
    assert run_cli("hive", ["budget", "set", "--daily", "100"], env).returncode == 0
    where = Settings(data_dir=data).datadir
    assert run_cli("hive", ["models", "list", "--json"], env).returncode == 0  # the parse cache is written
    watched = [str(where.catalog_file), str(cache_file(where.catalog_file, where.cache))]
    done = subprocess.run([sys.executable, "-c", _COUNT_CATALOG_OPENS, *watched, "ask", "Simple question",
                           "--max-tokens", "10", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["selection"]["primary"]
    assert done.stderr.splitlines()[-1] == "catalog opened 1 time(s)", done.stderr


def test_ctrl_c_during_stream_records_cancelled(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(latency_scale=0.3, faults=["/models:503"])  # no catalog: nothing to estimate with
    data = tmp_path / "data"
    env = {**hive_env(emu, data), "HIVE_FLUSH_AGE": "600"}  # only the exit path may flush
    proc = subprocess.Popen([str(BIN / "hive"), "ask", "A long story", "--model", MODEL, "--max-tokens", "3000"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    received = b""
    deadline = time.monotonic() + 30
    while len(received) < 20 and time.monotonic() < deadline:
        received += os.read(proc.stdout.fileno(), 1024)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    (outcome,) = events(data, "stream_outcome", "outcome, completion_tokens")
    assert outcome[0] == "cancelled" and 0 < outcome[1] < 3000
    assert events(data, "api_call", "status") == [("cancelled",)]
    ((tokens, source),) = events(data, "usage", "completion_tokens, cost_source")
    assert tokens > 0 and source == "unknown"  # no catalog: unknown, never 0; reconcile bills it later


def signal_after_streaming_started(cmd: list[str], env: dict[str, str], sig: int,
                                   *, started: bytes | None = None) -> tuple[int, str]:
    """Run ``cmd``, send ``sig`` once it has printed 20 bytes (or ``started`` on stderr), return
    (exit status, stderr). The process is killed whatever happens."""
    import selectors

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        stream = proc.stdout if started is None else proc.stderr
        want = started or b""
        received = b""
        deadline = time.monotonic() + 30
        with selectors.DefaultSelector() as sel:
            sel.register(stream, selectors.EVENT_READ)
            while time.monotonic() < deadline and proc.poll() is None:
                if (len(received) >= 20 and not want) or (want and want in received):
                    break
                if sel.select(timeout=0.1):
                    received += os.read(stream.fileno(), 1024)
        assert proc.poll() is None, "the command ended before the signal was sent"
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
        if started is not None:
            err = received + err
        return proc.returncode, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_sigterm_during_stream_ends_like_ctrl_c(emulator_factory: Any, tmp_path: Path, catalog_path: Path) -> None:
    """SIGTERM (systemd, docker stop, timeout) cancels the stream the way Ctrl-C does: events recorded,
    partial usage billed and settled in the ledger, exit 143, one line."""
    emu = emulator_factory(latency_scale=0.3)
    data = tmp_path / "data"
    env = {**hive_env(emu, data), "HIVE_FLUSH_AGE": "600"}  # only the exit path may flush
    budgeted_store(data, catalog_path, env)
    status, err = signal_after_streaming_started(
        [str(BIN / "hive"), "ask", "A long story", "--model", MODEL, "--max-tokens", "3000"], env, signal.SIGTERM)
    assert status == 143, err
    assert err.strip().splitlines() == ["terminated"], err
    (outcome,) = events(data, "stream_outcome", "outcome, completion_tokens")
    assert outcome[0] == "cancelled" and 0 < outcome[1] < 3000
    assert events(data, "api_call", "status") == [("cancelled",)]
    ((tokens, cost),) = events(data, "usage", "completion_tokens, cost_usd")
    assert tokens > 0 and cost > 0
    assert ledger_spend(data) == pytest.approx(cost, abs=1e-9)


def test_ask_on_a_full_disk_prints_the_answer_and_spills_its_events(emulator: Any, tmp_path: Path,
                                                                     catalog_path: Path) -> None:
    """The events' disk is full: the billed answer is printed, its 3 events go to a spill file (one
    line says where), the ledger keeps the spend; `hive-jobs` takes them back and both agree.
    Before: the answer, then a traceback, and the request's events gone."""
    from tests.faults import full_disk

    data = tmp_path / "data"
    env = {**hive_env(emulator, data), "XDG_STATE_HOME": str(tmp_path / "state")}
    budgeted_store(data, catalog_path, env)
    with full_disk(data / "events", "64k"):
        done = run_cli("hive", ["ask", "Say hi", "--model", MODEL, "--max-tokens", "12"], env)
        assert events(data, "usage", "cost_usd") == []
    assert done.returncode == 1 and done.stdout.strip(), done.stderr
    assert "Traceback" not in done.stderr
    *_, summary, request_id, error = done.stderr.strip().splitlines()
    assert MODEL in summary and "billed" in summary and request_id.startswith("request id: ")
    assert error.startswith(f"error: 3 event(s) could not be written to {data} (No space left on device); kept in "
                            f"{tmp_path / 'state' / 'hive' / 'spill'}")
    assert "`hive-jobs import-spills`" in error
    spent = ledger_spend(data)
    assert spent > 0  # billed and settled: the events must come back to match it
    # any hive-jobs command takes them back first (the nightly cron run heals the store)
    took = run_cli("hive-jobs", ["sql", "select count(*) as n from usage", "--format", "csv"], env)
    assert took.returncode == 0 and "took back 3 spilled event(s)" in took.stderr, took.stderr
    assert took.stdout.split() == ["n", "1"]
    ((cost,),) = events(data, "usage", "cost_usd")
    assert cost == pytest.approx(spent, abs=1e-9)
    assert len(events(data, "api_call", "status")) == 1 and len(events(data, "stream_outcome", "outcome")) == 1
    again = run_cli("hive-jobs", ["import-spills"], env)
    assert again.returncode == 0 and "no spilled events" in again.stdout
