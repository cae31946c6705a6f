"""The event schema: one pydantic class per event type, one registry, one Arrow schema per type.

Every event shares an envelope (``event_id``, ``ts``, ``type``, ``schema_version``, ``request_id``,
``app``, ``user``, ``tags``). The Arrow schema of a type is derived from its class
(:func:`arrow_schema`), so the Parquet files, the docs (:func:`schema_markdown`) and validation can
never disagree. Prompt and response text is never part of an event.

Schema evolution: a field added later must be optional (``X | None = None``) and bump the class's
``SCHEMA_VERSION``; files written before it lack the column and read back as NULL.
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Protocol, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from hive_core.ids import uuid7
from hive_core.store.layout import TS_MAX, TS_MIN

if typing.TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "AbAssignment",
    "ApiCall",
    "BudgetAlert",
    "BudgetOverride",
    "Event",
    "EventSink",
    "QualityRating",
    "Selection",
    "StreamOutcome",
    "Usage",
    "arrow_schema",
    "event_class",
    "schema_markdown",
]

#: api_call.status values (an error's ``status_name``); documented, not enforced, so new errors fit.
CALL_STATUSES = (
    "ok", "rate_limited", "server_error", "timeout", "insufficient_credits", "moderated",
    "bad_request", "auth", "not_found", "network", "unreachable", "malformed", "cancelled", "budget_exceeded",
)


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """The envelope every event shares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: str = Field(default_factory=uuid7, description="UUIDv7, time-ordered, unique per event")
    ts: datetime = Field(default_factory=_now, description="when it happened, UTC, microseconds")
    type: str = Field(description="event type; the directory under events/")
    schema_version: int = Field(default=1, description="version of this type's schema the writer used")
    request_id: str = Field(description="shared by all events of one logical request")
    app: str | None = Field(default=None, description="calling application (HIVE_APP), optional")
    user: str | None = Field(default=None, description="end user (HIVE_USER), optional")
    tags: list[str] = Field(default_factory=list, description="free-form labels such as team:search")

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is not UTC:  # the default clock's value needs no conversion
            if value.tzinfo is None:
                raise ValueError("ts must be timezone-aware (UTC)")
            value = value.astimezone(UTC)
        if not TS_MIN <= value < TS_MAX:
            raise ValueError(f"ts {value.isoformat()} is outside {TS_MIN.year}..{TS_MAX.year - 1}")
        return value


# Each type declares its columns in its files' column order, so shared names (model, request_type,
# task_category...) repeat by design; `duplicates` pairs these declarations by shape.
class ApiCall(Event):
    """One HTTP attempt to OpenRouter (a retried request has several, ``attempt`` 1..n)."""

    SCHEMA_VERSION: ClassVar[int] = 2  # 2: max_tokens

    type: Literal["api_call"] = "api_call"
    schema_version: int = 2
    attempt: int = Field(ge=1, description="1 for the first HTTP attempt of this request, then 2, 3, ...")
    model: str = Field(description="model id requested")
    served_model: str | None = Field(default=None, description="model id that answered (fallbacks, routers)")
    provider: str | None = Field(default=None, description="provider that served the attempt")
    request_type: str = Field(default="chat", description="chat, consensus, test, benchmark, ...")
    task_category: str | None = Field(default=None, description="task type, e.g. code-generation")
    status: str = Field(description="ok, or the error class: " + ", ".join(CALL_STATUSES[1:]))
    http_status: int | None = Field(default=None, description="HTTP status, null when none arrived")
    latency_ms: float = Field(ge=0, description="request start to last byte (or failure), milliseconds")
    ttft_ms: float | None = Field(default=None, description="time to first token, null when not streamed")
    streamed: bool = Field(default=False, description="the attempt used SSE streaming")
    fallback_index: int = Field(default=0, ge=0, description="0 for the primary model, n for the n-th fallback")
    generation_id: str | None = Field(default=None, description="OpenRouter generation id (gen-...)")
    max_tokens: int | None = Field(default=None, description="output cap the request set; null when it set none")


