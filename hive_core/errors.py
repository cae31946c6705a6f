"""Every error Hive raises on purpose, in one tree.

    HiveError                       base; ``str(err)`` is the one line a CLI prints
    ├── ConfigError                 bad settings, config file or flag value
    │   ├── MissingApiKey
    │   ├── CorruptConfig           config.json cannot be read or parsed (not the user's input: exit 1)
    │   └── LedgerAuthFailed        the PostgreSQL ledger refused the login
    ├── DataError                   what is on disk is not what it should be
    │   ├── CorruptEventFile        an unreadable / foreign file in the event store
    │   ├── SchemaMismatch          an event or file does not fit the event schema
    │   ├── CorruptLedger           the budget ledger is not a database (`hive-jobs rebuild-ledger`)
    │   ├── StorageError            a file of the data directory cannot be read or written (full, read-only)
    │   ├── EventsSpilled           events kept outside a data directory that could not take them
    │   ├── EventsLost              events that could be written nowhere
    │   ├── LedgerUnreachable       the PostgreSQL ledger cannot be reached (also a TransientError)
    │   └── CatalogMissing          no cached model catalog (run `hive models sync`)
    ├── CatalogError                a catalog document that cannot be parsed
    ├── UnknownModel                a model id the catalog does not know
    │   └── AmbiguousModel          a short name several catalog ids end in
    ├── NoCandidates                the selector's constraints removed every model
    ├── BudgetExceeded              a request does not fit the remaining budget   + CallerFault
    ├── LockHeld                    another job run holds the lock
    │   └── WouldWait               a lock held elsewhere, on a thread that may not wait (+ TransientError)
    ├── CircuitOpen                 a model's circuit breaker is open: it was skipped
    ├── QueryError                  SQL that DuckDB rejected (user SQL or a named query)
    └── OpenRouterError             anything that went wrong talking to OpenRouter
        ├── ApiError                an HTTP error answer; ``status`` on the class
        │   ├── BadRequest (400)        + CallerFault
        │   ├── AuthError (401)         + CallerFault
        │   ├── InsufficientCredits (402) + CallerFault
        │   ├── Moderated (403)         + CallerFault
        │   ├── NotFound (404)          + CallerFault
        │   ├── RequestTimeout (408)    + TransientError
        │   ├── RateLimited (429)       + TransientError
        │   ├── ServerError (5xx)       + TransientError
        │   │   ├── ProviderError (502)
        │   │   └── NoProviderAvailable (503)
        ├── Unreachable                + CallerFault (no connection: refused, DNS, no route)
        │   └── ConnectTimeout
        ├── NetworkError               + TransientError (the connection broke or stalled once made)
        │   └── ReadTimeout
        ├── MidStreamError             an SSE event with a top-level ``error`` after tokens
        ├── MalformedResponse          a body or chunk that is not the protocol
        ├── StreamTruncated            the stream ended before ``[DONE]``
        └── Cancelled                  the caller cancelled (handle or Ctrl-C)   + CallerFault

Retryable versus permanent is a type: ``isinstance(err, TransientError)``. Third-party exceptions
are translated where they enter (the HTTP transport, the event store, the query runner) with
``raise ... from exc``; nothing matches on message strings.

Whose fault a failure is, is a type too: a :class:`CallerFault` (a wrong key, base URL or request,
an unknown model id, no credits, a flagged prompt, a network outage, a cancel, a budget refusal)
says nothing about the model, so the circuit breaker, the rankings, ``hive models performance`` and
the suggestions leave it out; every other failure of a call is the model's (or its provider's).
Batch jobs only see the ``api_call.status`` an error was recorded with:
:data:`CALLER_FAULT_STATUSES` is the same attribution by status, derived from these classes.

This module imports nothing of ours and nothing heavy: every CLI imports it at start-up.
"""

from __future__ import annotations

__all__ = [
    "CALLER_FAULT_STATUSES",
    "ApiError",
    "AuthError",
    "BadRequest",
    "BudgetExceeded",
    "CallerFault",
    "Cancelled",
    "CatalogError",
    "CatalogMissing",
    "CircuitOpen",
    "ConfigError",
    "ConnectTimeout",
    "CorruptConfig",
    "CorruptEventFile",
    "CorruptLedger",
    "DataError",
    "EventsLost",
    "EventsSpilled",
    "HiveError",
    "InsufficientCredits",
    "LedgerAuthFailed",
    "LedgerUnreachable",
    "LockHeld",
    "MalformedResponse",
    "MidStreamError",
    "MissingApiKey",
    "Moderated",
    "NetworkError",
    "NoCandidates",
    "NoProviderAvailable",
    "NotFound",
    "OpenRouterError",
    "ProviderError",
    "QueryError",
    "RateLimited",
    "ReadTimeout",
    "RequestTimeout",
    "SchemaMismatch",
    "ServerError",
    "StorageError",
    "StreamTruncated",
    "TransientError",
    "UnknownModel",
    "Unreachable",
    "WouldWait",
    "api_error_for_status",
]


