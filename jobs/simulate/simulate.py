"""A realistic simulated history, written through the real event classes and writer.

``simulate(data_dir, days=N, calls_per_day=M, seed=S)`` writes N days ending today (UTC): exactly M
logical requests per day, each with its own ``request_id``. Per request: a model drawn from the
``MODELS`` table (list prices as published by OpenRouter, June 2026), a request type, a task
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

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["MODELS", "SimulationReport", "simulate"]

# (id, provider, prompt USD/token, completion USD/token, TTFT median ms, tokens/s, transient error rate)
MODELS: tuple[tuple[str, str, str, str, float, float, float], ...] = (
    ("openai/gpt-4o", "OpenAI", "0.0000025", "0.00001", 450, 90, 0.010),
    ("openai/gpt-4o-mini", "OpenAI", "0.00000015", "0.0000006", 350, 120, 0.008),
    ("openai/gpt-5", "OpenAI", "0.00000125", "0.00001", 1800, 60, 0.015),
    ("openai/gpt-5-mini", "OpenAI", "0.00000025", "0.000002", 900, 110, 0.010),
    ("openai/gpt-5-nano", "OpenAI", "0.00000005", "0.0000004", 600, 150, 0.010),
    ("openai/o3", "OpenAI", "0.000002", "0.000008", 4000, 70, 0.020),
    ("openai/o4-mini", "OpenAI", "0.0000011", "0.0000044", 2500, 100, 0.015),
    ("anthropic/claude-opus-4", "Anthropic", "0.000015", "0.000075", 1500, 40, 0.020),
    ("anthropic/claude-sonnet-4", "Anthropic", "0.000003", "0.000015", 900, 65, 0.015),
    ("anthropic/claude-sonnet-4.5", "Anthropic", "0.000003", "0.000015", 850, 70, 0.012),
    ("anthropic/claude-haiku-4.5", "Anthropic", "0.000001", "0.000005", 450, 130, 0.010),
    ("google/gemini-2.5-pro", "Google", "0.00000125", "0.00001", 2200, 85, 0.025),
    ("google/gemini-2.5-flash", "Google", "0.0000003", "0.0000025", 500, 180, 0.015),
    ("google/gemini-2.5-flash-lite", "Google", "0.0000001", "0.0000004", 300, 220, 0.012),
    ("meta-llama/llama-3.3-70b-instruct", "DeepInfra", "0.0000001", "0.00000032", 400, 80, 0.030),
    ("meta-llama/llama-3.1-8b-instruct", "DeepInfra", "0.00000002", "0.00000003", 250, 160, 0.030),
    ("meta-llama/llama-4-maverick", "Together", "0.00000015", "0.0000006", 450, 110, 0.030),
    ("mistralai/mistral-large", "Mistral", "0.000002", "0.000006", 550, 60, 0.020),
    ("mistralai/mistral-small-3.2-24b-instruct", "Mistral", "0.000000075", "0.0000002", 300, 140, 0.020),
    ("mistralai/codestral-2508", "Mistral", "0.0000003", "0.0000009", 350, 150, 0.015),
    ("deepseek/deepseek-chat-v3.1", "DeepSeek", "0.00000021", "0.00000079", 1200, 40, 0.050),
    ("deepseek/deepseek-r1", "DeepSeek", "0.0000007", "0.0000025", 5000, 35, 0.060),
    ("qwen/qwen3-235b-a22b", "Alibaba", "0.000000455", "0.00000182", 900, 60, 0.030),
    ("qwen/qwen3-coder", "Alibaba", "0.00000022", "0.0000018", 700, 90, 0.030),
    ("qwen/qwen-2.5-72b-instruct", "Together", "0.00000036", "0.0000004", 500, 70, 0.030),
    ("cohere/command-r-plus-08-2024", "Cohere", "0.0000025", "0.00001", 600, 55, 0.020),
    ("moonshotai/kimi-k2", "Moonshot AI", "0.00000057", "0.0000023", 800, 50, 0.040),
    ("z-ai/glm-4.5", "Z.AI", "0.0000006", "0.0000022", 900, 55, 0.040),
    ("amazon/nova-pro-v1", "Amazon Bedrock", "0.0000008", "0.0000032", 500, 90, 0.015),
    ("microsoft/phi-4", "DeepInfra", "0.00000007", "0.00000014", 300, 120, 0.030),
)
REASONING_MODELS = frozenset({"openai/gpt-5", "openai/o3", "openai/o4-mini", "deepseek/deepseek-r1"})
REQUEST_TYPES = (("chat", 0.82), ("consensus", 0.08), ("benchmark", 0.05), ("test", 0.05))
TASKS = (
    ("chat", 0.30), ("code-generation", 0.18), ("code-analysis", 0.10), ("summarization", 0.14),
    ("reasoning", 0.08), ("creative", 0.08), ("long-context", 0.06), ("vision", 0.06),
)
APPS = (("web", 0.6), ("api", 0.3), ("batch", 0.1))
TRANSIENT = (("rate_limited", 429, 0.5), ("server_error", 502, 0.35), ("timeout", 408, 0.15))
PERMANENT = (("bad_request", 400, 0.003), ("moderated", 403, 0.001), ("insufficient_credits", 402, 0.0005))
MAX_ATTEMPTS = 3
#: scales the per-model error rates above: most models healthy, the flakiest degraded
ERROR_SCALE = 0.5


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
