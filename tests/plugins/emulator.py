"""The OpenRouter emulator, running for real on 127.0.0.1 (STYLE.md #5, #12).

* ``emulator``: one in-process :class:`Emulator` for the session (real catalog, no faults, small
  latency). A test that changes its faults calls ``emulator.reset()`` when done (or uses
  ``emulator_factory`` instead).
* ``emulator_factory(faults=[...], seed=..., latency_scale=..., **kwargs)``: a fresh started
  emulator per call, stopped at teardown.
* ``emulator_process(*args)`` / :func:`run_emulator_process`: ``hive-emulator`` as a subprocess,
  for CLI tests; yields an :class:`EmulatorProcess` with ``base_url``, ``api_key`` and ``stop``.

Every emulator has ``.base_url`` (ending ``/api/v1``) and ``.api_key`` (``sk-or-v1-test...``).

Talking to it: :data:`MODEL` (a cheap model of the real catalog), :func:`emu_settings` (settings
pointing at an emulator, with short timeouts), :func:`fast_policy` (retries without real waits),
:func:`seed_failing_first` (a fault plan's seed), and the ``catalog`` fixture (the real catalog,
loaded from a copy).

Tools and capabilities (issue 13): :data:`NO_TOOLS_MODEL` (a text-only model of the real catalog
without ``tools``: the emulator refuses tools and images for it with OpenRouter's 404s),
:data:`SMALL_CONTEXT_MODEL` (a 4k-context model, for the context-length 400) and
:func:`function_tool` (an OpenAI-format function tool from a JSON Schema or a pydantic model).
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hive_emulator import DEFAULT_TEST_KEY, Emulator

if TYPE_CHECKING:
    from hive_core.catalog.catalog import Catalog
    from hive_core.openrouter import RetryPolicy
    from hive_core.settings import Settings

__all__ = [
    "MODEL",
    "NO_TOOLS_MODEL",
    "SMALL_CONTEXT_MODEL",
    "TEST_LATENCY_SCALE",
    "EmulatorProcess",
    "emu_settings",
    "fast_policy",
    "function_tool",
    "run_emulator_process",
    "seed_failing_first",
]

#: the model most tests ask (cheap, streams, in the real catalog)
MODEL = "openai/gpt-4o-mini"

#: a cheap text-only model whose ``supported_parameters`` lack ``tools`` (in the real catalog)
NO_TOOLS_MODEL = "liquid/lfm-2-24b-a2b"

#: a model with a 4096-token context (in the real catalog)
SMALL_CONTEXT_MODEL = "gryphe/mythomax-l2-13b"

#: delays at 1/100 of real: streams still have shape (TTFT, pacing) but tests stay fast
TEST_LATENCY_SCALE = 0.01
STARTUP_TIMEOUT_S = 15.0


@pytest.fixture(scope="session")
def emulator(catalog_path: Path) -> Iterator[Emulator]:
    """A running emulator shared by the session: no faults, seed 1234, latency x0.01."""
    with Emulator(catalog_path, seed=1234, latency_scale=TEST_LATENCY_SCALE) as emu:
        yield emu


@pytest.fixture
def emulator_factory(catalog_path: Path) -> Iterator[Callable[..., Emulator]]:
    """``make(faults=[...], seed=0, latency_scale=0.01, **Emulator kwargs)`` -> a started emulator."""
    started: list[Emulator] = []

    def make(*, faults: Any = (), seed: int = 0, latency_scale: float = TEST_LATENCY_SCALE,
             **kwargs: Any) -> Emulator:
        emu = Emulator(catalog_path, faults=faults, seed=seed, latency_scale=latency_scale, **kwargs)
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


class EmulatorProcess:
    """A ``hive-emulator`` subprocess that has printed its listening line."""

    def __init__(self, proc: subprocess.Popen[str], base_url: str, api_key: str) -> None:
        self.proc = proc
        self.base_url = base_url
        self.api_key = api_key
        self.stderr = ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig``, wait for exit, and return the exit status (pipes are closed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.stderr = self.proc.communicate()
            raise
        return self.proc.returncode


@contextmanager
def run_emulator_process(catalog_path: Path, *args: str) -> Iterator[EmulatorProcess]:
    """Run ``python -m hive_emulator.server --port 0 --catalog ... *args`` until the block ends."""
    cmd = [sys.executable, "-m", "hive_emulator.server", "--host", "127.0.0.1", "--port", "0",
           "--catalog", str(catalog_path), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = ""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not line and time.monotonic() < deadline and proc.poll() is None:
            if sel.select(timeout=0.1):
                line = proc.stdout.readline()
    running = EmulatorProcess(proc, "", DEFAULT_TEST_KEY)
    if not line.startswith("listening on "):
        running.stop(signal.SIGKILL)
        pytest.fail(f"hive-emulator did not start: {line!r} {running.stderr}")
    running.base_url = line.removeprefix("listening on ").strip()
    try:
        yield running
    finally:
        if proc.returncode is None:
            running.stop()


@pytest.fixture
def emulator_process(catalog_path: Path) -> Callable[..., AbstractContextManager[EmulatorProcess]]:
    """``with emulator_process("--seed", "3") as proc:`` runs the CLI server for the block."""

    def start(*args: str) -> AbstractContextManager[EmulatorProcess]:
        return run_emulator_process(catalog_path, *args)

    return start


def emu_settings(emu: Any, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings that talk to ``emu`` with a data directory under ``tmp_path``; short read timeout, two
    attempts, tiny backoff (``overrides`` on top)."""
    from hive_core.settings import Settings

    values: dict[str, Any] = {"api_key": emu.api_key, "base_url": emu.base_url, "data_dir": tmp_path / "data",
                              "read_timeout_s": 0.3, "max_attempts": 2, "retry_max_wait_s": 0.05}
    values.update(overrides)
    return Settings(**values)


def fast_policy(settings: Settings) -> RetryPolicy:
    """The settings' retry policy with a 10 ms base backoff."""
    from hive_core.openrouter import RetryPolicy

    return RetryPolicy.from_settings(settings, base_s=0.01)


def seed_failing_first(kind: str, model: str = MODEL) -> int:
    """A seed whose fault plan (rate 0.5) hits the first request to ``model`` and spares the second."""
    from hive_emulator.faults import FaultPlan

    for seed in range(10_000):
        plan = FaultPlan([f"*:{kind}:0.5"], seed=seed)
        if plan.draw(model) == kind and plan.draw(model) is None:
            return seed
    raise AssertionError("no such seed")


@pytest.fixture
def catalog(catalog_path: Path, tmp_path: Path) -> Catalog:
    """The real catalog, loaded from a copy under ``tmp_path`` (its parse cache stays there)."""
    from hive_core.catalog.catalog import load_catalog

    copy = tmp_path / "catalog" / "models.json"
    copy.parent.mkdir()
    shutil.copy(catalog_path, copy)
    return load_catalog(copy)


def function_tool(name: str, parameters: dict[str, Any] | type[Any], description: str = "") -> dict[str, Any]:
    """``{"type": "function", "function": {name, description, parameters}}``; ``parameters`` is a JSON
    Schema, or a pydantic model class whose ``model_json_schema()`` is used."""
    schema = parameters if isinstance(parameters, dict) else parameters.model_json_schema()
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}
