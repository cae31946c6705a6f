"""Failures of a worker's own bookkeeping while it serves: one line each on stderr, for the operator.

    error: the budget ledger /data/state/ledger.sqlite failed (...): check the disk, or run
    `hive-jobs rebuild-ledger` (request 0197...)

(one line; wrapped here). A request that fails on a bug (the client is told "see its log") has its
line here too, the exception's type first. The budget ledger can fail after a request was answered or failed
upstream - a settlement that cannot be written. The request's events are recorded all the same (the
ledger can be rebuilt from them), its client hears only of its own request, and the operator reads
the error's own line here: never a traceback, never the gateway's OpenRouter key, nor the user and
password of a URL (an upstream proxy's, in an error from a catalog download). A failure that
repeats (a ledger down under load) is said once per :data:`QUIET_S` per message; the next line of
that message says how many were left unsaid meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from hive_core.errors import HiveError
from hive_core.openrouter.errors import scrub
from hive_gateway.errors import without_userinfo

__all__ = ["QUIET_S", "Trouble"]

#: seconds a message is not repeated for
QUIET_S = 10.0
#: distinct messages remembered; beyond, the memory starts over (a line too many, never unbounded)
REMEMBERED = 256


class Trouble:
    """Tells ``stream`` of a failure (:meth:`__call__`), each message at most once per :data:`QUIET_S`."""

    def __init__(self, stream: TextIO, secret: str | None, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.secret = secret
        self.monotonic = monotonic
        self._said: dict[str, tuple[float, int]] = {}  # message -> (when it was last said, repeats unsaid since)

    def __call__(self, error: BaseException, request_id: str | None = None) -> None:
        text = str(error) if isinstance(error, HiveError) else f"{type(error).__name__}: {error}"  # a bug's type says most
        message = without_userinfo(scrub(text, self.secret)).replace("\n", " ")
        now = self.monotonic()
        said = self._said.get(message)
        if said is not None and now - said[0] < QUIET_S:
            self._said[message] = (said[0], said[1] + 1)
            return
        more = f"; {said[1]} more like it since it was last said" if said is not None and said[1] else ""
        if len(self._said) >= REMEMBERED:
            self._said.clear()
        self._said[message] = (now, 0)
        where = f" (request {request_id})" if request_id else ""
        self.stream.write(f"error: {message}{where}{more}\n")
        self.stream.flush()
