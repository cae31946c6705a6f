"""A backstop: no process a test started outlives the test session.

Each test stops what it starts in a finalizer; this plugin catches what slips through anyway (a
forked child whose parent test crashed, an orphaned writer). The session puts a marker in its
environment, every process it starts inherits it, and at the end of the session every process
still carrying this session's marker (or forked by the session itself) is killed and named in the summary. (Once, a ``while True``
writer orphaned by a failed test kept writing for 50 minutes, 2 GB, after pytest had ended.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["flock_held_elsewhere", "free_port", "listening", "set_environ", "stopped"]

MARKER = "PYTEST_HIVE_SESSION"
_leftovers: list[str] = []


@contextmanager
def stopped(procs: Sequence[subprocess.Popen[str]] | Sequence[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Run the block; then kill (and reap) whichever of ``procs`` still runs, whatever happened."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


#: a process that takes an exclusive flock on argv[1], says so, and holds it until its stdin closes
_HOLDER = ("import fcntl, sys; f = open(sys.argv[1], 'a+b'); fcntl.flock(f, fcntl.LOCK_EX); "
           "print('held', flush=True); sys.stdin.read()")


@contextmanager
def flock_held_elsewhere(path: Path) -> Iterator[None]:
    """``path``'s exclusive ``flock`` held by another process for the block: what another gateway
    worker, the CLI or ``hive-jobs rebuild-ledger`` holds while it writes."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    with stopped([proc]):
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == "held\n", "the lock holder did not start"
        try:
            yield
        finally:
            proc.stdin.close()
            proc.wait(timeout=10)
            proc.stdout.close()


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (for a server a fixture starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def listening(proc: subprocess.Popen[bytes], port: int, what: str, *, timeout_s: float,
              log: Path | None = None) -> Iterator[None]:
    """Wait until ``proc`` accepts connections on ``port`` (failing the test, with the tail of
    ``log``, if it exits or ``timeout_s`` passes first); run the block; then kill and reap it."""
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    reason = " ".join(log.read_text(errors="replace").split())[-300:] if log else ""
                    pytest.fail(f"{what} did not start on port {port}: {reason or 'no output'}")
                time.sleep(0.05)
        yield
    finally:
        proc.kill()
        proc.wait()


def set_environ(monkeypatch: pytest.MonkeyPatch, prefix: str, env: dict[str, str]) -> dict[str, str]:
    """Replace every variable named ``prefix*`` with ``env`` for this test (subprocesses inherit it)."""
    for name in list(os.environ):
        if name.startswith(prefix):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def pytest_configure(config: pytest.Config) -> None:
    os.environ[MARKER] = uuid.uuid4().hex


def _ppid(entry: Path) -> int:
    for line in (entry / "status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return 0


def _marked_processes(token: str) -> list[tuple[int, str]]:
    """Processes started with this session's marker (exec'd children and theirs), and forked
    children of this process (a fork keeps the environ block the parent started with, without it)."""
    needle = f"{MARKER}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0") and _ppid(entry) != os.getpid():
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone, or not ours to read
            continue
        found.append((int(entry.name), cmdline[:120]))
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    token = os.environ.get(MARKER)
    if not token or not Path("/proc/self/environ").exists():
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a worker's siblings share the marker; the controller cleans up
    for pid, cmdline in _marked_processes(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        _leftovers.append(f"{pid} {cmdline}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _leftovers:
        terminalreporter.write_sep("!", "processes left running by tests (killed)", red=True)
        for line in _leftovers:
            terminalreporter.write_line(line)
