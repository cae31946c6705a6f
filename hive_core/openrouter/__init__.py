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

from hive_core.openrouter.aio import AsyncOpenRouterClient, AsyncStreamHandle
from hive_core.openrouter.client import OpenRouterClient, StreamHandle
from hive_core.openrouter.cost import CostEstimate, resolve_cost
from hive_core.openrouter.params import ChatParams
from hive_core.openrouter.results import ChatResult, Progress, ToolCall, ToolCallDelta, UsageInfo
from hive_core.openrouter.retry import RetryPolicy
from hive_core.openrouter.sse import ServerSentEvent, SSEDecoder
from hive_core.openrouter.tracking import NullSink, Tracker

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
