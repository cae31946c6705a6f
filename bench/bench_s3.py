"""Object storage (issue 15 item 2): writes per writer and a one-day query, S3 server beside local disk.

The S3 server is moto's (``moto_server``, the ``s3`` test extra) on 127.0.0.1 in its own process: a
stand-in whose speed says little about AWS, but the same run on local disk is the peer. Figures:
events/s of one writer (50 flushes of 1 000 events, one PUT each) and the wall time of one day's
``count(*), avg(latency_ms)`` over 7 days of events, and its read amplification: the bytes the query
really read (on S3 counted by a TCP proxy between pyarrow and the server, responses' headers
included; on local disk the process's ``rchar`` from ``/proc/self/io``) over the bytes of the column
chunks it needs (``ts`` and ``latency_ms`` of that day's files, from their footers).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
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


def _needed_bytes(root: Path) -> int:
    """Bytes of the column chunks ``ts`` and ``latency_ms`` in one day's files (from their footers)."""
    import pyarrow.parquet as pq

    from hive_core.store.event_files import list_event_files

    listing = list_event_files(root, "api_call", check=False)
    needed = 0
    for path in (p for p in listing.files if p.parent.name == "date=2026-03-03"):
        source = path.open_input() if not isinstance(path, Path) else str(path)
        meta = pq.read_metadata(source)
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                if meta.schema.column(c).path in ("ts", "latency_ms"):
                    needed += meta.row_group(g).column(c).total_compressed_size
    return needed


def _rchar() -> int:
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


def _query_once(root: Path) -> None:
    import queries

    with queries.connect(root, warn=False) as store:
        store.execute("SELECT count(*), avg(latency_ms) FROM api_calls WHERE ts >= '2026-03-03' "
                      "AND ts < '2026-03-04'").fetchall()


def _amplification(root: Path, bytes_read: Callable[[], int]) -> float:
    """Bytes one connect + one-day query read (``bytes_read`` before and after) / the needed bytes."""
    _query_once(root)  # warm: imports and caches outside the measured run
    before = bytes_read()
    _query_once(root)
    return (bytes_read() - before) / _needed_bytes(root)


class _CountingProxy:
    """A TCP proxy on 127.0.0.1 that counts the bytes the server sends (what a client reads)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.served = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        ready.set()
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            try:
                while data := await src.read(65536):
                    if count:
                        self.served += len(data)
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        except asyncio.CancelledError:  # close(): the bench is done with the server
            writer.close()
            up_writer.close()

    def close(self) -> None:
        """Cancel the open connections (the S3 client keeps them alive) and stop the loop's thread."""

        async def cancel() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


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
            local_amp = _amplification(local, _rchar)
            proxy = _CountingProxy(endpoint)  # the S3 client of a new endpoint is made by each connect
            os.environ["AWS_ENDPOINT_URL"] = proxy.endpoint
            try:
                remote_amp = _amplification(remote, lambda: proxy.served)
            finally:
                proxy.close()
    finally:
        proc.kill()
        proc.wait()
    return [
        Figure("S3 writes per writer (moto)", remote_rate, "events/s", "measured", None, "local disk", local_rate,
               remote_rate / local_rate, note=f"{FLUSHES} flushes of {EVENTS_PER_FLUSH} events, one PUT each"),
        Figure("S3 one-day query of 7 days (moto)", remote_q * 1000, "ms", "measured", None, "local disk",
               local_q * 1000, remote_q / local_q, note="connect + count/avg of one day, pyarrow dataset scan"),
        Figure("S3 one-day read amplification (moto)", remote_amp, "x", "measured", None, "local disk",
               local_amp, remote_amp / local_amp,
               note="bytes read by connect + one-day query / bytes of that day's needed column chunks"),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure)