class HiveError(Exception):
    """Base of every error Hive raises on purpose. The message is one line that says what to do."""

    #: value recorded as ``api_call.status`` / shown in error mixes; subclasses override
    status_name: str = "error"


class TransientError:
    """Mixin: the failure may go away if the same request is sent again later."""


class CallerFault:
    """Mixin: the caller's fault (key, base URL, network, request, account, prompt), not the model's.

    Such a failure says nothing about the model's health: it never counts against the model in
    the circuit breaker, the rankings, performance or suggestions (it is still recorded).
    """


class ConfigError(HiveError):
    """A setting, config file or flag value is invalid."""


class CorruptConfig(ConfigError):
    """``config.json`` cannot be read or parsed: the file, not a value the user just typed, is wrong."""


class LedgerAuthFailed(ConfigError):
    """The ledger's PostgreSQL server refused the login (user or password)."""


class MissingApiKey(ConfigError):
    """No OpenRouter API key configured."""

    def __init__(self) -> None:
        super().__init__("no OpenRouter API key: set OPENROUTER_API_KEY (keys start with sk-or-v1-)")


class DataError(HiveError):
    """Files in the data directory are not what they should be."""


class CorruptEventFile(DataError):
    """An event file that cannot be read as Parquet, or does not hold Hive events."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CorruptLedger(DataError):
    """The ledger file is not a database SQLite can read (``hive-jobs rebuild-ledger`` replaces it)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        super().__init__(f"the budget ledger {path} is unreadable ({reason}): run `hive-jobs rebuild-ledger`, "
                         "which moves it aside and rebuilds the spend from the events")


class LedgerUnreachable(TransientError, DataError):
    """The ledger's PostgreSQL server cannot be reached (down, wrong host or port, network)."""


