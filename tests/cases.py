"""Canonical sample events, one place (STYLE.md #12): every test that needs events builds them here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
