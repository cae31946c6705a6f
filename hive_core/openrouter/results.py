"""What the client hands back: token usage as OpenRouter reported it, a chat result, tool calls,
stream progress.

Plain frozen dataclasses, no I/O: the sync and async clients, the tracker and the CLI share them.
A streamed answer and a non-streamed one of the same content give equal results (timing aside):
the stream's deltas are assembled into the very fields the whole answer carries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from hive_core.openrouter.usage import UsageInfo  # re-exported: the parsing has its own module

__all__ = ["ChatResult", "CostSource", "Outcome", "Progress", "ToolCall", "ToolCallDelta", "UsageInfo"]

CostSource = Literal["billed", "estimated", "unknown"]
Outcome = Literal["completed", "cancelled", "errored", "timeout", "truncated"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for, in the OpenAI format.

    ``arguments`` is the JSON text exactly as the model wrote it (streamed fragments joined): a
    model can write invalid JSON, so parsing is the caller's step (:meth:`parse_arguments`).
    """

    id: str
    name: str
    arguments: str = ""
    type: str = "function"

    def as_dict(self) -> dict[str, Any]:
        """The call as an assistant message's ``tool_calls`` entry."""
        return {"id": self.id, "type": self.type, "function": {"name": self.name, "arguments": self.arguments}}

    def parse_arguments(self) -> Any:
        """The arguments decoded (``{}`` when the model sent none); ``ValueError`` when not JSON."""
        return json.loads(self.arguments) if self.arguments else {}

    def reply(self, content: str) -> dict[str, Any]:
        """The ``tool`` message that answers this call in the next turn."""
        return {"role": "tool", "tool_call_id": self.id, "content": content}


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """One streamed piece of a tool call, as ``on_tool_call`` receives it.

    ``position`` is the call's place in :attr:`ChatResult.tool_calls`; ``id`` and ``name`` are the
    call's (they arrive with its first delta); ``arguments`` is this delta's fragment only.
    """

    position: int
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a stream is: passed to ``on_progress`` after every text piece."""

    tokens: int
    tokens_per_s: float | None
    elapsed_s: float
    #: estimated percent of ``max_tokens`` generated so far; None without ``max_tokens``
    percent: float | None


@dataclass(frozen=True, slots=True)
class ChatResult:
    """One answered request (the attempt that succeeded, or the partial answer of a stream)."""

    text: str
    model: str
    finish_reason: str | None = None
    usage: UsageInfo = field(default_factory=UsageInfo)
    served_model: str | None = None
    provider: str | None = None
    generation_id: str | None = None
    reasoning: str = ""
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    attempts: int = 1
    fallback_index: int = 0
    cost_usd: float | None = None
    cost_source: CostSource = "unknown"
    #: how a stream ended; "completed" for non-streamed answers
    outcome: Outcome = "completed"
    request_id: str = ""
    streamed: bool = False
    #: the function calls asked for (``finish_reason == "tool_calls"``), in the model's order
    tool_calls: tuple[ToolCall, ...] = ()
    #: structured reasoning blocks (text, summary, encrypted); send them back with :attr:`message`
    reasoning_details: tuple[dict[str, Any], ...] = ()
    #: e.g. web-search ``url_citation`` annotations
    annotations: tuple[dict[str, Any], ...] = ()
    refusal: str | None = None
    #: ``{"content": [...]}`` token log-probabilities, when the request asked for ``logprobs``
    logprobs: dict[str, Any] | None = None
    native_finish_reason: str | None = None
    #: the answer document as served (a stream's chunks assembled into the same shape), for any
    #: field not lifted above; not part of equality
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation for the next turn.

        ``content`` is ``None`` for a tool-calls-only answer (as OpenAI writes it);
        ``reasoning_details`` go back unchanged, as OpenRouter asks for reasoning to continue.
        """
        message: dict[str, Any] = {"role": "assistant", "content": self.text or (None if self.tool_calls else "")}
        if self.tool_calls:
            message["tool_calls"] = [call.as_dict() for call in self.tool_calls]
        if self.reasoning_details:
            message["reasoning_details"] = [dict(detail) for detail in self.reasoning_details]
        return message