class StorageError(DataError):
    """A file of the data directory could not be read or written (disk full, read-only, corrupt).

    Raised by the CLI seam from the ``OSError`` / SQLite / DuckDB exception it translates.
    """

    def __init__(self, path: object, reason: str, advice: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" + (f" - {advice}" if advice else ""))


class EventsSpilled(DataError):
    """Events could not be written to the data directory and were kept in a spill directory."""

    def __init__(self, count: int, data_dir: object, reason: str, where: object) -> None:
        self.count, self.data_dir, self.reason, self.where = count, data_dir, reason, where
        super().__init__(
            f"{count} event(s) could not be written to {data_dir} ({reason}); kept in {where}; "
            "`hive-jobs import-spills` (or any hive-jobs command) takes them back once it is writable")


class EventsLost(DataError):
    """Events could be written neither to the data directory nor to any spill directory."""

    def __init__(self, count: int, data_dir: object, reason: str, spill_reason: str) -> None:
        self.count, self.data_dir = count, data_dir
        super().__init__(f"{count} event(s) could not be written to {data_dir} ({reason}) nor spilled "
                         f"({spill_reason}): they are lost; free disk space before sending more requests")


class SchemaMismatch(DataError):
    """An event or a file does not fit the event schema."""


class CatalogMissing(DataError):
    """The model catalog has not been synced into the data directory."""

    def __init__(self, path: object) -> None:
        super().__init__(f"no model catalog at {path}: run `hive models sync` first")


class CatalogError(HiveError):
    """A model catalog document that cannot be parsed."""


class UnknownModel(HiveError):
    """A model id that the catalog does not know."""

    def __init__(self, model: str, hint: str = "see `hive models list`") -> None:
        self.model = model
        super().__init__(f"unknown model {model!r}: {hint}")


class AmbiguousModel(UnknownModel):
    """A short model name that several catalog ids end in; the message lists them."""

    def __init__(self, model: str, candidates: list[str]) -> None:
        self.candidates = candidates
        HiveError.__init__(self, f"model {model!r} is ambiguous, give the full id: {', '.join(candidates)}")
        self.model = model


class NoCandidates(HiveError):
    """The selector's constraints removed every candidate model."""


class BudgetExceeded(CallerFault, HiveError):
    """The request's maximum cost does not fit the remaining budget; ``scopes`` are the limits that
    refused it (``model:X`` limits refuse only that model: a fallback chain moves on)."""

    status_name = "budget_exceeded"

    def __init__(self, message: str, *, scopes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.scopes = scopes

    @property
    def model_only(self) -> bool:
        """Only per-model limits refused: another model may still fit."""
        return bool(self.scopes) and all(scope.startswith("model:") for scope in self.scopes)


class LockHeld(HiveError):
    """Another run holds the job lock."""


class WouldWait(TransientError, LockHeld):
    """A write refused instead of waiting for a lock another thread or process holds, on a thread
    that must never wait (a gateway's event loop: :meth:`hive_core.store.sqlite_wal.WalDb.never_wait_on`)."""


class CircuitOpen(HiveError):
    """A model was skipped because its circuit breaker is open (it failed recently)."""

    status_name = "circuit_open"

    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(f"{model} is failing (circuit open): skipped; it is retried after a cool-down")


class QueryError(HiveError):
    """DuckDB rejected a query."""


class OpenRouterError(HiveError):
    """Something went wrong talking to OpenRouter."""


class ApiError(OpenRouterError):
    """OpenRouter answered with an HTTP error status.

    ``status`` is the class's HTTP status; ``http_status`` what this answer actually carried
    (``ServerError`` covers every 5xx). ``retry_after`` is seconds, when the server said.
    """

    status: int = 0
    advice: str = "see the message for details"

    # (a keyword-only signature: `duplicates` pairs it by shape with others; nothing is repeated)
    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        metadata: dict[str, object] | None = None,
    ) -> None:
        self.message = message
        self.http_status = http_status or self.status
        self.retry_after = retry_after
        self.provider = provider
        self.metadata = metadata or {}
        where = f" from {provider}" if provider else ""
        super().__init__(f"OpenRouter {self.http_status}{where}: {message} ({self.advice})")


# One class per HTTP status with its code, recorded name and advice (the status on the class): a table
# by nature, whose rows `duplicates` pairs by shape.
class BadRequest(CallerFault, ApiError):
    status = 400
    status_name = "bad_request"
    advice = "fix the request: check the model id (`hive models list`) and the parameters"


class AuthError(CallerFault, ApiError):
    status = 401
    status_name = "auth"
    advice = "check OPENROUTER_API_KEY; create a key at https://openrouter.ai/settings/keys"


class InsufficientCredits(CallerFault, ApiError):
    status = 402
    status_name = "insufficient_credits"
    advice = "add credits, or lower --max-tokens"


class Moderated(CallerFault, ApiError):
    status = 403
    status_name = "moderated"
    advice = "the input was flagged by moderation; rephrase it or pick another model"


class NotFound(CallerFault, ApiError):
    status = 404
    status_name = "not_found"
    advice = "no such endpoint or model: check OPENROUTER_BASE_URL (it ends in /api/v1) and the model id"


class RequestTimeout(TransientError, ApiError):
    status = 408
    status_name = "timeout"
    advice = "retry later or lower max tokens"


class RateLimited(TransientError, ApiError):
    status = 429
    status_name = "rate_limited"
    advice = "slow down or retry after the indicated delay"


class ServerError(TransientError, ApiError):
    status = 500
    status_name = "server_error"
    advice = "OpenRouter or the provider failed; retry later or use a fallback model"


class ProviderError(ServerError):
    status = 502
    advice = "the provider is down or answered badly; retry or use a fallback model"


class NoProviderAvailable(ServerError):
    status = 503
    advice = "no provider can serve this model now; retry later or use a fallback model"


class Unreachable(CallerFault, OpenRouterError):
    """No connection could be made: refused, DNS failure, no route, connect timeout.

    A network outage or a wrong ``OPENROUTER_BASE_URL``: every model would fail the same way, so it
    is neither retried nor a reason to try the next model, and it is not the model's fault.
    """

    status_name = "unreachable"


class ConnectTimeout(Unreachable):
    """Connecting took longer than ``HIVE_CONNECT_TIMEOUT``."""


class NetworkError(TransientError, OpenRouterError):
    """The connection broke or stalled after it was made, before a complete answer arrived."""

    status_name = "network"


class ReadTimeout(NetworkError):
    status_name = "timeout"


class MidStreamError(OpenRouterError):
    """An SSE event carried a top-level ``error`` after the stream started (HTTP status stays 200).

    Not transient: the stream already delivered tokens, and re-sending would bill twice.
    """

    status_name = "server_error"

    def __init__(self, message: str, *, code: int | str | None = None) -> None:
        self.code = code
        super().__init__(f"stream failed mid-way ({code}): {message}")


class MalformedResponse(OpenRouterError):
    """A body or SSE chunk that does not follow the protocol."""

    status_name = "malformed"


class StreamTruncated(OpenRouterError):
    """The stream ended before ``data: [DONE]``."""

    status_name = "network"


class Cancelled(CallerFault, OpenRouterError):
    """The caller cancelled the request."""

    status_name = "cancelled"


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        AuthError,
        InsufficientCredits,
        Moderated,
        NotFound,
        RequestTimeout,
        RateLimited,
        ServerError,
        ProviderError,
        NoProviderAvailable,
    )
}


def api_error_for_status(status: int) -> type[ApiError]:
    """The error class for an HTTP status (any other 5xx is ``ServerError``, other 4xx ``BadRequest``)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else BadRequest


def _classes(root: type[HiveError]) -> list[type[HiveError]]:
    return [root, *(c for sub in root.__subclasses__() for c in _classes(sub))]


#: ``api_call.status`` values that are the caller's fault (see :class:`CallerFault`): what batch
#: jobs leave out of a model's attempts. Derived from the classes, so the two cannot disagree.
CALLER_FAULT_STATUSES: frozenset[str] = frozenset(
    c.status_name for c in _classes(HiveError) if issubclass(c, CallerFault)
)
