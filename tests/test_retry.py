"""The one retry policy: backoff with full jitter and a cap, Retry-After, attempt and time bounds."""

from __future__ import annotations

import asyncio
import random

import pytest

from hive_core.errors import (
    AuthError,
    MidStreamError,
    NetworkError,
    OpenRouterError,
    RateLimited,
    ServerError,
)
from hive_core.openrouter.retry import RetryPolicy, acall_with_retries, call_with_retries
from hive_core.settings import Settings


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def policy(fake: FakeTime, **kwargs: object) -> RetryPolicy:
    values: dict[str, object] = {"max_attempts": 4, "base_s": 1.0, "max_wait_s": 30.0, "total_s": 120.0}
    values.update(kwargs)
    return RetryPolicy(clock=fake.clock, sleep=fake.sleep, async_sleep=fake.async_sleep,
                       rng=random.Random(5), **values)  # type: ignore[arg-type]


def failing(errors: list[OpenRouterError], result: str = "ok") -> tuple[list[int], object]:
    seen: list[int] = []

    def attempt(n: int) -> str:
        seen.append(n)
        if errors:
            raise errors.pop(0)
        return result

    return seen, attempt


def test_transient_errors_are_retried_with_capped_full_jitter() -> None:
    fake = FakeTime()
    seen, attempt = failing([ServerError("x"), NetworkError("y"), ServerError("z")])
    assert call_with_retries(attempt, policy(fake, max_wait_s=1.5)) == "ok"  # type: ignore[arg-type]
    assert seen == [1, 2, 3, 4]
    ceilings = [1.0, 1.5, 1.5]  # base * 2**(n-1), capped at max_wait_s
    assert all(0 <= s <= c for s, c in zip(fake.sleeps, ceilings, strict=True))


def test_permanent_errors_are_not_retried() -> None:
    for error in (AuthError("bad key"), MidStreamError("cut", code=502)):
        fake = FakeTime()
        seen, attempt = failing([error])
        with pytest.raises(type(error)):
            call_with_retries(attempt, policy(fake))  # type: ignore[arg-type]
        assert seen == [1] and fake.sleeps == []


def test_retry_after_is_honoured_and_capped() -> None:
    fake = FakeTime()
    _seen, attempt = failing([RateLimited("slow", retry_after=7.0), RateLimited("slow", retry_after=99.0)])
    assert call_with_retries(attempt, policy(fake, max_wait_s=20.0)) == "ok"  # type: ignore[arg-type]
    assert fake.sleeps == [7.0, 20.0]


def test_attempts_are_bounded() -> None:
    fake = FakeTime()
    seen, attempt = failing([ServerError(str(i)) for i in range(10)])
    with pytest.raises(ServerError, match="3"):
        call_with_retries(attempt, policy(fake, max_attempts=4))  # type: ignore[arg-type]
    assert seen == [1, 2, 3, 4] and len(fake.sleeps) == 3


def test_total_time_is_bounded() -> None:
    fake = FakeTime()
    seen, attempt = failing([RateLimited("x", retry_after=50.0) for _ in range(5)])
    with pytest.raises(RateLimited):
        call_with_retries(attempt, policy(fake, max_wait_s=60.0, total_s=120.0, max_attempts=10))  # type: ignore[arg-type]
    assert seen == [1, 2, 3] and fake.sleeps == [50.0, 50.0]  # a third wait would end past 120 s


def test_async_twin_makes_the_same_decisions() -> None:
    fake = FakeTime()
    errors: list[OpenRouterError] = [RateLimited("x", retry_after=2.0), ServerError("y")]

    async def attempt(n: int) -> int:
        if errors:
            raise errors.pop(0)
        return n

    assert asyncio.run(acall_with_retries(attempt, policy(fake))) == 3
    assert fake.sleeps[0] == 2.0 and len(fake.sleeps) == 2


def test_policy_from_settings() -> None:
    settings = Settings(max_attempts=2, retry_max_wait_s=3.0, retry_total_s=9.0)
    p = RetryPolicy.from_settings(settings)
    assert (p.max_attempts, p.max_wait_s, p.total_s) == (2, 3.0, 9.0)
