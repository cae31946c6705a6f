"""Event log and start-up figures (issue 2): record cost, flush throughput, `--help` start-up, simulate."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Figure

VENV_BIN = Path(sys.executable).parent


def _record_figures() -> list[Figure]:
    from hive_core.store.events import ApiCall
    from ingest.log import EventLog

    n = 200_000
    with tempfile.TemporaryDirectory() as tmp:
        log = EventLog(Path(tmp), max_events=10**9, max_age_s=3600)
        both, record, flush = [], [], []
        for _ in range(3):
            # as callers record: build an event, hand it over, drop it
            t0 = time.perf_counter()
            for _ in range(n):
                log.record(ApiCall(request_id="r", attempt=1, model="openai/gpt-4o", status="ok", latency_ms=12.5,
                                   provider="OpenAI", streamed=True, ttft_ms=80.0))
            t1 = time.perf_counter()
            log.flush()
            events = [ApiCall(request_id="r", attempt=1, model="openai/gpt-4o", status="ok", latency_ms=12.5,
                              provider="OpenAI", streamed=True, ttft_ms=80.0) for _ in range(n)]
            t2 = time.perf_counter()
            for event in events:
                log.record(event)
            t3 = time.perf_counter()
            written = log.flush()
            t4 = time.perf_counter()
            del events
            both.append((t1 - t0) / n * 1e6)
            record.append((t3 - t2) / n * 1e6)
            flush.append(written / (t4 - t3))
        log.close()
    rec = statistics.median(record)
    built = statistics.median(both)
    fl = statistics.median(flush)
    return [
        Figure("log.record (event already built)", rec, "us/event", "<= 10 us", rec <= 10),
        Figure("log.record(ApiCall(...)) incl. building the event", built, "us/event", "<= 10 us", built <= 10,
               note="pydantic validation + UUIDv7 + timestamp + record, event dropped after"),
        Figure("log.flush to Parquet", fl, "events/s", ">= 500,000", fl >= 500_000),
    ]


def _startup_figures() -> list[Figure]:
    def wall(cmd: list[str]) -> float:
        samples = []
        for _ in range(9):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            samples.append(time.perf_counter() - t)
        return statistics.median(samples)

    bare = wall([sys.executable, "-c", "pass"])
    figures = []
    for tool in ("hive", "hive-jobs"):
        value = wall([str(VENV_BIN / tool), "--help"])
        figures.append(Figure(f"{tool} --help", value * 1000, "ms", "<= 4x python -c pass", value <= 4 * bare,
                              peer="python -c pass", peer_value=bare * 1000, ratio=value / bare))
    return figures


def _simulate_figure() -> Figure:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([str(VENV_BIN / "hive-jobs"), "--data-dir", tmp, "simulate", "--days", "30",
                        "--calls-per-day", "128000", "--seed", "1"], check=True, capture_output=True)
        seconds = time.perf_counter() - t
        events = sum(1 for _ in Path(tmp).rglob("*.parquet"))
    return Figure("simulate 10M events (30 d x 128k requests)", seconds, "s", "well within 60 s", seconds <= 60,
                  note=f"{events} files, whole process")


def run() -> list[Figure]:
    return [*_record_figures(), *_startup_figures(), _simulate_figure()]
