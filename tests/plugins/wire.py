"""OpenRouter's wire format written by the tests: a whole answer as the SSE stream OpenRouter sends.

Independent of the client's parser (it writes, the client reads), so a recorded ``chat.completion``
document can be replayed streamed through ``httpx.MockTransport`` and the two results compared.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["to_sse"]


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def to_sse(doc: dict[str, Any], size: int = 9) -> bytes:
    """A ``chat.completion`` document as the SSE stream OpenRouter sends for it."""
    head = {k: doc[k] for k in ("id", "provider", "model", "created") if k in doc}
    choice = doc["choices"][0]
    message = choice["message"]
    logprobs = (choice.get("logprobs") or {}).get("content") or []
    deltas: list[tuple[dict[str, Any], Any]] = []
    for piece in _pieces(message.get("reasoning") or "", size) if message.get("reasoning") else []:
        deltas.append(({"reasoning": piece}, None))
    for detail in message.get("reasoning_details") or []:
        field = next((f for f in ("text", "summary", "data") if isinstance(detail.get(f), str)), None)
        if field is None:
            deltas.append(({"reasoning_details": [detail]}, None))
            continue
        for i, piece in enumerate(_pieces(detail[field], size)):
            part = dict(detail, **{field: piece}) if i == 0 else {"type": detail["type"], "index": detail["index"],
                                                                   field: piece}
            deltas.append(({"reasoning_details": [part]}, None))
    content = _pieces(message.get("content") or "", size) if message.get("content") else []
    step = -(-len(logprobs) // len(content)) if content else 0
    for i, piece in enumerate(content):
        deltas.append(({"content": piece}, {"content": logprobs[i * step : (i + 1) * step], "refusal": None}
                       if logprobs else None))
    calls = message.get("tool_calls") or []
    fragments = [[{"index": n, "id": c["id"], "type": c["type"], "function": {"name": c["function"]["name"],
                                                                              "arguments": ""}}]
                 + [{"index": n, "function": {"arguments": p}} for p in _pieces(c["function"]["arguments"], size)]
                 for n, c in enumerate(calls)]
    while any(fragments):  # parallel calls interleaved, as providers stream them
        for queue in fragments:
            if queue:
                deltas.append(({"tool_calls": [queue.pop(0)]}, None))
    if message.get("annotations"):
        deltas.append(({"annotations": message["annotations"]}, None))
    events = [dict(head, object="chat.completion.chunk", choices=[{
        "index": 0, "delta": dict({"role": "assistant"}, **delta), "finish_reason": None,
        "native_finish_reason": None, "logprobs": lp}]) for delta, lp in deltas]
    events.append(dict(head, object="chat.completion.chunk", choices=[{
        "index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": choice["finish_reason"],
        "native_finish_reason": choice.get("native_finish_reason"), "logprobs": None}]))
    events.append(dict(head, object="chat.completion.chunk", choices=[{
        "index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None, "logprobs": None}],
        usage=doc["usage"]))
    lines = [": OPENROUTER PROCESSING\n\n"] + [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()
