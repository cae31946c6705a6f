"""The connection pool's errors, free of httpx and httpcore (neither is imported where only the
pool is needed: the gateway's upstream leg).

The async pool's socket (:mod:`.netio`) and the pool itself (:mod:`.conns_async`) raise these; the
clients' httpx transport raises the httpx exception each stands for (:func:`.pool_async.httpx_errors`),
the gateway names them as Hive's errors (:meth:`hive_gateway.upstream.Upstream.translate`). The
classes mirror httpx's: a timeout or a network error, by phase.
"""

from __future__ import annotations

__all__ = ["ConnectError", "ConnectTimeout", "NetworkError", "PoolTimeout", "ReadError", "ReadTimeout",
           "TransportError", "TransportTimeout", "WriteError", "WriteTimeout"]


class TransportError(Exception):
    """An exchange with the server failed below HTTP."""


class TransportTimeout(TransportError):
    """Something did not happen in time."""


class NetworkError(TransportError):
    """The network failed."""


class ConnectTimeout(TransportTimeout):
    """No connection within the connect timeout."""


class ReadTimeout(TransportTimeout):
    """Nothing arrived within the read timeout."""


class WriteTimeout(TransportTimeout):
    """The server took nothing within the write timeout."""


class PoolTimeout(TransportTimeout):
    """No connection of the pool became free within the pool timeout."""


class ConnectError(NetworkError):
    """No connection (refused, unreachable, DNS, TLS)."""


class ReadError(NetworkError):
    """A read failed (the connection broke)."""


class WriteError(NetworkError):
    """A write failed (the connection is closed)."""
