"""Each package's public surface is curated (``__all__``) and pinned here: changing it is a decision."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "hive": ["AskOptions", "AskResult", "BudgetExceeded", "HiveError", "SelectionRequest", "Session", "Store"],
    "hive_core": ["__version__"],
    "ingest": ["EventLog", "SpillImport", "compact", "import_spills", "pending_spills", "verify", "write_atomic"],
    "queries": ["Store", "connect", "load", "named_table", "names", "request_model", "run_sql"],
    "hive_core.openrouter": [
        "AsyncOpenRouterClient", "AsyncStreamHandle", "ChatParams", "ChatResult", "CostEstimate", "NullSink",
        "OpenRouterClient", "Progress", "RetryPolicy", "SSEDecoder", "ServerSentEvent", "StreamHandle", "ToolCall",
        "ToolCallDelta", "Tracker", "UsageInfo", "resolve_cost",
    ],
    "hive_core.budget": [
        "Breach", "Budget", "BudgetConfig", "CostBound", "DEFAULT_MAX_TOKENS", "DEFAULT_STALE_AFTER_S",
        "DEFAULT_THRESHOLDS_PCT", "Forecast", "Ledger", "Limit", "Reservation", "SettlingSink",
        "budget_config_from_json", "estimate_prompt_tokens", "forecast", "load_budget_config", "max_cost",
        "parse_scope", "refusal_message", "request_scopes", "save_budget_config", "settling_usage",
    ],
    "hive_emulator": ["DEFAULT_TEST_KEY", "Emulator", "FAULT_KINDS", "FaultRule", "parse_fault"],
    "hive_cli.hive": ["cli", "main"],
    "hive_cli.hive_jobs": ["cli", "main"],
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_surface_is_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC[package])
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ names {name}, which it does not define"
