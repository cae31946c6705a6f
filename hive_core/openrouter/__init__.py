"""The OpenRouter client: sync and async, streaming, retries, cost and event recording.

    from hive_core.openrouter import OpenRouterClient
    with OpenRouterClient(settings, sink=event_log, prices=catalog) as client:
        result = client.chat("Say hi", model="openai/gpt-4o-mini", max_tokens=20)

Modules, one concept each: ``sse`` (SSE parser), ``chunks`` (chunk interpreter), ``errors``
(HTTP answers and httpx exceptions -> :mod:`hive_core.errors`), ``retry`` (the one retry policy),
``params`` (the request surface, typed), ``protocol`` (request/answer formats), ``core`` and ``stream`` (what sync and async share),
``aio`` (the I/O, written once; ``client``, the sync twin, is generated from it by
``.ci/unasync.py``), ``cost`` (billed / estimated / unknown), ``tracking`` (events).

This package imports httpx when the clients are imported: import it inside the functions of
CLI commands, never at CLI module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hive_core.openrouter.aio import AsyncOpenRouterClient, AsyncStreamHandle
    from hive_core.openrouter.client import OpenRouterClient, StreamHandle
    from hive_core.openrouter.cost import CostEstimate, resolve_cost
    from hive_core.openrouter.params import ChatParams
    from hive_core.openrouter.results import ChatResult, Progress, ToolCall, ToolCallDelta, UsageInfo
    from hive_core.openrouter.retry import RetryPolicy
    from hive_core.openrouter.sse import ServerSentEvent, SSEDecoder
    from hive_core.openrouter.tracking import NullSink, Tracker

#: public name -> the module that defines it: imported on first use (PEP 562), so a program that
#: needs only the sans-I/O parts (the gateway: protocol, core, stream) never imports httpx
_LAZY = {
    "AsyncOpenRouterClient": "hive_core.openrouter.aio",
    "AsyncStreamHandle": "hive_core.openrouter.aio",
    "OpenRouterClient": "hive_core.openrouter.client",
    "StreamHandle": "hive_core.openrouter.client",
    "CostEstimate": "hive_core.openrouter.cost",
    "resolve_cost": "hive_core.openrouter.cost",
    "ChatParams": "hive_core.openrouter.params",
    "ChatResult": "hive_core.openrouter.results",
    "Progress": "hive_core.openrouter.results",
    "ToolCall": "hive_core.openrouter.results",
    "ToolCallDelta": "hive_core.openrouter.results",
    "UsageInfo": "hive_core.openrouter.results",
    "RetryPolicy": "hive_core.openrouter.retry",
    "ServerSentEvent": "hive_core.openrouter.sse",
    "SSEDecoder": "hive_core.openrouter.sse",
    "NullSink": "hive_core.openrouter.tracking",
    "Tracker": "hive_core.openrouter.tracking",
}

__all__ = [
    "AsyncOpenRouterClient",
    "AsyncStreamHandle",
    "ChatParams",
    "ChatResult",
    "CostEstimate",
    "NullSink",
    "OpenRouterClient",
    "Progress",
    "RetryPolicy",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamHandle",
    "ToolCall",
    "ToolCallDelta",
    "Tracker",
    "UsageInfo",
    "resolve_cost",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
