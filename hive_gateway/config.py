"""How a gateway runs: its settings (the data directory, the OpenRouter key), where it listens, how
many workers, whether it checks keys, how long a shutdown waits for streams and a write for a
client that reads nothing; :func:`listen`, its one listening socket, which no other process can
share; and :func:`check`, what ``hive gateway --check`` prints: every problem that would stop it or
its requests, one line each.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hive_core.errors import ConfigError, HiveError
from hive_gateway.sending import DEFAULT_SEND_TIMEOUT_S

if TYPE_CHECKING:
    from hive_core.catalog.catalog import Catalog
    from hive_core.settings import Settings
    from hive_core.store.datadir import DataDir

__all__ = ["DEFAULT_DRAIN_S", "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_SEND_TIMEOUT_S", "GatewayConfig", "ListenError",
           "check", "listen"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
#: how long SIGTERM lets in-flight requests finish before they are cancelled (and recorded so)
DEFAULT_DRAIN_S = 30.0
#: connections the kernel queues for the workers' accepts
BACKLOG = 1024


@dataclass(frozen=True)
class GatewayConfig:
    """One gateway's configuration (``settings`` carries the data directory and the OpenRouter key)."""

    settings: Settings
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    #: accept requests without a virtual key (local development only; said loudly at start-up)
    no_auth: bool = False
    drain_s: float = DEFAULT_DRAIN_S
    #: how long a write may make no progress before its client is cut off (hive_gateway.sending)
    send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S

    @property
    def datadir(self) -> DataDir:
        """The data directory's paths."""
        return self.settings.datadir


class ListenError(ConfigError):
    """The gateway cannot listen at its ``--host``/``--port``: taken, or not an address of this machine."""


def listen(host: str, port: int) -> socket.socket:
    """The gateway's one listening socket (``port`` 0: any free one), which its workers inherit.

    Bound without ``SO_REUSEPORT``, so nothing else can listen on the port as long as it is open: a
    second gateway, or any program, is refused rather than handed part of the connections (with
    ``SO_REUSEPORT`` the kernel splits them between every process of the same user that asks).
    ``SO_REUSEADDR`` only lets a restart bind while the last run's connections linger in TIME_WAIT;
    Linux never lets two sockets listen on one port with it. Raises :class:`ListenError`, whose
    line names the address."""
    address = f"{host}:{port}"
    try:
        family, kind, proto, _, where = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                           flags=socket.AI_PASSIVE)[0]
    except OSError as exc:  # socket.gaierror: a name that does not resolve
        raise ListenError(f"cannot listen on {address} ({exc.strerror or exc}): check --host") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(BACKLOG)  # in the try too: two binds may both pass, the second listen fails
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"{address} is already in use (another gateway or program listens there): "
                              "stop it or choose another --port") from exc
        raise ListenError(f"cannot listen on {address} ({exc.strerror or exc}): "
                          "choose another --host or --port") from exc
    return sock


def _listen_problem(config: GatewayConfig) -> str | None:
    """Whether the gateway could listen now (the port is let go at once)."""
    try:
        listen(config.host, config.port).close()
    except ListenError as error:
        return str(error)
    return None


def _writable(datadir: DataDir) -> str | None:
    import os
    import tempfile

    try:
        datadir.gateway_state.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=datadir.gateway_state, prefix=".check-")
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        return f"data directory {datadir.root} is not writable ({exc.strerror or exc}): fix it or set HIVE_DATA_DIR"
    return None


