"""A real PostgreSQL server for the tests, started once per session on 127.0.0.1 and stopped at the end.

    pg_server        the session's server (initdb into a temp dir, ``postgres`` on a free port)
    pg_url           a fresh database on it for one test: ``postgresql://hive:<password>@127.0.0.1:<port>/<db>``

The server binaries come from Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``);
``make test`` installs it when missing. Without them the tests fail (never skip), saying so.
PostgreSQL refuses to run as root, and the suite runs as root in CI: the server then runs as the
package's ``postgres`` user (``nobody`` where there is none) through ``runuser``, in a directory
handed to that user. Password authentication (scram) is on even over TCP on 127.0.0.1, so a wrong
password is refused as it would be in production. ``fsync`` is off: a test server holds nothing worth
a power cut.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PgServer", "free_port", "pg_bindir", "start_pg"]

USER, PASSWORD = "hive", "pg-Secret-4711"
INSTALL_HINT = "run `make test` (it installs Debian's postgresql package) or `apt-get install -y postgresql`"


def pg_bindir() -> Path:
    """The newest installed server's ``bin`` directory (``/usr/lib/postgresql/15/bin`` on Debian 12)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    if not found:
        pytest.fail(f"PostgreSQL's server binaries are missing (/usr/lib/postgresql/*/bin/initdb): {INSTALL_HINT}",
                    pytrace=False)
    return found[-1].parent


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """One running server: where it listens and the superuser's login."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    runas: list[str]
    bindir: Path
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        """A ``postgresql://`` URL of ``database`` (``password``: another one than the real, to be refused)."""
        return f"postgresql://{self.user}:{password or self.password}@{self.host}:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction as the superuser (CREATE/DROP DATABASE)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(sql.encode())

    def stop(self) -> None:
        """Stop the server (fast shutdown) and wait for it."""
        if self.process.poll() is None:
            subprocess.run([*self.runas, str(self.bindir / "pg_ctl"), "stop", "-D", str(self.directory / "data"),
                            "-m", "fast", "-w"], capture_output=True, timeout=60)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _server_user() -> tuple[list[str], int | None, int | None]:
    """How to run the server: directly, or as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"], entry.pw_uid, entry.pw_gid
    pytest.fail("no unprivileged user (postgres or nobody) to run PostgreSQL as; the server refuses root",
                pytrace=False)


def start_pg(*, settings: tuple[str, ...] = ("fsync=off",)) -> PgServer:
    """initdb into a new temp dir and start ``postgres`` on a free port; waits until it accepts logins.
    ``settings``: extra ``-c name=value`` server settings. The caller stops it (:meth:`PgServer.stop`)."""
    import psycopg

    bindir = pg_bindir()
    runas, uid, gid = _server_user()
    directory = Path(tempfile.mkdtemp(prefix="hive-pg-"))
    (directory / "pwfile").write_text(PASSWORD + "\n")
    if uid is not None and gid is not None:
        for path in (directory, directory / "pwfile"):
            os.chown(path, uid, gid)
    data = directory / "data"
    done = subprocess.run([*runas, str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
                           f"--pwfile={directory / 'pwfile'}", "-E", "UTF8", "--locale=C.UTF-8"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        pytest.fail(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}", pytrace=False)
    port = free_port()
    options = [arg for setting in settings for arg in ("-c", setting)]
    with open(directory / "server.log", "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [*runas, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(directory),
             "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100", *options],
            stdout=subprocess.DEVNULL, stderr=log)
    server = PgServer(port, directory, process, runas, bindir)
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(server.url(), connect_timeout=2):
                return server
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                tail = (directory / "server.log").read_text(errors="replace")[-2000:]
                shutil.rmtree(directory, ignore_errors=True)
                pytest.fail(f"PostgreSQL did not start on port {port}: {tail}", pytrace=False)
            time.sleep(0.1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server, stopped and removed at the end."""
    server = start_pg()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A URL of a new, empty database of its own for one test; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_server.admin(f"CREATE DATABASE {name}")
    try:
        yield pg_server.url(name)
    finally:
        pg_server.admin(f"DROP DATABASE {name} WITH (FORCE)")
