"""What the client hands back: token usage as OpenRouter reported it, a chat result, tool calls,
stream progress.

Plain frozen dataclasses, no I/O: the sync and async clients, the tracker and the CLI share them.
A streamed answer and a non-streamed one of the same content give equal results (timing aside):
the stream's deltas are assembled into the very fields the whole answer carries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

__all__ = ["ChatResult", "CostSource", "Outcome", "Progress", "ToolCall", "ToolCallDelta", "UsageInfo"]

CostSource = Literal["billed", "estimated", "unknown"]
Outcome = Literal["completed", "cancelled", "errored", "timeout", "truncated"]


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True, slots=True)
class UsageInfo:
    """A ``usage`` object (either era). ``cost`` is OpenRouter's billed USD, ``None`` when absent
    (old non-streaming answers, or counts we made ourselves from a cut stream)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost: Decimal | None = None
    is_byok: bool = False
    #: False when the counts are ours (chunks counted) rather than the server's ``usage``
    reported: bool = True

    @classmethod
    def from_openrouter(cls, usage: Mapping[str, Any] | None) -> UsageInfo:
        """Parse a ``usage`` object; missing or null detail objects count as zero."""
        if not usage:
            return cls(reported=False)
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        cost: Decimal | None = None
        raw_cost = usage.get("cost")
        if isinstance(raw_cost, int | float | str) and not isinstance(raw_cost, bool):
            try:
                # via str: the JSON number's shortest repr, not the binary float's expansion
                cost = Decimal(str(raw_cost))
            except InvalidOperation:
                cost = None
        return cls(
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
            cached_tokens=_int(prompt_details.get("cached_tokens")),
            cache_write_tokens=_int(prompt_details.get("cache_write_tokens")),
            cost=cost,
            is_byok=usage.get("is_byok") is True,
        )


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
