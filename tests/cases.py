"""Canonical sample events, one place (STYLE.md #12): every test that needs events builds them here.

* :func:`sample_events` (one of every type) and :func:`api_call`;
* a realistic history: :func:`day_events` (``n`` requests of one day: retries, streams, usage with
  cost), written by :func:`write_events` / :func:`write_history` (days from :data:`DAY0`);
* ranking table rows: :func:`ranking_row` and :func:`write_rankings`.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hive_core.store.events import (
    AbAssignment,
    ApiCall,
    BudgetAlert,
    BudgetOverride,
    Event,
    QualityRating,
    Selection,
    StreamOutcome,
    Usage,
)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def sample_events(request_id: str = "req-1", ts: datetime = T0) -> list[Event]:
    """One event of every registered type, all for one request."""
    return [
        ApiCall(ts=ts, request_id=request_id, attempt=1, model="openai/gpt-4o", status="rate_limited",
                http_status=429, latency_ms=120.5),
        ApiCall(ts=ts + timedelta(seconds=1), request_id=request_id, attempt=2, model="openai/gpt-4o",
                served_model="openai/gpt-4o", provider="OpenAI", status="ok", http_status=200,
                latency_ms=850.0, ttft_ms=210.0, streamed=True, generation_id="gen-1-abc", tags=["team:search"]),
        Usage(ts=ts + timedelta(seconds=2), request_id=request_id, model="openai/gpt-4o", provider="OpenAI",
              prompt_tokens=12, completion_tokens=40, cost_usd=0.00043, cost_source="billed"),
        StreamOutcome(ts=ts + timedelta(seconds=2), request_id=request_id, model="openai/gpt-4o",
                      outcome="completed", chunks=14, completion_tokens=40, ttft_ms=210.0,
                      duration_ms=850.0, tokens_per_s=62.5, finish_reason="stop"),
        Selection(ts=ts, request_id=request_id, strategy="balanced", complexity="simple", candidates=120,
                  model="openai/gpt-4o", fallbacks=["anthropic/claude-haiku-4.5"], top_models=["openai/gpt-4o"],
                  top_scores=[0.91], estimated_cost_usd=0.0005, reason="best balanced score"),
        QualityRating(ts=ts + timedelta(minutes=1), request_id=request_id, score=0.9, model="openai/gpt-4o"),
        BudgetAlert(ts=ts, request_id="budget", scope="global", period="daily", period_start="2026-11-20",
                    kind="threshold", threshold_pct=80, limit_usd=10, spent_usd=8.2, message="80% of daily budget"),
        BudgetOverride(ts=ts, request_id=request_id, scope="global", period="daily", limit_usd=10,
                       spent_usd=10.5, reserved_usd=0.2),
        AbAssignment(ts=ts, request_id=request_id, experiment="exp1", variant="a", model="openai/gpt-4o"),
    ]


def api_call(i: int, ts: datetime = T0, **fields: object) -> ApiCall:
    """A successful api_call with request id ``r<i>``."""
    values: dict[str, object] = {"ts": ts, "request_id": f"r{i}", "attempt": 1, "model": "openai/gpt-4o",
                                 "status": "ok", "latency_ms": 100.0 + i}
    values.update(fields)
    return ApiCall(**values)  # type: ignore[arg-type]


#: the first day of :func:`write_history`
DAY0 = date(2026, 11, 10)
#: model -> (provider, median latency ms, transient failure rate) of :func:`day_events`
DAY_MODELS = {"acme/fast": ("Acme", 300.0, 0.02), "acme/slow": ("Acme", 2500.0, 0.10), "zeta/mid": (None, 900.0, 0.05)}
_TASKS = ("chat", "code-generation", None)


def day_events(day: date, n: int = 60, seed: int = 0,
               models: dict[str, tuple[str | None, float, float]] = DAY_MODELS) -> list[Event]:
    """``n`` requests on ``day``: retries after transient errors, streamed and plain calls, usage with cost."""
    rng = random.Random(f"{day}-{seed}")
    events: list[Event] = []
    for i in range(n):
        model = rng.choice(sorted(models))
        provider, median, fail = models[model]
        rid = f"{day}-{seed}-{i}"
        ts = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 86_000))
        task, rtype, streamed = rng.choice(_TASKS), rng.choice(("chat", "test")), rng.random() < 0.5
        attempt = 1
        while rng.random() < fail and attempt < 3:
            events.append(ApiCall(ts=ts, request_id=rid, attempt=attempt, model=model, provider=provider,
                                  request_type=rtype, task_category=task, status="rate_limited", http_status=429,
                                  latency_ms=rng.uniform(50, 200), streamed=streamed))
            attempt += 1
        latency = rng.lognormvariate(0, 0.6) * median
        ttft = latency * rng.uniform(0.1, 0.4) if streamed else None
        events.append(ApiCall(ts=ts + timedelta(seconds=1), request_id=rid, attempt=attempt, model=model,
                              served_model=model, provider=provider, request_type=rtype, task_category=task,
                              status="ok", http_status=200, latency_ms=latency, ttft_ms=ttft, streamed=streamed))
        events.append(Usage(ts=ts + timedelta(seconds=2), request_id=rid, model=model, provider=provider,
                            request_type=rtype, task_category=task, prompt_tokens=rng.randint(10, 900),
                            completion_tokens=rng.randint(1, 500), cost_usd=round(rng.uniform(1e-5, 0.02), 9),
                            cost_source=rng.choice(("billed", "billed", "estimated"))))
        if streamed:
            events.append(StreamOutcome(ts=ts + timedelta(seconds=2), request_id=rid, model=model, request_type=rtype,
                                        task_category=task, outcome=rng.choice(("completed", "completed", "cancelled")),
                                        ttft_ms=ttft, duration_ms=latency, tokens_per_s=rng.uniform(20, 200)))
    return events


def write_events(data_dir: Path, events: list[Event], writer: str = "t0") -> None:
    """``events`` into the store of ``data_dir`` through the real event log."""
    from ingest import EventLog

    with EventLog(data_dir, writer=writer) as log:
        log.record_many(events)


def write_history(data_dir: Path, days: int = 3, n: int = 60) -> list[date]:
    """:func:`day_events` of ``days`` days from :data:`DAY0` into the store; the days."""
    dates = [DAY0 + timedelta(days=i) for i in range(days)]
    write_events(data_dir, [e for d in dates for e in day_events(d, n)])
    return dates


#: when :func:`ranking_row`'s rows were computed
RANKED_AT = datetime(2026, 6, 20, tzinfo=UTC)


def ranking_row(model: str, *, task: str = "*", samples: int = 200, successes: int | None = None,
                window_days: int = 7, **extra: Any) -> dict[str, Any]:
    """One ranking table row with sensible defaults (what the rankings job writes)."""
    from hive_core.selection.rankings import STRATEGIES, Metrics, Rankings, strategy_scores, wilson_lower

    successes = samples if successes is None else successes
    row: dict[str, Any] = {
        "task_category": task, "model": model, "window_days": window_days, "samples": samples,
        "successes": successes, "success_rate": successes / samples if samples else 0.0,
        "success_lower": wilson_lower(successes, samples), "latency_p95_ms": 3000.0, "ttft_p50_ms": 500.0,
        "cost_per_request_usd": 0.001, "quality": None, "quality_samples": 0, "computed_at": RANKED_AT,
    }
    row.update(extra)
    scores = strategy_scores(Rankings.from_rows([row]).row(task, model) or Metrics())
    for name in STRATEGIES:
        row.setdefault(f"score_{name.replace('-', '_')}", scores[name])
    return row


def write_rankings(data_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as ``<data>/rankings/rankings.parquet`` with the contract's schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hive_core.selection.rankings import ranking_schema
    from hive_core.store.datadir import DataDir

    path = DataDir(data_dir).rankings_file
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=ranking_schema()), path)
    return path
