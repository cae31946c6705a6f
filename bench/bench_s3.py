"""Object storage (issue 15 item 2): writes per writer and a one-day query, S3 server beside local disk.

The S3 server is moto's (``moto_server``, the ``s3`` test extra) on 127.0.0.1 in its own process: a
stand-in whose speed says little about AWS, but the same run on local disk is the peer. Figures:
events/s of one writer (50 flushes of 1 000 events, one PUT each) and the wall time of one day's
``count(*), avg(latency_ms)`` over 7 days of events. The read amplification here is an upper bound from
the files' Parquet footers (bytes of the day's files / bytes of the column chunks the query needs):
pyarrow's dataset scanner fetches footers and the needed column chunks by ranged GETs, so the real
ratio is at most this; counting the bytes served is what remains to measure it exactly.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import Figure, median_time

EVENTS_PER_FLUSH, FLUSHES, DAYS = 1_000, 50, 7


def _writes(root: Path) -> float:
    from hive_core.store.events import ApiCall
    from ingest import EventLog

    start = datetime(2026, 3, 1, tzinfo=UTC)
    events = [ApiCall(ts=start + timedelta(seconds=i * 86_400 * DAYS // (EVENTS_PER_FLUSH * FLUSHES)),
                      request_id=f"r{i}", attempt=1, model="openai/gpt-4o-mini", status="ok",
                      latency_ms=100.0 + i % 50) for i in range(EVENTS_PER_FLUSH * FLUSHES)]
    t0 = time.perf_counter()
    with EventLog(root, max_events=10**9, writer="bench") as log:
        for n in range(FLUSHES):
            log.record_many(events[n * EVENTS_PER_FLUSH:(n + 1) * EVENTS_PER_FLUSH])
            log.flush()
    return len(events) / (time.perf_counter() - t0)


def _day_query(root: Path) -> float:
    import queries

    def run() -> None:
        with queries.connect(root, warn=False) as store:
            store.execute("SELECT count(*), avg(latency_ms) FROM api_calls WHERE ts >= '2026-03-03' "
                          "AND ts < '2026-03-04'").fetchall()

    return median_time(run, repeat=5)


def _amplification(root: Path) -> float:
    """Bytes of one day's files / bytes of the column chunks ``ts`` and ``latency_ms`` in them."""
    import pyarrow.parquet as pq

    from hive_core.store.event_files import list_event_files

    listing = list_event_files(root, "api_call", check=False)
    day = [p for p in listing.files if p.parent.name == "date=2026-03-03"]
    total = needed = 0
    for path in day:
        total += listing.stats[path][0]
        source = path.open_input() if not isinstance(path, Path) else str(path)
        meta = pq.read_metadata(source)
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                if meta.schema.column(c).path in ("ts", "latency_ms"):
                    needed += meta.row_group(g).column(c).total_compressed_size
    return total / needed if needed else float("nan")


def _moto() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None


def run() -> list[Figure]:
    server = _moto()
    if server is None:
        return [Figure("S3 writes", float("nan"), "events/s", "measured", None, note="moto[server] not installed")]
    proc, endpoint = server
    try:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_DEFAULT_REGION="us-east-1")
        import botocore.session

        from hive_core.settings import Settings

        bucket = f"hive-bench-{uuid.uuid4().hex[:8]}"
        botocore.session.Session().create_client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        remote = Settings.from_env({}, data_dir=f"s3://{bucket}/data").data_dir
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp)
            local_rate, remote_rate = _writes(local), _writes(remote)
            local_q, remote_q = _day_query(local), _day_query(remote)
            local_amp, remote_amp = _amplification(local), _amplification(remote)
    finally:
        proc.kill()
        proc.wait()
    return [
        Figure("S3 writes per writer (moto)", remote_rate, "events/s", "measured", None, "local disk", local_rate,
               remote_rate / local_rate, note=f"{FLUSHES} flushes of {EVENTS_PER_FLUSH} events, one PUT each"),
        Figure("S3 one-day query of 7 days (moto)", remote_q * 1000, "ms", "measured", None, "local disk",
               local_q * 1000, remote_q / local_q, note="connect + count/avg of one day, pyarrow dataset scan"),
        Figure("S3 one-day read amplification (upper bound)", remote_amp, "x", "measured", None, "local disk",
               local_amp, remote_amp / local_amp, note="bytes of the day's files / bytes of the needed column chunks"),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure)
