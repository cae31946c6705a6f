"""Object storage (issue 15 item 2): writes per writer and a one-day query, S3 and GCS servers beside local disk.

The S3 server is moto's (``moto_server``, the ``s3`` test extra), the GCS server Google's
storage-testbench (``tests/gcs_testbench``, run from ``.venv/gcs-testbench``), each on 127.0.0.1 in its
own process: stand-ins whose speed says little about AWS or Google, but the same run on local disk is the peer. Figures:
events/s of one writer (50 flushes of 1 000 events, one PUT each) and the wall time of one day's
``count(*), avg(latency_ms)`` over 7 days of events, and its read amplification: the bytes the query
really read (on S3 counted by a TCP proxy between pyarrow and the server, responses' headers
included; on local disk the process's ``rchar`` from ``/proc/self/io``) over the bytes of the column
chunks it needs (``ts`` and ``latency_ms`` of that day's files, from their footers).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
    """A TCP proxy on 127.0.0.1 that counts the bytes the server sends (what a client reads). It runs
    in a process of its own: pyarrow's GCS client holds the GIL while it reads an object, so a proxy
    thread of the reading process never got to relay the request (the read stalled)."""

    def __init__(self, upstream: str) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._served = context.Value("q", 0)
        port = context.Value("i", 0)
        ready = context.Event()
        self._process = context.Process(target=_serve_counting, args=(upstream, self._served, port, ready),
                                        daemon=True)
        self._process.start()
        if not ready.wait(30):
            self._process.kill()
            raise RuntimeError("the counting proxy did not start")
        self.endpoint = f"http://127.0.0.1:{port.value}"

    @property
    def served(self) -> int:
        return int(self._served.value)

    def close(self) -> None:
        self._process.kill()
        self._process.join()


def _serve_counting(upstream: str, served: Any, port: Any, ready: Any) -> None:
    """The proxy process: relay every connection to ``upstream``, adding the bytes it sends to ``served``."""
    host, upstream_port = upstream.removeprefix("http://").split(":")

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(upstream_port))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            try:
                while data := await src.read(65536):
                    if count:
                        with served.get_lock():
                            served.value += len(data)
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

    async def main() -> None:
        server = await asyncio.start_server(client, "127.0.0.1", 0)
        port.value = server.sockets[0].getsockname()[1]
        ready.set()
        await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(proc: subprocess.Popen[bytes], port: int) -> bool:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill a server and every process of its session (gunicorn's worker too)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _moto() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if binary is None:
        return None
    port = _free_port()
    proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    if _listening(proc, port):
        return proc, f"http://127.0.0.1:{port}"
    _stop(proc)
    return None


def _testbench() -> tuple[subprocess.Popen[bytes], str] | None:
    """Google's storage-testbench (tests/gcs_testbench, its venv built by ``make test``) under gunicorn."""
    repo = Path(__file__).resolve().parents[1]
    gunicorn = repo / ".venv" / "gcs-testbench" / "bin" / "gunicorn"
    if not gunicorn.exists():
        return None
    port = _free_port()
    proc = subprocess.Popen([str(gunicorn), f"--bind=127.0.0.1:{port}", "--workers=1", "--worker-class=gthread",
                             "--threads=16", "testbench:run()"], cwd=repo / "tests" / "gcs_testbench",
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    if _listening(proc, port):
        return proc, f"http://127.0.0.1:{port}"
    _stop(proc)
    return None


def _s3_store(endpoint: str) -> tuple[str, Callable[[str], None]]:
    """An ``s3://`` data directory in a new bucket, and how to point the process at an endpoint."""
    def point(url: str) -> None:  # the S3 client of a new endpoint is made by each connect
        os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_DEFAULT_REGION="us-east-1")

    import botocore.session

    point(endpoint)
    bucket = f"hive-bench-{uuid.uuid4().hex[:8]}"
    botocore.session.Session().create_client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/data", point


def _gs_store(endpoint: str) -> tuple[str, Callable[[str], None]]:
    """A ``gs://`` data directory in a new bucket, and how to point the process at an endpoint."""
    import httpx

    def point(url: str) -> None:
        os.environ["STORAGE_EMULATOR_HOST"] = url

    point(endpoint)
    bucket = f"hive-bench-{uuid.uuid4().hex[:8]}"
    httpx.post(f"{endpoint}/storage/v1/b", params={"project": "bench"}, json={"name": bucket}).raise_for_status()
    return f"gs://{bucket}/data", point


#: (figure prefix, server's name, how to start it, how to make a data directory in it, what is missing)
STORES = (("S3", "moto", _moto, _s3_store, "moto[server] not installed"),
          ("GCS", "storage-testbench", _testbench, _gs_store, "no .venv/gcs-testbench: make test builds it"))


def run() -> list[Figure]:
    from hive_core.settings import Settings

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        _writes(Path(tmp) / "warm-up")  # imports and first-use costs fall on no figure
        local = Path(tmp) / "local"
        local_rate, local_q = _writes(local), _day_query(local)
        local_amp = _amplification(local, _rchar)
        for what, server_name, start, store, missing in STORES:
            server = start()
            if server is None:
                figures.append(Figure(f"{what} writes", float("nan"), "events/s", "measured", None, note=missing))
                continue
            proc, endpoint = server
            try:
                url, point = store(endpoint)
                remote = Settings.from_env({}, data_dir=url).data_dir
                remote_rate, remote_q = _writes(remote), _day_query(remote)
                proxy = _CountingProxy(endpoint)
                point(proxy.endpoint)
                try:
                    remote_amp = _amplification(remote, functools.partial(getattr, proxy, "served"))
                finally:
                    proxy.close()
            finally:
                _stop(proc)
            figures += [
                Figure(f"{what} writes per writer ({server_name})", remote_rate, "events/s", "measured", None,
                       "local disk", local_rate, remote_rate / local_rate,
                       note=f"{FLUSHES} flushes of {EVENTS_PER_FLUSH} events, one PUT each"),
                Figure(f"{what} one-day query of 7 days ({server_name})", remote_q * 1000, "ms", "measured", None,
                       "local disk", local_q * 1000, remote_q / local_q,
                       note="connect + count/avg of one day, pyarrow dataset scan"),
                Figure(f"{what} one-day read amplification ({server_name})", remote_amp, "x", "measured", None,
                       "local disk", local_amp, remote_amp / local_amp,
                       note="bytes read by connect + one-day query / bytes of that day's needed column chunks"),
            ]
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure)
