"""OpenRouter's wire format without I/O: request headers and bodies, parsing of answers.

Both clients (sync ``client.py``, async ``aio.py``) build requests and read answers only through
these functions, so the two can differ in nothing but how bytes move.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hive_core.errors import MalformedResponse
from hive_core.openrouter.chunks import mid_stream_error
from hive_core.openrouter.results import UsageInfo

__all__ = [
    "Messages", "ParsedChat", "build_headers", "chat_body", "choice_error", "normalise_messages", "parse_chat",
    "parse_json",
]

#: a prompt string, or OpenAI-style message dicts
Messages = str | Sequence[Mapping[str, Any]]


def build_headers(api_key: str, *, app_url: str | None = None, app_title: str | None = None) -> dict[str, str]:
    """Headers of every request: auth, JSON, and optional app attribution (OpenRouter rankings)."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    if app_url:
        headers["HTTP-Referer"] = app_url
    if app_title:
        # X-Title is the name every deployment accepts; newer ones also read X-OpenRouter-Title
        headers["X-Title"] = app_title
    return headers


def normalise_messages(messages: Messages) -> list[dict[str, Any]]:
    """A bare prompt string becomes one user message."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [dict(m) for m in messages]


def chat_body(
    messages: Messages, *, model: str, max_tokens: int | None, stream: bool, params: Mapping[str, Any]
) -> bytes:
    """The JSON body of ``POST /chat/completions``.

    ``usage: {include: true}`` is deprecated but harmless; deployments up to late 2025 need it to
    put ``cost`` into non-streamed answers. ``max_tokens`` is always worth sending: without it
    OpenRouter's credit pre-check assumes the model's maximum output (spurious 402s).
    """
    body: dict[str, Any] = {"model": model, "messages": normalise_messages(messages)}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if stream:
        body["stream"] = True
    body["usage"] = {"include": True}
    body.update(params)
    return json.dumps(body, separators=(",", ":")).encode()


def parse_json(body: bytes, what: str) -> dict[str, Any]:
    """A JSON object body, or :class:`MalformedResponse` naming ``what`` it should have been."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise MalformedResponse(f"{what} is not JSON: {body[:80]!r}") from exc
    if not isinstance(doc, dict):
        raise MalformedResponse(f"{what} is not a JSON object: {body[:80]!r}")
    return doc


@dataclass(frozen=True, slots=True)
class ParsedChat:
    """The parts of a non-streamed chat answer the client keeps."""

    text: str
    reasoning: str
    finish_reason: str | None
    usage: UsageInfo
    served_model: str | None
    provider: str | None
    generation_id: str | None


def parse_chat(doc: Mapping[str, Any], *, header_generation_id: str | None = None) -> ParsedChat:
    """A ``chat.completion`` object. A choice with an ``error`` (the provider failed after partial
    output, HTTP still 200) is raised as :class:`~hive_core.errors.MidStreamError` by the caller,
    which first records the usage: see :func:`choice_error`."""
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("chat answer has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    if not isinstance(message, dict):
        raise MalformedResponse("chat answer's message is not an object")
    content = message.get("content")
    reasoning = message.get("reasoning")
    usage = doc.get("usage")
    return ParsedChat(
        text=content if isinstance(content, str) else "",
        reasoning=reasoning if isinstance(reasoning, str) else "",
        finish_reason=choice.get("finish_reason"),
        usage=UsageInfo.from_openrouter(usage if isinstance(usage, dict) else None),
        served_model=doc.get("model") if isinstance(doc.get("model"), str) else None,
        provider=doc.get("provider") if isinstance(doc.get("provider"), str) else None,
        generation_id=doc.get("id") if isinstance(doc.get("id"), str) else header_generation_id,
    )


def choice_error(doc: Mapping[str, Any]) -> Exception | None:
    """The mid-generation error a 200 answer carries in ``choices[0].error``, if any."""
    choices = doc.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict) and choices[0].get("error"):
        return mid_stream_error(choices[0]["error"])
    return None
