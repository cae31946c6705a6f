"""A realistic simulated history, written through the real event classes and writer.

``simulate(data_dir, days=N, calls_per_day=M, seed=S)`` writes N days ending today (UTC): exactly M
logical requests per day, each with its own ``request_id``. Per request: a model drawn from the
:data:`jobs.simulate.world.MODELS` table (list prices as published by OpenRouter, June 2026), a request type, a task
category, long-tailed per-model latency and TTFT (lognormal), transient provider errors with
retries, permanent errors, fallbacks to a second model, streamed calls (some cancelled, some cut),
token counts and the cost those prices give. Events: one ``api_call`` per attempt, one ``usage``
per billed request, one ``stream_outcome`` per streamed request.

Generation is vectorised (numpy) and each (type, day) is handed to ``EventLog.write_table`` as one
Arrow table validated against the event class's schema, so 10M events take seconds, not minutes.
The same seed gives the same events (ids included) for the same ``end`` date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.clock import system_clock
from jobs.simulate.world import APPS, ERROR_SCALE, MAX_ATTEMPTS, MODELS, PERMANENT, REQUEST_TYPES, TASKS

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["SimulationReport", "simulate"]

@dataclass
class SimulationReport:
    days: int
    requests: int
    events: dict[str, int]

    @property
    def total_events(self) -> int:
        return sum(self.events.values())


def simulate(
    data_dir: Path, *, days: int, calls_per_day: int, seed: int = 0, end: date | None = None,
    now: datetime | None = None,
) -> SimulationReport:
    """Write ``days`` days ending ``end`` (default today, UTC) of ``calls_per_day`` requests each;
    nothing is dated after ``now`` (default the system clock)."""
    import numpy as np

    from ingest import EventLog

    if days < 1 or calls_per_day < 1:
        raise ValueError("days and calls-per-day must be at least 1")
    now = now or system_clock()
    end = end or now.date()
    counts = {"api_call": 0, "usage": 0, "stream_outcome": 0}
    with EventLog(data_dir) as log:  # a fresh writer id: simulating into a store twice never clashes
        for offset in range(days):
            day = end - timedelta(days=days - 1 - offset)
            rng = np.random.default_rng([seed, day.toordinal()])
            for type_name, table in _simulate_day(rng, day, calls_per_day, now).items():
                counts[type_name] += log.write_table(type_name, table)
    return SimulationReport(days=days, requests=days * calls_per_day, events=counts)


def _choice(rng: np.random.Generator, options: tuple[tuple[Any, ...], ...], n: int) -> np.ndarray:
    import numpy as np

    weights = np.array([o[-1] for o in options], dtype=float)
    return rng.choice(len(options), size=n, p=weights / weights.sum())


def _simulate_day(rng: np.random.Generator, day: date, n: int, now: datetime) -> dict[str, pa.Table]:
    import numpy as np

    from jobs.simulate.columns import build_tables

    day_start_us = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000
    span_us = 86_400_000_000
    now_us = int(now.timestamp() * 1_000_000)
    if day_start_us + span_us > now_us:  # today: nothing from the future
        span_us = max(now_us - day_start_us - 120_000_000, 1_000_000)
    start = np.sort(day_start_us + rng.integers(0, span_us, size=n))

    popularity = 1.0 / np.arange(1, len(MODELS) + 1) ** 0.8
    model = rng.permutation(len(MODELS))[rng.choice(len(MODELS), size=n, p=popularity / popularity.sum())]
    err = np.array([m[6] for m in MODELS])[model] * ERROR_SCALE
    # Attempts on the primary: geometric failures, capped; a capped run may fall back to another model.
    failures = np.minimum(rng.geometric(1 - err) - 1, MAX_ATTEMPTS)
    # Outages are correlated: during one, every retry fails too, which is what fallbacks are for.
    failures = np.where(rng.random(n) < err / 2, MAX_ATTEMPTS, failures)
    exhausted = failures >= MAX_ATTEMPTS
    permanent = rng.random(n) < sum(p[2] for p in PERMANENT)
    failures = np.where(permanent, 0, failures)
    fallback = exhausted & ~permanent & (rng.random(n) < 0.7)
    fb_model = (model + 1 + rng.integers(0, len(MODELS) - 1, size=n)) % len(MODELS)
    fb_ok = fallback & (rng.random(n) >= np.array([m[6] for m in MODELS])[fb_model] * ERROR_SCALE)
    success = (~exhausted & ~permanent) | fb_ok
    final_model = np.where(fallback, fb_model, model)
    streamed = rng.random(n) < 0.6

    req = {
        "start": start, "model": model, "failures": failures, "permanent": permanent,
        "fallback": fallback, "fb_model": fb_model, "fb_ok": fb_ok, "success": success,
        "final_model": final_model, "streamed": streamed,
        "request_type": _choice(rng, REQUEST_TYPES, n), "task": _choice(rng, TASKS, n),
        "app": _choice(rng, APPS, n),
    }
    return build_tables(rng, req, n)
