"""HTTP error bodies of every era and httpx exceptions -> the typed errors of hive_core.errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from hive_core.errors import (
    CALLER_FAULT_STATUSES,
    AuthError,
    BadRequest,
    CallerFault,
    ConnectTimeout,
    InsufficientCredits,
    Moderated,
    NetworkError,
    NoProviderAvailable,
    NotFound,
    ProviderError,
    RateLimited,
    ReadTimeout,
    RequestTimeout,
    ServerError,
    TransientError,
    Unreachable,
)
from hive_core.openrouter.errors import api_error, parse_retry_after, scrub, translate_transport_error
from hive_core.store.events import CALL_STATUSES


def body(error: dict[str, object]) -> bytes:
    return json.dumps({"error": error, "user_id": "user_x"}).encode()


def test_real_429_recording_is_rate_limited(recordings_dir: Path) -> None:
    raw = (recordings_dir / "errors_raised-429.json").read_bytes()
    error = api_error(429, {"retry-after": "3"}, raw)
    assert isinstance(error, RateLimited) and isinstance(error, TransientError)
    assert error.provider == "Google" and error.retry_after == 3.0 and error.status_name == "rate_limited"
    assert "temporarily rate-limited upstream" in str(error)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequest), (401, AuthError), (402, InsufficientCredits), (403, Moderated), (404, NotFound),
     (408, RequestTimeout), (429, RateLimited), (500, ServerError), (502, ProviderError),
     (503, NoProviderAvailable), (524, ServerError), (529, ServerError), (413, BadRequest)],
)
def test_status_decides_the_class(status: int, cls: type[Exception]) -> None:
    error = api_error(status, {}, body({"code": status, "message": "m"}))
    assert type(error) is cls
    assert error.http_status == status


def test_newer_bodies_string_code_error_type_and_availability() -> None:
    error = api_error(503, {}, body({"code": "server_error", "message": "overloaded",
                                     "metadata": {"error_type": "provider_overloaded"}}))
    assert isinstance(error, NoProviderAvailable) and error.metadata["error_type"] == "provider_overloaded"
    availability = {"code": "capacity_exhausted", "retryable": True, "retry_after": 7, "requested_models": ["m"]}
    error = api_error(429, {}, body({"http_status": 429, "error_type": "rate_limit_exceeded",
                                     "message": "busy", "availability": availability}))
    assert isinstance(error, RateLimited) and error.retry_after == 7.0
    assert error.metadata["availability"] == availability and error.metadata["error_type"] == "rate_limit_exceeded"


def test_body_level_error_in_a_200_uses_the_body_code() -> None:
    assert isinstance(api_error(200, {}, body({"code": 402, "message": "no credits"})), InsufficientCredits)


def test_non_json_body_keeps_a_short_message() -> None:
    error = api_error(502, {}, b"<html>Bad gateway</html>")
    assert isinstance(error, ProviderError) and "Bad gateway" in str(error)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(date, now=now.timestamp()) == pytest.approx(30.0)


def test_a_key_echoed_by_a_server_is_scrubbed() -> None:
    key = "sk-or-v1-" + "ab" * 32
    error = api_error(401, {}, body({"code": 401, "message": f"bad key {key}"}), secret=key)
    assert key not in str(error) and key not in error.message
    assert scrub("nothing", key) == "nothing" and scrub("x", "") == "x"


def _raise(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("exc", "cls", "transient"),
    [(httpx.ConnectTimeout("slow"), ConnectTimeout, False), (httpx.ConnectError("refused"), Unreachable, False),
     (httpx.ReadTimeout("quiet"), ReadTimeout, True), (httpx.RemoteProtocolError("cut"), NetworkError, True)],
)
def test_httpx_exceptions_are_translated(exc: Exception, cls: type[Exception], transient: bool) -> None:
    key = "sk-or-v1-secret-in-header"
    with httpx.Client(transport=_raise(exc)) as client, pytest.raises(httpx.HTTPError) as info:
        client.get("https://openrouter.test/api/v1/key?x=1", headers={"Authorization": f"Bearer {key}"})
    error = translate_transport_error(info.value, secret=key)
    assert type(error) is cls and isinstance(error, TransientError) is transient
    # no connection at all is the network's or the base URL's fault; a broken one may be the model's
    assert isinstance(error, CallerFault) is not transient
    assert "openrouter.test/api/v1/key" in str(error) and key not in str(error)


KEY = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"


@pytest.mark.parametrize("text", [
    KEY,
    f"Illegal header value b'Bearer {KEY[:30]}\\n{KEY[30:]}'",   # a bytes repr: the newline escaped
    f"header {KEY[:30]}\\x01{KEY[30:]}",                       # a control character, escaped
    f"url ?key={KEY[:30]}%0A{KEY[30:]}",                          # URL-quoted
    f"json {json.dumps(KEY[:30] + chr(10) + KEY[30:])}",
    f"cut short: {KEY[:12]}",                                      # a prefix of 12 characters
    f"truncated {KEY[:40]}... and more",
    f"the tail {KEY[-20:]}",                                        # 16+ characters from anywhere
])
def test_escaped_and_partial_keys_are_scrubbed(text: str) -> None:
    secret = KEY[:30] + "\n" + KEY[30:]  # what such a text was made from (escaped forms)
    for key in (KEY, secret):
        clean = scrub(text, key)
        assert "(redacted)" in clean
        for piece in range(0, len(KEY) - 11):  # no 12-character piece of the key survives
            assert KEY[piece:piece + 12] not in clean, (text, clean)


def test_scrub_leaves_other_text_alone() -> None:
    assert scrub("sk-or-v1-other and 0123", KEY) == "sk-or-v1-other and 0123"
    assert scrub("", KEY) == "" and scrub("text", None) == "text"


def test_every_status_has_one_attribution() -> None:
    """Batch jobs attribute by status: a status must never mean a caller fault for one class and a
    model fault for another."""
    from hive_core import errors

    by_status: dict[str, set[bool]] = {}
    for cls in errors._classes(errors.HiveError):
        by_status.setdefault(cls.status_name, set()).add(issubclass(cls, CallerFault))
    assert all(len(kinds) == 1 for kinds in by_status.values()), by_status
    caller = {"auth", "bad_request", "budget_exceeded", "cancelled", "insufficient_credits", "moderated", "not_found",
              "unreachable"}
    assert caller == CALLER_FAULT_STATUSES
    assert set(CALLER_FAULT_STATUSES) - set(CALL_STATUSES) <= {"unreachable"}  # asked of events.py
