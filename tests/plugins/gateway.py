"""A real ``hive gateway`` process in front of an emulator, for tests over real HTTP (issue 14).

* ``gateway``: a gateway with ``--no-auth`` on a free port in front of the session's emulator,
  with its own data directory (the real catalog synced in); yields a :class:`GatewayProcess`.
* ``gateway_factory(emu, *args, data_dir=..., env=...)``: start more (other emulators, faults,
  auth on); each one is stopped with SIGTERM at teardown.

A :class:`GatewayProcess` has ``base_url`` (``http://127.0.0.1:PORT``; the OpenAI SDK takes
``base_url + "/v1"``), ``data_dir``, ``env``, ``stop()`` (SIGTERM, returns the exit status, then
``stdout``/``stderr`` hold what it printed: files, so any number of access-log lines never stall it) and ``wait_events(type, n)``, which waits until ``n`` events of a type are on disk
(the gateway flushes its log every 0.1 s here, and at exit).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.plugins.cli import BIN, hive_env
from tests.plugins.store import events

if TYPE_CHECKING:
    import ssl

    from aiohttp import web

__all__ = ["GatewayProcess", "free_port", "serving", "start_gateway"]

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0


@contextlib.asynccontextmanager
async def serving(app: web.Application, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """``app`` served by a real aiohttp server on 127.0.0.1 for the block (in this event loop), over
    TLS with ``ssl_context``: its port."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """A running ``hive gateway``."""

    def __init__(self, proc: subprocess.Popen[str], port: int, data_dir: Path, env: dict[str, str],
                 output: Path) -> None:
        self.proc = proc
        self.output = output
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.env = env
        self.stdout = ""
        self.stderr = ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send ``sig``; wait for the exit and return its status (output kept in stdout/stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.stdout, self.stderr = ((self.output / name).read_text() for name in ("stdout", "stderr"))
        return self.proc.returncode

    def wait_events(self, event_type: str, n: int, columns: str = "*", timeout: float = 20.0) -> list[tuple[Any, ...]]:
        """The ``event_type`` events on disk once there are at least ``n`` (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            found = events(self.data_dir, event_type, columns)
            if len(found) >= n or time.monotonic() > deadline:
                assert len(found) >= n, f"{len(found)} {event_type} events on disk, expected {n}"
                return found
            time.sleep(0.05)


def start_gateway(emu: Any, data_dir: Path, catalog_path: Path | None, *args: str,
                  env: dict[str, str] | None = None, launcher: list[str] | None = None) -> GatewayProcess:
    """``hive gateway --port <free> *args`` against ``emu`` with ``data_dir`` (the catalog copied in
    when given); returns once ``/healthz`` answers. ``launcher``: what runs ``gateway ...`` instead of
    the ``hive`` script (a ``python -c`` that looks into the process, say)."""
    if catalog_path is not None:
        from hive_core.store.datadir import DataDir

        target = DataDir(data_dir).catalog_file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(catalog_path, target)
    port = free_port()
    environ = {**hive_env(emu, data_dir), "HIVE_FLUSH_AGE": "0.1", **(env or {})}
    # files, not pipes: the access log writes a line per request, and a full pipe would stall the gateway
    output = data_dir.parent / f"gateway-{port}"
    output.mkdir(parents=True)
    with (output / "stdout").open("w") as stdout, (output / "stderr").open("w") as stderr:
        proc = subprocess.Popen([*(launcher or [str(BIN / "hive")]), "gateway", "--port", str(port), *args], env=environ,
                                stdout=stdout, stderr=stderr, text=True)
    running = GatewayProcess(proc, port, data_dir, environ, output)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{running.base_url}/healthz", timeout=1.0).status_code == 200:
                return running
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    running.stop(signal.SIGKILL)
    pytest.fail(f"hive gateway did not start: {running.stderr}")


@pytest.fixture
def gateway_factory(catalog_path: Path, tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """``start(emu, *args, data_dir=None, env=None, catalog=True, launcher=None)`` -> a running gateway."""
    started: list[GatewayProcess] = []

    def start(emu: Any, *args: str, data_dir: Path | None = None, env: dict[str, str] | None = None,
              catalog: bool = True, launcher: list[str] | None = None) -> GatewayProcess:
        where = data_dir or tmp_path / f"gateway-data-{len(started)}"
        running = start_gateway(emu, where, catalog_path if catalog else None, *args, env=env, launcher=launcher)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.proc.poll() is None:
            running.stop()


@pytest.fixture
def gateway(emulator: Any, gateway_factory: Callable[..., GatewayProcess]) -> GatewayProcess:
    """A ``--no-auth`` gateway in front of the session's emulator, its own data directory."""
    return gateway_factory(emulator, "--no-auth")
