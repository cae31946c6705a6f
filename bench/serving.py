"""Serving benchmarks' plumbing: a cheap load generator in its own process, and the server processes
it measures (CPU from ``/proc/<pid>/stat``, resident memory, start-up until a URL answers 200).

The load generator is an aiohttp client (an httpx AsyncClient costs 4-6 ms of CPU per request at
concurrency 32 here, which would measure itself), run as ``python -m bench.serving '<json spec>'``
so its CPU is never the server's: ``load(target, ...)`` starts it and reads what it printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Run", "Target", "cpu_seconds", "free_port", "load", "percentile", "process", "rss_mb", "wait_ok"]

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 90.0

# -- the load generator: its own process --------------------------------------------------------


async def _load(url: str, body: bytes, headers: dict[str, str], concurrency: int, n: int, stream: bool) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    firsts: list[float] = []
    events = 0
    errors: list[str] = []
    remaining = n

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining, events
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            first = None
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    if stream:
                        parts = []
                        async for chunk in response.content.iter_any():
                            if first is None and b"data:" in chunk:
                                first = time.perf_counter() - start
                            parts.append(chunk)
                        raw = b"".join(parts)
                    else:
                        raw = await response.read()
                    if response.status != 200:
                        errors.append(f"HTTP {response.status}: {raw[:200]!r}")
                        continue
            except (aiohttp.ClientError, OSError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - start)
            if stream:
                firsts.append(first if first is not None else latencies[-1])
                events += raw.count(b"\n\n")

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {"latencies": latencies, "firsts": firsts, "events": events, "errors": len(errors),
            "error_sample": errors[:3], "elapsed": elapsed}


def _load_main(argv: Sequence[str]) -> None:
    spec = json.loads(argv[0])
    result = asyncio.run(_load(spec["url"], json.dumps(spec["body"]).encode(), spec["headers"],
                               spec["concurrency"], spec["n"], spec["stream"]))
    print(json.dumps(result))


@dataclass(frozen=True)
class Target:
    """Something that answers ``POST /chat/completions`` (its URL) from a process we can read."""

    name: str
    url: str
    headers: dict[str, str]
    pid: int | None


@dataclass
class Run:
    latencies: list[float]
    firsts: list[float]
    events: int
    errors: int
    error_sample: list[str]
    elapsed: float
    cpu_s: float


def load(target: Target, body: dict[str, Any], *, stream: bool, concurrency: int, n: int) -> Run:
    """``n`` requests of ``body`` at ``concurrency`` from a fresh load-generator process; the CPU the
    target's processes used meanwhile."""
    spec = {"url": target.url, "body": body, "headers": target.headers, "concurrency": concurrency, "n": n,
            "stream": stream}
    cpu = cpu_seconds(target.pid)
    out = subprocess.run([sys.executable, "-m", "bench.serving", json.dumps(spec)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    used = cpu_seconds(target.pid) - cpu
    doc = json.loads(out.stdout)
    return Run(doc["latencies"], doc["firsts"], doc["events"], doc["errors"], doc["error_sample"], doc["elapsed"], used)


# -- processes: CPU, memory, start-up ------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return pids


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of ``pid`` and its live children, seconds (0 without a process)."""
    if pid is None:
        return 0.0
    total = 0
    for member in _tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children, MB."""
    kb = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kb += int(line.split()[1])
        except OSError:
            continue
    return kb / 1024


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ok(url: str, proc: subprocess.Popen[bytes], timeout_s: float = START_TIMEOUT_S) -> float:
    """Seconds until ``url`` answers 200 (polled every 5 ms); raises if the process dies or it never does."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s")


@contextmanager
def process(argv: Sequence[str], *, env: dict[str, str] | None = None, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, stopped (SIGTERM, then SIGKILL) however the block ends; output to ``log``."""
    with open(log, "wb") as sink:
        proc = subprocess.Popen(list(argv), env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()



def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (``q`` in 0..1) of ``values``; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


if __name__ == "__main__":
    _load_main(sys.argv[1:])