class Usage(Event):
    """Tokens and cost of one successful or partially billed request (BYOK: see ``is_byok``)."""

    SCHEMA_VERSION: ClassVar[int] = 3  # 2: the whole usage object (cache writes ... upstream cost); 3: key_id

    type: Literal["usage"] = "usage"
    schema_version: int = 3
    model: str = Field(description="model id that was billed")
    provider: str | None = Field(default=None, description="provider that served it")
    request_type: str = Field(default="chat", description="as on api_call")
    task_category: str | None = Field(default=None, description="as on api_call")
    prompt_tokens: int = Field(default=0, ge=0, description="input tokens (native tokenizer)")
    completion_tokens: int = Field(default=0, ge=0, description="output tokens, reasoning included")
    reasoning_tokens: int = Field(default=0, ge=0, description="of which internal reasoning")
    cached_tokens: int = Field(default=0, ge=0, description="input tokens read from the prompt cache")
    cache_write_tokens: int | None = Field(
        default=None, ge=0, description="input tokens written to the prompt cache; null before schema 2")
    prompt_audio_tokens: int | None = Field(default=None, ge=0, description="input audio tokens; null before 2")
    prompt_image_tokens: int | None = Field(default=None, ge=0, description="input image tokens; null before 2")
    prompt_video_tokens: int | None = Field(default=None, ge=0, description="input video tokens; null before 2")
    completion_audio_tokens: int | None = Field(
        default=None, ge=0, description="output audio tokens; null before schema 2")
    completion_image_tokens: int | None = Field(
        default=None, ge=0, description="output image tokens; null before schema 2")
    web_search_requests: int | None = Field(
        default=None, ge=0, description="web searches OpenRouter ran (server tools); null before schema 2")
    cost_usd: float | None = Field(default=None, description="USD; null when it cannot be known")
    cost_source: Literal["billed", "estimated", "unknown"] = Field(
        description="billed (OpenRouter usage.cost), estimated (catalog prices), unknown"
    )
    is_byok: bool = Field(
        default=False, description="ran on the user's own provider key: cost_usd is only OpenRouter's fee")
    upstream_cost_usd: float | None = Field(
        default=None, description="USD the provider charged (usage.cost_details.upstream_inference_cost); "
        "a BYOK call's real price, billed outside OpenRouter; null when not reported")
    upstream_prompt_cost_usd: float | None = Field(default=None, description="of which for the input")
    upstream_completion_cost_usd: float | None = Field(default=None, description="of which for the output")
    generation_id: str | None = Field(default=None, description="OpenRouter generation id")
    supersedes: str | None = Field(
        default=None, description="event_id of the usage event this one corrects (reconcile)"
    )
    key_id: str | None = Field(
        default=None, description="id of the gateway's virtual key the request came with (budget scope key:<id>); "
        "null without one, and before schema 3")


class StreamOutcome(Event):
    """How one streamed request ended."""

    type: Literal["stream_outcome"] = "stream_outcome"
    model: str = Field(description="model id streamed from")
    request_type: str = Field(default="chat", description="as on api_call")
    task_category: str | None = Field(default=None, description="as on api_call")
    outcome: Literal["completed", "cancelled", "errored", "timeout", "truncated"] = Field(
        description="completed, cancelled (by the caller), errored (mid-stream error), timeout, "
        "truncated (ended before [DONE])"
    )
    chunks: int = Field(default=0, ge=0, description="data events received")
    completion_tokens: int = Field(default=0, ge=0, description="tokens received (usage, else counted)")
    ttft_ms: float | None = Field(default=None, description="time to first token, milliseconds")
    duration_ms: float = Field(default=0, ge=0, description="request start to end of stream")
    tokens_per_s: float | None = Field(default=None, description="completion tokens / generation time")
    finish_reason: str | None = Field(default=None, description="first finish_reason the stream set")


class Selection(Event):
    """The selector's choice for one request."""

    type: Literal["selection"] = "selection"
    strategy: str = Field(description="cost-optimized, balanced, performance or quality-first")
    complexity: str = Field(description="simple, moderate, complex or expert")
    task_category: str | None = Field(default=None, description="task type the request was classified as")
    candidates: int = Field(ge=0, description="models that passed every constraint")
    model: str = Field(description="chosen (primary) model id")
    fallbacks: list[str] = Field(default_factory=list, description="ordered fallback chain")
    top_models: list[str] = Field(default_factory=list, description="best-scored candidates, best first")
    top_scores: list[float] = Field(default_factory=list, description="their scores, same order")
    estimated_cost_usd: float | None = Field(default=None, description="estimated cost of the request")
    reason: str = Field(description="one sentence: why this model")


class QualityRating(Event):
    """A human or automatic rating of one request's answer (``hive rate``)."""

    type: Literal["quality_rating"] = "quality_rating"
    score: float = Field(ge=0, le=1, description="0 (bad) .. 1 (good)")
    model: str | None = Field(default=None, description="model that answered, when known")
    rater: str | None = Field(default=None, description="who rated: a user name, 'auto', ...")


class BudgetAlert(Event):
    """A budget threshold or forecast alert (fires once per period, scope and threshold)."""

    type: Literal["budget_alert"] = "budget_alert"
    scope: str = Field(description="global, app:<name> or model:<id>")
    period: Literal["daily", "monthly"] = Field(description="budget period")
    period_start: str = Field(description="first day of the period, YYYY-MM-DD (UTC)")
    kind: Literal["threshold", "forecast"] = Field(description="threshold crossed, or forecast over limit")
    threshold_pct: float | None = Field(default=None, description="threshold crossed, percent of limit")
    limit_usd: float = Field(description="the limit, USD")
    spent_usd: float = Field(description="spent in the period when it fired, USD")
    forecast_usd: float | None = Field(default=None, description="projected spend at period end, USD")
    message: str = Field(description="the alert as delivered")


