"""The one retry policy: capped exponential backoff with full jitter, ``Retry-After``, bounded tries.

Only :class:`~hive_core.errors.TransientError` is retried; everything else surfaces at once. A
request gets at most ``max_attempts`` HTTP attempts and never starts one that could not begin
before ``total_s`` has passed since the first. The wait before attempt ``n + 1`` is
``uniform(0, min(max_wait_s, base_s * 2 ** (n - 1)))`` ("full jitter", AWS architecture blog), or
the server's ``Retry-After`` when it gave one (capped by ``max_wait_s``).

The decision lives in :class:`RetryState`; :func:`call_with_retries` and
:func:`acall_with_retries` are the same loop for sync and async code, differing only in how they
sleep. Streams use it for the part before the first token only (see ``aio.py``): once tokens
were delivered, a failure is surfaced, never re-sent (it would bill and print twice).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from hive_core.errors import ApiError, OpenRouterError, TransientError

if TYPE_CHECKING:
    from hive_core.settings import Settings

__all__ = ["RetryPolicy", "RetryState", "acall_with_retries", "call_with_retries"]

T = TypeVar("T")

DEFAULT_BASE_S = 0.5


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. ``sleep``/``clock``/``rng`` are injectable for tests."""

    max_attempts: int = 4
    base_s: float = DEFAULT_BASE_S
    max_wait_s: float = 30.0
    total_s: float = 120.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> RetryPolicy:
        """The policy the settings describe (``HIVE_MAX_ATTEMPTS``, ``HIVE_RETRY_*``)."""
        values: dict[str, object] = {
            "max_attempts": settings.max_attempts,
            "max_wait_s": settings.retry_max_wait_s,
            "total_s": settings.retry_total_s,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def start(self) -> RetryState:
        """The state of one request's attempts, starting now."""
        return RetryState(self)


class RetryState:
    """Attempts of one request: call :meth:`backoff` with each failure to get the wait, or the error."""

    __slots__ = ("attempt", "policy", "started")

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.started = policy.clock()
        #: number of the attempt about to run / running (1-based)
        self.attempt = 1

    def backoff(self, error: OpenRouterError) -> float:
        """Seconds to wait before the next attempt; raises ``error`` when it must not be retried."""
        policy = self.policy
        if not isinstance(error, TransientError) or self.attempt >= policy.max_attempts:
            raise error
        retry_after = error.retry_after if isinstance(error, ApiError) else None
        if retry_after is not None:
            wait = min(retry_after, policy.max_wait_s)
        else:
            ceiling = min(policy.max_wait_s, policy.base_s * 2 ** (self.attempt - 1))
            wait = policy.rng.uniform(0, ceiling)
        if policy.clock() + wait - self.started > policy.total_s:
            raise error
        self.attempt += 1
        return wait


def call_with_retries(attempt: Callable[[int], T], policy: RetryPolicy) -> T:
    """Run ``attempt(n)`` for n = 1, 2, ... until it returns or :meth:`RetryState.backoff` gives up."""
    state = policy.start()
    while True:
        try:
            return attempt(state.attempt)
        except OpenRouterError as error:
            policy.sleep(state.backoff(error))


async def acall_with_retries(attempt: Callable[[int], Awaitable[T]], policy: RetryPolicy) -> T:
    """The async twin of :func:`call_with_retries` (same decisions, ``await`` sleep)."""
    state = policy.start()
    while True:
        try:
            return await attempt(state.attempt)
        except OpenRouterError as error:
            await policy.async_sleep(state.backoff(error))
