"""HTTP error bodies of every era and httpx exceptions -> the typed errors of hive_core.errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from hive_core.errors import (
    AuthError,
    BadRequest,
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
)
from hive_core.openrouter.errors import api_error, parse_retry_after, scrub, translate_transport_error


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
    ("exc", "cls"),
    [(httpx.ConnectTimeout("slow"), ConnectTimeout), (httpx.ReadTimeout("quiet"), ReadTimeout),
     (httpx.ConnectError("refused"), NetworkError), (httpx.RemoteProtocolError("cut"), NetworkError)],
)
def test_httpx_exceptions_are_translated(exc: Exception, cls: type[Exception]) -> None:
    key = "sk-or-v1-secret-in-header"
    with httpx.Client(transport=_raise(exc)) as client, pytest.raises(httpx.HTTPError) as info:
        client.get("https://openrouter.test/api/v1/key?x=1", headers={"Authorization": f"Bearer {key}"})
    error = translate_transport_error(info.value, secret=key)
    assert type(error) is cls and isinstance(error, TransientError)
    assert "openrouter.test/api/v1/key" in str(error) and key not in str(error)