class BudgetOverride(Event):
    """A request sent over budget on purpose (``--over-budget``)."""

    type: Literal["budget_override"] = "budget_override"
    scope: str = Field(description="budget scope that would have refused")
    period: Literal["daily", "monthly"] = Field(description="budget period")
    limit_usd: float = Field(description="the limit, USD")
    spent_usd: float = Field(description="spent plus reserved before this request, USD")
    reserved_usd: float = Field(description="this request's maximum cost, USD")


class AbAssignment(Event):
    """A request assigned to a variant of an A/B experiment."""

    type: Literal["ab_assignment"] = "ab_assignment"
    experiment: str = Field(description="experiment name")
    variant: Literal["a", "b"] = Field(description="assigned variant")
    model: str = Field(description="the variant's model")


class EventSink(Protocol):
    """Where recorded events go: ``ingest.EventLog`` in production, anything with ``record`` in tests."""

    def record(self, event: Event) -> None: ...


_CLASSES: tuple[type[Event], ...] = (
    ApiCall, Usage, StreamOutcome, Selection, QualityRating, BudgetAlert, BudgetOverride, AbAssignment,
)

#: event type name -> class; the one registry.
EVENT_TYPES: dict[str, type[Event]] = {cls.model_fields["type"].default: cls for cls in _CLASSES}

AnyEvent = Annotated[
    Union[ApiCall, Usage, StreamOutcome, Selection, QualityRating, BudgetAlert, BudgetOverride, AbAssignment],  # noqa: UP007
    Field(discriminator="type"),
]

#: validates any event from a dict / JSON, dispatching on ``type``.
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyEvent)


def event_class(type_name: str) -> type[Event]:
    """The class registered for an event type name."""
    try:
        return EVENT_TYPES[type_name]
    except KeyError:
        raise KeyError(f"unknown event type {type_name!r}; known: {', '.join(EVENT_TYPES)}") from None


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


#: the column type of each scalar annotation, as the README spells it (Arrow's alias, but timestamps)
_SCALARS: dict[Any, str] = {str: "string", int: "int64", float: "double", bool: "bool", datetime: "timestamp(us, UTC)"}


def _arrow_type(annotation: Any) -> pa.DataType:
    import pyarrow as pa

    origin = get_origin(annotation)
    if origin is Literal:
        return pa.string()
    if origin is list:
        (item,) = get_args(annotation)
        return pa.list_(_arrow_type(item))
    if annotation is datetime:
        return pa.timestamp("us", tz="UTC")
    if annotation in _SCALARS:
        return pa.type_for_alias(_SCALARS[annotation])
    raise TypeError(f"no Arrow type for annotation {annotation!r}")


def _describe(annotation: Any, optional: bool) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        base = "string"
    elif origin is list:
        base = f"list<{_describe(get_args(annotation)[0], False)}>"
    else:
        base = _SCALARS[annotation]
    return base + (" null" if optional else "")


@cache
def arrow_schema(cls: type[Event]) -> pa.Schema:
    """The Arrow schema of an event class: one column per field, in declaration order."""
    import pyarrow as pa

    fields = []
    for name, info in cls.model_fields.items():
        annotation, optional = _unwrap_optional(info.annotation)
        fields.append(pa.field(name, _arrow_type(annotation), nullable=optional or name == "tags"))
    return pa.schema(fields, metadata={"hive.event_type": cls.model_fields["type"].default,
                                       "hive.schema_version": str(cls.SCHEMA_VERSION)})


def schema_markdown() -> str:
    """The event schema as Markdown: the README's "Event schema" section embeds this verbatim."""
    lines = ["Envelope (every event type):\n", *_columns(Event)]
    for type_name, cls in EVENT_TYPES.items():
        lines += ["", f"`{type_name}`: {cls.__doc__}\n", *_columns(cls, skip=frozenset(Event.model_fields))]
    return "\n".join(lines) + "\n"


def _columns(cls: type[Event], skip: frozenset[str] = frozenset()) -> list[str]:
    """The Markdown table of ``cls``'s columns, but ``skip``."""
    rows = ["| column | type | meaning |", "|---|---|---|"]
    for name, info in cls.model_fields.items():
        if name not in skip:
            annotation, optional = _unwrap_optional(info.annotation)
            rows.append(f"| `{name}` | {_describe(annotation, optional)} | {info.description} |")
    return rows
