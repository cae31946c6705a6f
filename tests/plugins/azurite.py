"""A real Azure Blob Storage server for the tests: Azurite (Microsoft's emulator) on 127.0.0.1, in its own process.

``azurite`` (one per session) starts Azurite's blob service, in memory, on a free port and sets
nothing globally; ``az_env`` points a test's Azure environment at it (the emulator's documented
development account, as a connection string), and ``az_root`` hands out an empty
``az://<container>/data`` data directory in a fresh container. Azurite is a Node.js package that
``make test`` installs under ``.venv/azurite``; when it is missing the tests that need it fail with
that line: they never skip.
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

__all__ = ["ACCOUNT", "KEY", "Azurite", "az_env", "az_root", "azurite"]

#: Azurite's well-known development account and key (public, in Microsoft's documentation): no test
#: may find the key in an output
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service: its endpoint, and the environment that reaches it."""

    endpoint: str

    def connection_string(self, key: str = KEY) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
                f"BlobEndpoint={self.endpoint}/{ACCOUNT};")

    def environ(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string()}

    def create_container(self) -> str:
        """A new, empty container (unique name)."""
        from azure.storage.blob import BlobServiceClient

        name = f"hive-{uuid.uuid4().hex[:12]}"
        BlobServiceClient.from_connection_string(self.connection_string()).create_container(name)
        return name


def _binary() -> str | None:
    local = Path(sys.executable).parent.parent / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    return str(local) if local.exists() else shutil.which("azurite-blob")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service on a free port of 127.0.0.1 for the session (killed at its end)."""
    binary = _binary()
    if binary is None or shutil.which("node") is None:
        pytest.fail("Azurite is not installed: `make test` installs it (npm install --prefix .venv/azurite azurite)")
    port = free_port()
    workspace = tmp_path_factory.mktemp("azurite")
    log = workspace / "azurite.log"
    # --skipApiVersionCheck: pyarrow's C++ SDK and the Python SDK send newer x-ms-version values than
    # Azurite 3.35 (the last release for Node.js 20) lists. No --loose: a header it does not implement
    # is refused, never silently ignored (the conditional headers are what these tests prove).
    with log.open("wb") as sink:
        proc = subprocess.Popen([binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
                                 "--silent", "--disableTelemetry", "--skipApiVersionCheck"],
                                cwd=workspace, stdout=sink, stderr=sink)
    with listening(proc, port, "Azurite", timeout_s=60, log=log):
        yield Azurite(f"http://127.0.0.1:{port}")


@pytest.fixture
def az_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's Azure environment, pointed at the session's Azurite (also inherited by subprocesses)."""
    return set_environ(monkeypatch, "AZURE_", azurite.environ())


@pytest.fixture
def az_root(azurite: Azurite, az_env: dict[str, str]) -> str:
    """An empty data directory ``az://<new container>/data``."""
    return f"az://{azurite.create_container()}/data"