def check(config: GatewayConfig, *, catalog: bool = True, listening: bool | None = None,
          upstream: bool | None = None) -> list[str]:
    """Every configuration problem, one line each (empty: ready to serve). ``catalog=False`` leaves
    out the catalog, the one a gateway can start without (models pass through unresolved and
    unpriced; ``hive/auto`` is refused until ``hive models sync``). ``listening``: whether the host and
    port can be listened on; by default as ``catalog``: a start leaves it out, since it binds them
    itself and says a taken port in its own line (:func:`listen`). ``upstream``: whether OpenRouter
    answers and accepts the key (``GET /key``, as ``hive key``); by default as ``catalog``: a start
    does not wait on the network, and its requests would say the same."""
    listening = catalog if listening is None else listening
    upstream = catalog if upstream is None else upstream
    problems: list[str] = []
    settings = config.settings
    datadir = config.datadir
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        problems.append("aiohttp is not installed: pip install hive[gateway]")
    try:
        settings.require_api_key()
    except HiveError as error:
        problems.append(str(error))
    else:
        from hive_gateway.upstream import request_heads

        try:
            request_heads(settings)
        except HiveError as error:
            problems.append(str(error))
        else:
            if upstream:
                problem = _key_problem(settings)
                if problem:
                    problems.append(problem)
    if settings.as_of is not None:
        problems.append("HIVE_AS_OF is set: requests are recorded at the real time; unset it")
    problem = _writable(datadir)
    if problem:
        problems.append(problem)
    models = None
    if catalog:
        from hive_core.catalog.catalog import load_catalog

        try:
            models = load_catalog(datadir.catalog_file, cache_dir=datadir.cache)
        except HiveError as error:
            problems.append(f"{error} (hive/auto and cost estimates need it)")
    problems.extend(_fallbacks_problems(config, models))
    from hive_core.budget.config import load_budget_config

    try:
        load_budget_config(datadir.config_file)
    except HiveError as error:
        problems.append(str(error))
    if not config.no_auth:
        problems.extend(_keys_problems(config))
    if listening:
        problem = _listen_problem(config)
        if problem:
            problems.append(problem)
    if config.workers < 1:
        problems.append(f"--workers must be at least 1, not {config.workers}")
    if not config.send_timeout_s > 0:
        problems.append(f"--send-timeout must be more than 0 seconds, not {config.send_timeout_s}")
    return problems


def _key_problem(settings: Settings) -> str | None:
    """Whether OpenRouter answers ``GET /key`` for the gateway's key: a key it refuses would make
    every request a 502, an OpenRouter it cannot reach every request a failure."""
    from hive_core.errors import AuthError, OpenRouterError
    from hive_core.openrouter.client import OpenRouterClient
    from hive_core.openrouter.retry import RetryPolicy
    from hive_core.openrouter.tracking import NullSink

    try:
        with OpenRouterClient(settings, sink=NullSink(), policy=RetryPolicy(max_attempts=1)) as client:
            client.key_info()
    except AuthError:
        return "OpenRouter refuses OPENROUTER_API_KEY (invalid, disabled or deleted): set a valid key (`hive key` checks one)"
    except OpenRouterError as error:  # the library's message: key-free, but it may name the URL
        from hive_gateway.errors import without_userinfo

        return f"OpenRouter did not answer GET /key ({without_userinfo(str(error))})"
    return None


def _fallbacks_problems(config: GatewayConfig, models: Catalog | None) -> list[str]:
    """The fallbacks ``hive fallbacks set`` named must read, and name models the catalog lists
    (a request leaves out one it does not)."""
    from hive_core.errors import UnknownModel
    from hive_core.fallbacks import load_fallbacks

    try:
        chains = load_fallbacks(config.datadir.config_file)
    except HiveError as error:
        return [str(error)]
    if models is None:
        return []
    problems = []
    for model, chain in chains.items():
        for fallback in chain:
            try:
                models.get(fallback)
            except UnknownModel:
                problems.append(f"the fallbacks of {model} name {fallback}, which the catalog does not list "
                                f"(requests leave it out): `hive fallbacks set {model} ...` again")
    return problems


def _keys_problems(config: GatewayConfig) -> list[str]:
    """The virtual keys' store must open and answer (a key that does not exist is fine)."""
    import sqlite3

    from hive_core.keys import KeyStore

    try:
        with KeyStore(config.datadir) as store:
            store.list()
    except (HiveError, OSError, sqlite3.Error) as error:
        return [f"the virtual keys cannot be read ({error}): see `hive keys list`"]
    return []
