"""A real Google Cloud Storage server for the tests: Google's storage-testbench on 127.0.0.1, in its own process.

The testbench is the server Google's client libraries (google-cloud-cpp, under pyarrow's
``GcsFileSystem``, among them) are tested against; it checks generation preconditions on uploads,
deletions and reads, which the lock and the compaction journal depend on. It is not on PyPI: its
code is vendored under ``tests/gcs_testbench`` (see the README there) and runs from its own venv,
``.venv/gcs-testbench``, which ``make test`` builds from PyPI with the testbench's pinned
dependencies (grpcio, protobuf, flask, gunicorn). When that venv is missing the tests that need it
fail with that line: they never skip.

``gcs_server`` (one per session) serves the testbench's JSON API in memory under gunicorn on a free
port and sets nothing globally; ``gs_env`` points a test's Google environment at it
(``STORAGE_EMULATOR_HOST``, which Google's clients read, and no credentials), and ``gs_root`` hands
out an empty ``gs://<bucket>/data`` data directory in a fresh bucket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.plugins.env import REPO
from tests.plugins.processes import free_port, listening, set_environ

__all__ = ["GcsServer", "gcs_server", "gs_env", "gs_root"]

TESTBENCH = REPO / "tests" / "gcs_testbench"
VENV = REPO / ".venv" / "gcs-testbench"


@dataclass(frozen=True)
class GcsServer:
    """A running testbench: its endpoint, and the environment that reaches it."""

    endpoint: str

    def environ(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def create_bucket(self) -> str:
        """A new, empty bucket (unique name)."""
        name = f"hive-{uuid.uuid4().hex[:12]}"
        created = httpx.post(f"{self.endpoint}/storage/v1/b", params={"project": "hive-tests"}, json={"name": name},
                             timeout=30)
        created.raise_for_status()
        return name


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    """The testbench on a free port of 127.0.0.1 for the session (its process group killed at its end)."""
    gunicorn = VENV / "bin" / "gunicorn"
    if not gunicorn.exists():
        pytest.fail("Google's storage-testbench has no venv: `make test` builds .venv/gcs-testbench "
                    "(python3 -m venv .venv/gcs-testbench && .venv/gcs-testbench/bin/pip install -r "
                    "tests/gcs_testbench/requirements.txt)")
    port = free_port()
    log = tmp_path_factory.mktemp("gcs-testbench") / "testbench.log"
    # one worker: the testbench keeps its objects in that process's memory; threads serve requests at once
    with log.open("wb") as sink:
        proc = subprocess.Popen([str(gunicorn), f"--bind=127.0.0.1:{port}", "--workers=1", "--worker-class=gthread",
                                 "--threads=16", "--graceful-timeout=1", "testbench:run()"],
                                cwd=TESTBENCH, stdout=sink, stderr=sink, start_new_session=True,
                                env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        with listening(proc, port, "storage-testbench", timeout_s=60, log=log):
            yield GcsServer(f"http://127.0.0.1:{port}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # gunicorn's worker too


@pytest.fixture
def gs_env(gcs_server: GcsServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's Google environment, pointed at the session's testbench (inherited by subprocesses)."""
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    return set_environ(monkeypatch, "STORAGE_EMULATOR_", gcs_server.environ())


@pytest.fixture
def gs_root(gcs_server: GcsServer, gs_env: dict[str, str]) -> str:
    """An empty data directory ``gs://<new bucket>/data``."""
    return f"gs://{gcs_server.create_bucket()}/data"
