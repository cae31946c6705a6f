"""A real S3-compatible server for the tests: moto's server mode on 127.0.0.1, in its own process.

``s3_server`` (one per session) starts ``moto_server`` on a free port and sets nothing globally;
``s3_env`` points a test's AWS environment at it (fake credentials: moto accepts any), and
``s3_root`` hands out an empty ``s3://<bucket>/data`` data directory in a fresh bucket. When
``moto[server]`` is missing (a test extra) the tests that need it fail with the install line: they
never skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.plugins.processes import free_port, listening, set_environ

__all__ = ["S3Server", "s3_env", "s3_root", "s3_server"]

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
