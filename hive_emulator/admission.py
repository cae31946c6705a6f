"""Whether a model's endpoints can take a request at all, refused the way OpenRouter refuses it.

Checked against the catalog entry of the model asked for (a router's own entry, as OpenRouter
routes only to models that fit), before credits and faults, in this order:

* function ``tools`` offered to a model whose ``supported_parameters`` lack ``tools``: 404
  ``No endpoints found that support tool use. Try disabling "<first tool>". ...`` (the 2026 text,
  quoted in real reports: Kilo-Org/kilocode#9006, rbb-dev/Open-WebUI-OpenRouter-pipe#58);
* a ``tool_choice`` other than ``auto`` to a model without ``tool_choice``: 404 ``No endpoints
  found that support the provided 'tool_choice' value. ...`` (zed-industries/zed#36094);
* an ``image_url`` part sent to a model whose ``architecture.input_modalities`` lack ``image``:
  404 ``No endpoints found that support image input`` (NousResearch/hermes-agent#23411);
* an ``input_audio`` part to a model without ``audio`` input: 404 ``No endpoints found that support
  audio input`` (the image refusal's wording: no real report of this text was found, so it is the
  one message here not quoted from OpenRouter);
* prompt tokens (tool definitions included) plus ``max_tokens`` above the model's
  ``context_length``: 400 ``This endpoint's maximum context length is N tokens. However, you
  requested about T tokens (P of text input, [K of tool input, ]M in the output). ...``.

``response_format`` is never refused: OpenRouter drops parameters a model does not support
(PROTOCOL.md section 2), so such a model answers prose. Nor is a ``file`` part: OpenRouter's
``file-parser`` plugin turns a PDF into text for any model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hive_emulator.answers import function_tools
from hive_emulator.catalog import ModelInfo

__all__ = ["Refusal", "admit", "has_audio", "has_images", "over_context"]

ROUTING_DOCS = "To learn more about provider routing, visit: https://openrouter.ai/docs/guides/routing/provider-selection"
CONTEXT_MESSAGE = (
    "This endpoint's maximum context length is {context} tokens. However, you requested about {total} tokens "
    "({text} of text input, {tools}{output} in the output). Please reduce the length of either one, or use the "
    '"middle-out" transform to compress your prompt automatically.'
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error answer: HTTP status, OpenRouter's message, and the outcome counted in the stats."""

    status: int
    message: str
    outcome: str


def _has_part(messages: Any, kind: str) -> bool:
    return isinstance(messages, list) and any(
        isinstance(part, dict) and part.get("type") == kind
        for message in messages if isinstance(message, dict) and isinstance(message.get("content"), list)
        for part in message["content"]
    )


def has_images(messages: Any) -> bool:
    """Some message has an ``image_url`` content part."""
    return _has_part(messages, "image_url")


def has_audio(messages: Any) -> bool:
    """Some message has an ``input_audio`` content part."""
    return _has_part(messages, "input_audio")


def admit(payload: dict[str, Any], model: ModelInfo) -> Refusal | None:
    """The 404 for a capability the model's endpoints lack, or ``None`` (see the module docstring)."""
    tools = function_tools(payload)
    if tools and "tools" not in model.parameters:
        name = tools[0]["function"]["name"]
        return Refusal(404, f'No endpoints found that support tool use. Try disabling "{name}". {ROUTING_DOCS}',
                       "no_tool_endpoints")
    choice = payload.get("tool_choice")
    if tools and choice not in (None, "auto") and "tool_choice" not in model.parameters:
        return Refusal(404, f"No endpoints found that support the provided 'tool_choice' value. {ROUTING_DOCS}",
                       "no_tool_endpoints")
    if "image" not in model.input_modalities and has_images(payload.get("messages")):
        return Refusal(404, "No endpoints found that support image input", "no_image_endpoints")
    if "audio" not in model.input_modalities and has_audio(payload.get("messages")):
        return Refusal(404, "No endpoints found that support audio input", "no_audio_endpoints")
    return None


def over_context(model: ModelInfo, prompt_tokens: int, tool_tokens: int, max_tokens: int | None) -> Refusal | None:
    """The 400 when the prompt plus ``max_tokens`` exceeds the model's ``context_length``."""
    output = max_tokens or 0
    total = prompt_tokens + output
    if model.context_length is None or total <= model.context_length:
        return None
    tools = f"{tool_tokens} of tool input, " if tool_tokens else ""
    message = CONTEXT_MESSAGE.format(context=model.context_length, total=total, text=prompt_tokens - tool_tokens,
                                     tools=tools, output=output)
    return Refusal(400, message, "context_length")
