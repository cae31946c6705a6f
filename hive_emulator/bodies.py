"""JSON bodies and SSE events shaped like OpenRouter's real ones (see ../shared recordings)."""

from __future__ import annotations

import hashlib
import json
import random
import string
from decimal import Decimal
from typing import Any

from hive_emulator.billing import cost_of
from hive_emulator.catalog import ModelInfo

__all__ = [
    "DONE",
    "KEEPALIVE",
    "ChunkFormat",
    "completion_body",
    "dumps",
    "error_body",
    "generation_id",
    "usage_json",
    "user_id_for",
]

KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
DONE = b"data: [DONE]\n\n"
_ALNUM = string.ascii_letters + string.digits


def dumps(value: Any) -> bytes:
    """Compact JSON, non-ASCII kept (as OpenRouter sends it)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def generation_id(seed: int, number: int, created: int) -> str:
    """``gen-<unix>-<20 letters/digits>``, the suffix drawn from the seed and request number."""
    rng = random.Random(f"{seed}|gen|{number}")
    return f"gen-{created}-{''.join(rng.choices(_ALNUM, k=20))}"


def user_id_for(key: str) -> str:
    """A stable ``user_...`` id for a key (never reveals the key)."""
    digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=20).digest(), "big")
    chars = []
    for _ in range(27):
        digest, rem = divmod(digest, 62)
        chars.append(_ALNUM[rem])
    return "user_" + "".join(chars)


def error_body(code: int, message: str, *, metadata: dict[str, Any] | None = None,
               user_id: str | None = None) -> bytes:
    """``{"error": {"code", "message"[, "metadata"]}[, "user_id"]}``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if metadata is not None:
        error["metadata"] = metadata
    body: dict[str, Any] = {"error": error}
    if user_id is not None:
        body["user_id"] = user_id
    return dumps(body)


def usage_json(model: ModelInfo, prompt_tokens: int, completion_tokens: int,
               reasoning_tokens: int = 0) -> dict[str, Any]:
    """The 2026-style ``usage`` object with billed ``cost`` and its breakdown."""
    cost = cost_of(model, prompt_tokens, completion_tokens, reasoning_tokens)
    prompt_cost = cost_of(model, prompt_tokens, 0) - model.pricing.request
    completion_cost = cost - prompt_cost
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "cost": _num(cost),
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0},
        "cost_details": {
            "upstream_inference_cost": _num(cost),
            "upstream_inference_prompt_cost": _num(prompt_cost),
            "upstream_inference_completions_cost": _num(completion_cost),
        },
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens, "image_tokens": 0},
    }


def _num(value: Decimal) -> float | int:
    return 0 if value == 0 else float(value)


class ChunkFormat:
    """Renders one stream's ``chat.completion.chunk`` events. Token events are pre-rendered around
    the text (a ``json.dumps`` of the whole chunk per token would dominate the emulator's cost)."""

    def __init__(self, gen_id: str, model: ModelInfo, created: int) -> None:
        self._top = {"id": gen_id, "provider": model.provider}
        self._rest = {"model": model.id, "object": "chat.completion.chunk", "created": created}
        prefix = dumps({**self._top, **self._rest})[:-1]
        self._content = b"data: " + prefix + b',"choices":[{"index":0,"delta":{"role":"assistant","content":'

    def content(self, text: str) -> bytes:
        """A token event."""
        return (self._content + dumps(text)
                + b'},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}\n\n')

    def reasoning(self, text: str) -> bytes:
        """A reasoning-token event (``delta.reasoning`` plus ``reasoning_details``, as real streams)."""
        detail = [{"type": "reasoning.text", "text": text, "index": 0, "format": None}]
        return (self._content + b'"","reasoning":' + dumps(text) + b',"reasoning_details":' + dumps(detail)
                + b'},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}\n\n')

    def tool_call(self, delta: dict[str, Any]) -> bytes:
        """A tool-call event: one ``delta.tool_calls`` entry (a call's header or an argument fragment)."""
        return (self._content + b'"","tool_calls":[' + dumps(delta)
                + b']},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}\n\n')

    def event(
        self,
        finish_reason: str | None,
        native_finish_reason: str | None,
        *,
        error: dict[str, Any] | None = None,
        usage: dict[str, Any] | None = None,
    ) -> bytes:
        """An event with an empty delta: the finish chunk, the usage chunk or the mid-stream error."""
        chunk: dict[str, Any] = dict(self._top)
        if error is not None:
            chunk["error"] = error  # where real traffic puts it: right after provider
        chunk.update(self._rest)
        chunk["choices"] = [{
            "index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": finish_reason,
            "native_finish_reason": native_finish_reason, "logprobs": None,
        }]
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + dumps(chunk) + b"\n\n"


def completion_body(
    gen_id: str,
    model: ModelInfo,
    created: int,
    *,
    content: str,
    reasoning: str | None = None,
    finish_reason: str,
    native_finish_reason: str | None,
    usage: dict[str, Any],
    error: dict[str, Any] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> bytes:
    """A non-streaming ``chat.completion``; with ``error`` it is a 200 whose choice failed mid-way;
    ``tool_calls`` go in the message as in the real recording (``content`` then ``""``)."""
    choice: dict[str, Any] = {
        "logprobs": None,
        "finish_reason": finish_reason,
        "native_finish_reason": native_finish_reason,
        "index": 0,
        "message": {"role": "assistant", "content": content, "refusal": None, "reasoning": reasoning},
    }
    if tool_calls is not None:
        choice["message"]["tool_calls"] = tool_calls
    if error is not None:
        choice["error"] = error
    return dumps({
        "id": gen_id,
        "provider": model.provider,
        "model": model.id,
        "object": "chat.completion",
        "created": created,
        "choices": [choice],
        "usage": usage,
    })
