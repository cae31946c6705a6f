"""A real S3-compatible server for the tests: moto's server mode on 127.0.0.1, in its own process.

``s3_server`` (one per session) starts ``moto_server`` on a free port and sets nothing globally;
``s3_env`` points a test's AWS environment at it (fake credentials: moto accepts any), and
``s3_root`` hands out an empty ``s3://<bucket>/data`` data directory in a fresh bucket. When
``moto[server]`` is missing (a test extra) the tests that need it fail with the install line: they
never skip.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.processes import free_port, listening, set_environ

__all__ = ["AnswerDroppingProxy", "S3Server", "s3_env", "s3_root", "s3_server"]

#: credentials the tests use: moto accepts any, and no test may find them in an output
ACCESS_KEY, SECRET_KEY = "AKIAHIVETESTKEY00001", "hive-test-secret-never-printed"


@dataclass(frozen=True)
class S3Server:
    """A running moto server: its endpoint, and the environment that reaches it."""

    endpoint: str

    def environ(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}

    def create_bucket(self) -> str:
        """A new, empty bucket (unique name)."""
        import botocore.session

        name = f"hive-{uuid.uuid4().hex[:12]}"
        client = botocore.session.Session().create_client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
        client.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """``moto_server`` on a free port of 127.0.0.1 for the session (killed at its end)."""
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.fail("moto[server] is not installed: `make test` installs the test extras (pip install -e '.[test]')")
    port = free_port()
    proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with listening(proc, port, "moto_server", timeout_s=30):
        yield S3Server(f"http://127.0.0.1:{port}")


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's AWS environment, pointed at the session's server (also inherited by subprocesses)."""
    return set_environ(monkeypatch, "AWS_", s3_server.environ())


@pytest.fixture
def s3_root(s3_server: S3Server, s3_env: dict[str, str]) -> str:
    """An empty data directory ``s3://<new bucket>/data``."""
    return f"s3://{s3_server.create_bucket()}/data"


class AnswerDroppingProxy:
    """A TCP proxy in front of an object store's server that, once, lets a matching request (its
    ``method``, and a head, lower-cased, in which the regular expression ``pattern`` is found) reach
    the server and then closes the client's connection instead of relaying the answer: the request
    landed, the client never heard, and the client retries it (a lost answer, as a timeout or a cut
    connection make it). ``dropped`` counts the answers it withheld."""

    def __init__(self, upstream: str, method: bytes, pattern: bytes) -> None:
        import re
        import socket
        import threading

        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.method, self.pattern = method, re.compile(pattern)
        self.dropped = 0
        self._armed = True
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            drop = threading.Event()
            threading.Thread(target=self._requests, args=(client, server, drop), daemon=True).start()
            threading.Thread(target=self._answers, args=(server, client, drop), daemon=True).start()

    def _requests(self, client: Any, server: Any, drop: Any) -> None:
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                head = chunk.split(b"\r\n\r\n", 1)[0].lower()
                with self._lock:
                    if self._armed and chunk.startswith(self.method + b" ") and self.pattern.search(head):
                        self._armed = False
                        drop.set()  # before the request is sent: its answer cannot come earlier
                server.sendall(chunk)

    def _answers(self, server: Any, client: Any, drop: Any) -> None:
        with contextlib.suppress(OSError):
            while chunk := server.recv(65536):
                # an interim "100 Continue" (botocore asks for it on PUT) lets the body go: relayed
                if drop.is_set() and not chunk.startswith(b"HTTP/1.1 100 "):
                    self.dropped += 1
                    break
                client.sendall(chunk)
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.shutdown(2)
            sock.close()

    def close(self) -> None:
        self._server.close()
