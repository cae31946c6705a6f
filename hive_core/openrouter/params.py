"""The chat request surface, typed: what ``chat(**params)`` and ``stream(**params)`` accept.

PROTOCOL.md section 2 as :class:`typing.TypedDict` types, so that an editor completes the field
names and mypy checks their values; nothing here runs at request time. Every field goes into the
request body untouched: the client validates none of them (OpenRouter answers a wrong one with a
400, which is raised as :class:`~hive_core.errors.BadRequest`), and fields this file does not name
still pass through (``extra_body``, or as keyword arguments for untyped callers).

    client.chat(messages, model=m, tools=[WEATHER], tool_choice="auto", parallel_tool_calls=True,
                response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {...}}},
                reasoning={"effort": "low"}, provider={"order": ["openai"], "allow_fallbacks": False},
                models=["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"], stop=["\\n\\n"], seed=7)

Messages are the OpenAI ones: ``system``/``developer``/``user`` content is a string or a list of
parts (``text``, ``image_url``, ``input_audio``, ``file``); an ``assistant`` message may carry
``tool_calls`` (:attr:`ChatResult.message` is one) and, last in the list, is a prefill the model
continues; a ``tool`` message answers one call by its ``tool_call_id`` (:meth:`ToolCall.reply`).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = [
    "ChatParams", "ContentPart", "FunctionSpec", "JsonSchemaSpec", "ProviderPreferences", "ReasoningOptions",
    "ResponseFormat", "Tool", "ToolChoice",
]


class FunctionSpec(TypedDict, total=False):
    """A function the model may call: ``name`` required, ``parameters`` a JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool


class Tool(TypedDict, total=False):
    """``{"type": "function", "function": {...}}``, or a server tool such as
    ``{"type": "openrouter:web_search", "parameters": {"max_results": 3}}`` (OpenRouter runs it;
    its results come back as :attr:`ChatResult.annotations`)."""

    type: str
    function: FunctionSpec
    parameters: dict[str, Any]


#: ``none`` | ``auto`` | ``required`` | ``{"type": "function", "function": {"name": ...}}``
ToolChoice = Literal["none", "auto", "required"] | dict[str, Any]


class JsonSchemaSpec(TypedDict, total=False):
    """Structured outputs: the answer must validate against ``schema`` (``strict`` asks the provider to enforce it)."""

    name: str
    strict: bool
    schema: dict[str, Any]
    description: str


class ResponseFormat(TypedDict, total=False):
    """``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {...}}`` (also ``text``)."""

    type: Literal["text", "json_object", "json_schema", "grammar", "python"]
    json_schema: JsonSchemaSpec
    grammar: str


class ReasoningOptions(TypedDict, total=False):
    """``effort`` *or* ``max_tokens``; ``exclude`` hides the reasoning text (still billed)."""

    effort: Literal["max", "xhigh", "high", "medium", "low", "minimal", "none"]
    max_tokens: int
    exclude: bool
    enabled: bool


class ProviderPreferences(TypedDict, total=False):
    """Provider routing. ``max_price`` is USD per *million* tokens (model prices are per token)."""

    order: list[str]
    only: list[str]
    ignore: list[str]
    allow_fallbacks: bool
    require_parameters: bool
    data_collection: Literal["allow", "deny"]
    zdr: bool
    enforce_distillable_text: bool
    quantizations: list[str]
    sort: str | dict[str, Any]
    preferred_min_throughput: float | dict[str, Any]
    preferred_max_latency: float | dict[str, Any]
    max_price: dict[str, float]


class ContentPart(TypedDict, total=False):
    """One part of a message's content: ``{"type": "text", "text": ...}``,
    ``{"type": "image_url", "image_url": {"url": "https://... or data:image/png;base64,..."}}``,
    ``{"type": "input_audio", "input_audio": {"data": b64, "format": "wav"}}``,
    ``{"type": "file", "file": {"filename": ..., "file_data": "data:application/pdf;base64,..."}}``."""

    type: Literal["text", "image_url", "input_audio", "file", "video_url"]
    text: str
    image_url: dict[str, Any]
    input_audio: dict[str, Any]
    file: dict[str, Any]
    video_url: dict[str, Any]
    cache_control: dict[str, Any]


class ChatParams(TypedDict, total=False):
    """Body fields of ``POST /chat/completions`` besides ``model``, ``messages``, ``max_tokens`` and
    ``stream`` (the client's own arguments)."""

    tools: list[Tool]
    tool_choice: ToolChoice
    parallel_tool_calls: bool
    response_format: ResponseFormat
    structured_outputs: bool
    reasoning: ReasoningOptions
    reasoning_effort: str
    include_reasoning: bool
    provider: ProviderPreferences
    #: fallback models tried in order when the previous one errors; ``served_model`` says which answered
    models: list[str]
    max_completion_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    top_a: float
    frequency_penalty: float
    presence_penalty: float
    repetition_penalty: float
    seed: int
    stop: str | list[str]
    logit_bias: dict[str, float]
    logprobs: bool
    top_logprobs: int
    #: the end user's id (OpenRouter's abuse tracking), distinct from Hive's own ``user`` setting
    user: str
    session_id: str
    metadata: dict[str, str]
    plugins: list[dict[str, Any]]
    transforms: list[str]
    prediction: dict[str, Any]
    modalities: list[str]
    web_search_options: dict[str, Any]
    verbosity: str
    service_tier: str
    prompt_cache_key: str
    preset: str
    debug: dict[str, Any]
    #: any field not named above, merged into the body last
    extra_body: dict[str, Any]
