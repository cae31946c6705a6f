"""The seam where HTTP answers and httpx exceptions become Hive's typed errors.

Not a new tree: everything maps onto :mod:`hive_core.errors`. Error bodies of every era are read:

* ``{"error": {"code": 429, "message": ..., "metadata": {"provider_name", "raw"}}}`` (2024-25)
* ``metadata.error_type`` / ``provider_code`` (newer), ``error.code`` as a string (one docs example)
* ``error.availability = {code, retryable, retry_after, ...}`` with ``http_status`` instead of
  ``code`` (2026)

The HTTP status decides the class (``error.code`` only when the status is missing or 200);
``Retry-After`` (seconds or an HTTP date) or ``availability.retry_after`` becomes ``retry_after``.
Messages never contain request headers, so the API key cannot leak through an error; as a last
guard :func:`scrub` removes a key that a server or a library might echo, also escaped or cut short.
"""

from __future__ import annotations

import email.utils
import json
import time
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from hive_core.errors import (
    ApiError,
    ConnectTimeout,
    MalformedResponse,
    NetworkError,
    OpenRouterError,
    ReadTimeout,
    Unreachable,
    api_error_for_status,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["api_error", "is_transport_error", "parse_retry_after", "scrub", "translate_transport_error"]

_REDACTED = "sk-or-…(redacted)"


#: a run of at least this many characters of the key, from its start, is taken for the key
PARTIAL_PREFIX = 12
#: a run of at least this many characters from anywhere in the key is taken for the key
PARTIAL_ANY = 16


def _forms(secret: str) -> set[str]:
    """How ``secret`` may appear in text: as is, escaped the ways Python, JSON and URLs escape."""
    return {
        secret,
        repr(secret)[1:-1],                    # str repr: a newline shows as \\n
        repr(secret.encode())[2:-1],           # bytes repr: "Illegal header value b'Bearer ...'"
        json.dumps(secret)[1:-1],
        urllib.parse.quote(secret, safe=""),   # %0A
        urllib.parse.quote_plus(secret),
    }


def scrub(text: str, secret: str | None) -> str:
    """``text`` with every trace of ``secret`` (the API key) replaced; a no-op for an empty secret.

    Caught: the key itself, its escaped forms (``\\n``, ``\\x01``, ``%0A``, repr- or JSON-quoted),
    and partial copies - a run of >= :data:`PARTIAL_PREFIX` characters of its start, or of >=
    :data:`PARTIAL_ANY` characters from anywhere in it (a key cut short, or split around a bad
    character). Each run found is extended as far as it keeps matching the key, then replaced.
    """
    if not secret or not text:
        return text
    spans: list[tuple[int, int]] = []
    for form in _forms(secret):
        starts = [(0, min(PARTIAL_PREFIX, len(form)))]
        starts += [(j, PARTIAL_ANY) for j in range(1, len(form) - PARTIAL_ANY + 1)]
        for j, width in starts:
            needle = form[j:j + width]
            at = text.find(needle)
            while at >= 0:
                end, k = at + width, j + width
                while end < len(text) and k < len(form) and text[end] == form[k]:
                    end, k = end + 1, k + 1
                spans.append((at, end))
                at = text.find(needle, at + 1)
    if not spans:
        return text
    out, last = [], 0
    for start, end in sorted(spans):
        if end <= last:
            continue
        if start >= last:
            out.append(text[last:start])
            out.append(_REDACTED)
        last = end
    out.append(text[last:])
    return "".join(out)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; ``None`` if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, dict) else {}


def _status_from_body(error: Mapping[str, Any]) -> int | None:
    for key in ("code", "http_status"):
        value = error.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
            return value
        if isinstance(value, str) and value.isdigit() and 400 <= int(value) <= 599:
            return int(value)
    availability = error.get("availability")
    if isinstance(availability, dict):
        # availability codes with their documented statuses
        return {"capacity_exhausted": 429, "temporarily_unavailable": 503, "region_restricted": 403,
                "model_not_found": 400, "wrong_endpoint": 400}.get(str(availability.get("code")), 404)
    return None


def api_error(
    status: int, headers: Mapping[str, str], body: bytes, *, secret: str | None = None
) -> ApiError:
    """The typed error for an HTTP error answer (status >= 400, or a body-level error in a 200)."""
    error = _error_object(body)
    if status < 400:
        status = _status_from_body(error) or 500
    cls = api_error_for_status(status)
    metadata = error.get("metadata") if isinstance(error.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    message = error.get("message")
    if not isinstance(message, str) or not message:
        text = body[:200].decode("utf-8", "replace").strip()
        message = text or f"HTTP {status}"
    raw = metadata.get("raw")
    if isinstance(raw, str) and raw and raw not in message:
        # the upstream text says what actually happened ("... is temporarily rate-limited upstream")
        message = f"{message}: {raw[:300]}"
    provider = metadata.get("provider_name")
    retry_after = parse_retry_after(headers.get("retry-after"))
    availability = error.get("availability")
    if isinstance(availability, dict):
        metadata = {**metadata, "availability": availability}
        if retry_after is None and isinstance(availability.get("retry_after"), int | float):
            retry_after = max(0.0, float(availability["retry_after"]))
    if isinstance(error.get("error_type"), str):
        metadata = {**metadata, "error_type": error["error_type"]}
    return cls(
        scrub(message, secret),
        http_status=status,
        retry_after=retry_after,
        provider=provider if isinstance(provider, str) else None,
        metadata=metadata,
    )


def is_transport_error(exc: BaseException) -> TypeGuard[httpx.HTTPError]:
    """Whether ``exc`` is an httpx exception, the kind :func:`translate_transport_error` translates."""
    import httpx

    return isinstance(exc, httpx.HTTPError)


def translate_transport_error(exc: Exception, *, secret: str | None = None) -> OpenRouterError:
    """An httpx exception as a Hive error (the caller raises it ``from exc``).

    No connection at all (refused, DNS, no route, connect timeout) is :class:`Unreachable` /
    :class:`ConnectTimeout`: the caller's network or base URL, not retried. A connection that broke
    or stalled once made is :class:`NetworkError` / :class:`ReadTimeout`, transient. The message
    names the failure and the URL, never the request's headers (and is scrubbed of the key).
    """
    import httpx

    url = ""
    try:
        request: httpx.Request | None = exc.request if isinstance(exc, httpx.RequestError) else None
    except RuntimeError:  # httpx raises when the exception carries no request
        request = None
    if request is not None:
        url = f" ({request.method} {request.url.copy_with(query=None)})"
    detail = scrub(str(exc) or type(exc).__name__, secret)
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectTimeout(f"timed out connecting to OpenRouter{url}: check the network and OPENROUTER_BASE_URL, "
                              "or raise HIVE_CONNECT_TIMEOUT")
    if isinstance(exc, httpx.ConnectError):
        return Unreachable(f"cannot reach OpenRouter{url}: {detail} (check the network and OPENROUTER_BASE_URL)")
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return ReadTimeout(f"OpenRouter stopped sending{url}: retry, or raise HIVE_READ_TIMEOUT")
    if isinstance(exc, httpx.RemoteProtocolError):
        return NetworkError(f"the connection to OpenRouter broke{url}: {detail}")
    if isinstance(exc, httpx.TransportError):
        return NetworkError(f"cannot reach OpenRouter{url}: {detail} (check the network and OPENROUTER_BASE_URL)")
    if isinstance(exc, httpx.DecodingError):
        return MalformedResponse(f"OpenRouter sent an undecodable body{url}: {detail}")
    return NetworkError(f"request to OpenRouter failed{url}: {detail}")
