"""Every failure a client of the gateway can see, as OpenAI's error shape with the right HTTP status.

    {"error": {"message": "...", "type": "invalid_request_error", "code": "model_not_found"}}

The refusals the gateway makes itself (:class:`Refused` and its subclasses: a malformed body, a
missing or revoked key, a model the key may not use, a key's requests per minute) and Hive's own
errors (a budget refusal, an unknown model, OpenRouter's answers after their retries) map here, in
one table, :func:`describe`. The status codes are the ones OpenAI's and OpenRouter's clients already
handle:

* a budget refusal is **402** (``insufficient_quota``), what OpenRouter answers for a key over its
  credit limit: no SDK retries a 402 (the openai SDK retries 408, 409, 429 and 5xx), and a retry
  could not fit until the period resets or the limit is raised; a 429 would be retried at once;
* an unknown model is **404** ``model_not_found`` (OpenAI's), with the catalog's "did you mean";
* OpenRouter's own errors keep their status, except a 401 from OpenRouter: that is the gateway's
  key, not the client's, so the client gets a **502** saying to tell the gateway's operator;
* a budget ledger (or the keys' counters) that stayed locked past its timeout, or a PostgreSQL
  ledger that cannot be reached, is **503** ``gateway_busy`` with ``Retry-After``: the request was
  not sent, and a retry may find it free.

aiohttp's own refusals get the same shape: a path the gateway does not serve is **404**
``unknown_url`` (OpenAI's answer to one), a method a path does not take is **405** with ``Allow``.

A stream that already started (HTTP 200 sent) ends with an SSE ``error`` event in OpenRouter's
mid-stream shape (:func:`sse_error`), then ``data: [DONE]``. Every message is scrubbed of the
gateway's OpenRouter key, and of the user and password of any URL in it, before it leaves.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aiohttp import web

from hive_core.errors import (
    ApiError,
    AuthError,
    BudgetExceeded,
    CatalogMissing,
    ConfigError,
    HiveError,
    LedgerUnreachable,
    LockHeld,
    MidStreamError,
    NoCandidates,
    OpenRouterError,
    ReadTimeout,
    RequestTimeout,
    UnknownModel,
)
from hive_core.openrouter.errors import scrub

__all__ = [
    "InvalidRequest",
    "ModelNotAllowed",
    "Problem",
    "Refused",
    "TooManyRequests",
    "Unauthorized",
    "describe",
    "error_body",
    "sse_error",
    "without_userinfo",
]


class Refused(HiveError):
    """A request the gateway refuses itself; the class carries its HTTP status, type and code."""

    http_status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidRequest(Refused):
    """The body is not a chat request (not JSON, no messages, a field of the wrong type)."""


class Unauthorized(Refused):
    """No key, an unknown one, or a revoked one."""

    http_status = 401
    code = "invalid_api_key"


class ModelNotAllowed(Refused):
    """The virtual key is limited to other models."""

    http_status = 403
    error_type = "permission_error"
    code = "model_not_allowed"


class TooManyRequests(Refused):
    """The key's requests per minute are used up; ``retry_after`` says when the next one fits."""

    http_status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class Problem:
    """What the client is told: status, OpenAI error type and code, message, extra headers."""

    __slots__ = ("code", "error_type", "headers", "message", "status")

    def __init__(self, status: int, error_type: str, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.error_type = error_type
        self.code = code
        self.message = message
        self.headers = headers or {}


#: OpenRouter's statuses as OpenAI's error types
_UPSTREAM_TYPES = {400: "invalid_request_error", 402: "insufficient_quota", 403: "permission_error",
                   404: "not_found_error", 408: "timeout", 413: "invalid_request_error",
                   422: "invalid_request_error", 429: "rate_limit_error"}


#: the largest request body a worker reads (aiohttp's ``client_max_size``; its default is 1 MiB): 32 MiB
#: holds six 4 MB images as base64, with room for the conversation; larger media go by URL
MAX_BODY_BYTES = 32 * 1024**2


#: the user and password of a URL (``scheme://user:password@host``), removed from every message
_USERINFO = re.compile(r"(?<=://)[^\s/?#]*@")


def without_userinfo(text: str) -> str:
    """``text`` without the user and password of any URL in it (OPENROUTER_BASE_URL may be a
    proxy's with both)."""
    return _USERINFO.sub("", text) if "@" in text else text


def _clean(text: str, secret: str | None) -> str:
    """``text`` without the key (:func:`scrub`) and without any URL's user and password: a last
    guard, as the messages made here name no URL."""
    return without_userinfo(scrub(text, secret))


def _aiohttp_problem(error: web.HTTPException) -> Problem:
    """aiohttp's own refusal of a request (no route, a method the route does not take, a body over
    MAX_BODY_BYTES) as an OpenAI-shaped one with the same status."""
    if isinstance(error, web.HTTPRequestEntityTooLarge):  # aiohttp's, reading a body over MAX_BODY_BYTES
        return Problem(413, "invalid_request_error", "request_too_large",
                       f"the request body is larger than this gateway's limit of {MAX_BODY_BYTES // 1024**2} MiB: "
                       "send large images or files by URL")
    if isinstance(error, web.HTTPNotFound):
        return Problem(404, "invalid_request_error", "unknown_url",
                       "unknown URL: the gateway serves OpenAI's API under /v1 (POST /v1/chat/completions, "
                       "GET /v1/models): check that the client's base URL ends in /v1")
    if isinstance(error, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(error.allowed_methods))
        return Problem(405, "invalid_request_error", "method_not_allowed",
                       f"{error.method} is not allowed on this URL: use {allowed}",
                       {"Allow": error.headers.get("Allow", allowed)})
    if error.status >= 500:
        return Problem(error.status, "server_error", "internal_error", error.reason)
    return Problem(error.status, "invalid_request_error", "invalid_request", error.reason)


def describe(error: BaseException, secret: str | None) -> Problem:
    """The client's view of ``error`` (the table of the module docstring); free of the key and of
    any URL's user and password."""
    if isinstance(error, web.HTTPException):
        return _aiohttp_problem(error)
    message = _clean(str(error), secret)
    if isinstance(error, Refused):
        headers = {} if error.retry_after is None else {"Retry-After": str(max(1, round(error.retry_after)))}
        return Problem(error.http_status, error.error_type, error.code, message, headers)
    if isinstance(error, BudgetExceeded):
        return Problem(402, "insufficient_quota", "budget_exceeded", message)
    if isinstance(error, UnknownModel):
        return Problem(404, "invalid_request_error", "model_not_found", message)
    if isinstance(error, NoCandidates):
        return Problem(400, "invalid_request_error", "no_model_fits", message)
    if isinstance(error, LockHeld | LedgerUnreachable):  # the ledger or the keys' counters, for now
        return Problem(503, "server_error", "gateway_busy", message, {"Retry-After": "1"})
    if isinstance(error, CatalogMissing | ConfigError):
        return Problem(503, "server_error", "gateway_not_configured", message)
    if isinstance(error, AuthError):
        return Problem(502, "api_error", "upstream_auth",
                       "OpenRouter rejected the gateway's API key: tell the gateway's operator")
    if isinstance(error, ApiError):
        status = error.http_status
        headers = {} if error.retry_after is None else {"Retry-After": str(max(1, round(error.retry_after)))}
        return Problem(status, _UPSTREAM_TYPES.get(status, "api_error"), error.status_name, message, headers)
    if isinstance(error, ReadTimeout | RequestTimeout):
        return Problem(504, "timeout", "upstream_timeout", message)
    if isinstance(error, MidStreamError):
        return Problem(502, "api_error", "upstream_error", message)
    if isinstance(error, OpenRouterError):
        return Problem(502, "api_error", error.status_name, message)
    if isinstance(error, HiveError):
        return Problem(500, "server_error", error.status_name, message)
    return Problem(500, "server_error", "internal_error", "the gateway failed; see its log")


def error_body(problem: Problem) -> bytes:
    """The JSON body of an error answer."""
    return json.dumps({"error": {"message": problem.message, "type": problem.error_type,
                                 "code": problem.code}}).encode()


def sse_error(problem: Problem, *, model: str | None, generation_id: str | None) -> bytes:
    """The SSE events that end a started stream with ``problem``: OpenRouter's mid-stream error
    chunk (top-level ``error``, ``finish_reason: "error"``), then ``data: [DONE]``."""
    chunk: dict[str, Any] = {
        "id": generation_id or "", "object": "chat.completion.chunk", "created": int(time.time()),
        "model": model or "",
        "error": {"code": problem.status, "message": problem.message,
                  "metadata": {"error_type": problem.code}},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
