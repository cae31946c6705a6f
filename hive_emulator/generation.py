"""What a simulated model answers and how fast.

* Prompt tokens: about 4 characters per token of message text (an assistant message's tool-call
  arguments included), plus 4 per message for the role and framing, plus :data:`IMAGE_TOKENS` per
  ``image_url`` part, plus the offered ``tools`` (their JSON, 4 characters per token): the tool
  definitions are billed as prompt, as real providers do. Deterministic, so tests can predict it.
* Completion: a shaped answer (tool calls or JSON, :mod:`hive_emulator.answers`) when the request
  fixes one, its length set by its pieces; otherwise a drawn length (lognormal, median ~90 tokens), capped by ``max_tokens`` (finish
  ``length``) or the model's own limit; the text is made of whole-word tokens. A reasoning model
  asked to think (``reasoning`` in the request) answers longer and spends 30-70 % of its tokens on
  reasoning first (``delta.reasoning`` when streamed, counted in ``reasoning_tokens``).
* Timing: each model gets a profile from its id, its price and the seed: TTFT median grows with
  price (bigger models are slower), reasoning models think longer, and tokens/s falls with price.
  Per request, TTFT is drawn lognormally (long tail) and the rate varies around the profile.
  Every delay is multiplied by ``latency_scale``; 0 means no delay at all.

Content depends only on the request (seed, model, messages, max_tokens, tools, response_format):
the same request gives the same answer. Timing depends on the seed and the request number.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hive_emulator.catalog import ModelInfo
from hive_emulator.faults import unit_hash

if TYPE_CHECKING:
    from hive_emulator.answers import ShapedAnswer

__all__ = [
    "CompletionPlan",
    "LatencyProfile",
    "count_prompt_tokens",
    "count_tool_tokens",
    "plan_completion",
    "profile_for",
]

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
#: one image part, whatever its size (OpenAI's flat low-detail figure)
IMAGE_TOKENS = 85
MEDIAN_COMPLETION_TOKENS = 90
MAX_DRAWN_TOKENS = 2048
#: keep-alive comment lines sent before the first token, at least
MIN_COMMENTS = 1

_WORDS = ["the", "model", "answers", "with", "a", "short", "and", "careful", "reply", "about", "what", "you", "asked", "while", "keeping", "track", "of", "time", "cost", "latency", "tokens", "and", "budget", "so", "that", "every", "team", "can", "compare", "results", "across", "providers", "and", "pick", "the", "best", "option", "for", "each", "task", "under", "real", "load", "today"]

#: (stop, length) native finish reasons as providers report them
_NATIVE_FINISH: dict[str, tuple[str, str]] = {
    "OpenAI": ("completed", "max_output_tokens"),
    "Google": ("STOP", "MAX_TOKENS"),
    "Anthropic": ("end_turn", "max_tokens"),
}
#: native finish reason of a tool-call answer, where it is not ``tool_calls``
_NATIVE_TOOL_FINISH = {"Google": "STOP", "Anthropic": "tool_use"}


def _tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def _message_tokens(message: dict[str, Any]) -> int:
    # Written apart from hive_core.budget.estimate on purpose: the emulator plays OpenRouter's
    # billing, and the budget tests check Hive's estimate against it - shared code would make them
    # check the estimator against itself.
    content = message.get("content")
    chars = images = 0
    if isinstance(content, str):
        chars = len(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                chars += len(str(part.get("text", "")))
                images += part.get("type") == "image_url"
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            chars += len(str(function.get("name", ""))) + len(str(function.get("arguments", "")))
    return _tokens(chars) + images * IMAGE_TOKENS


def count_tool_tokens(tools: Any) -> int:
    """Prompt tokens the offered ``tools`` definitions cost (0 when none are offered)."""
    if not isinstance(tools, list) or not tools:
        return 0
    return _tokens(len(json.dumps(tools, separators=(",", ":"), ensure_ascii=False)))


def count_prompt_tokens(messages: Sequence[Any], tools: Any = None) -> int:
    """Prompt tokens for ``messages`` and the offered ``tools`` (see the module docstring)."""
    total = count_tool_tokens(tools)
    for message in messages:
        total += (_message_tokens(message) if isinstance(message, dict) else 0) + TOKENS_PER_MESSAGE
    return max(total, 1)


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """A model's speed: median TTFT (s, unscaled), its spread, and tokens per second."""

    ttft_median_s: float
    ttft_sigma: float
    tokens_per_s: float


def profile_for(model: ModelInfo, seed: int) -> LatencyProfile:
    """The model's profile; pricier models are slower, the seed shifts every model a little."""
    per_million = float(model.pricing.completion) * 1_000_000
    size = math.log10(1.0 + per_million)  # 0 for free models, ~2 for $100/M
    thinking = 2.0 if model.reasoning else 1.0
    ttft = 0.25 * (1.0 + size) * thinking * math.exp(unit_hash(seed, model.id, "ttft") - 0.5)
    rate = 160.0 / (1.0 + 0.7 * size) * math.exp(0.6 * (unit_hash(seed, model.id, "tps") - 0.5))
    return LatencyProfile(ttft_median_s=ttft, ttft_sigma=0.6, tokens_per_s=rate)


@dataclass(slots=True)
class CompletionPlan:
    """One answer: its token pieces, why it ended, and its (scaled) timing."""

    #: every completion token in order: the first ``reasoning_tokens`` are reasoning, then the answer
    pieces: list[str]
    reasoning_tokens: int
    finish_reason: str
    native_finish_reason: str
    prompt_tokens: int
    ttft_s: float
    token_interval_s: float
    comments_before: int
    #: the answer's shape when the request fixed one; with ``calls`` the answer pieces are call deltas
    shape: ShapedAnswer | None = None

    @property
    def completion_tokens(self) -> int:
        """One token per piece."""
        return len(self.pieces)

    def reasoning_in(self, tokens: int) -> int:
        """How many of the first ``tokens`` pieces are reasoning."""
        return min(tokens, self.reasoning_tokens)

    @property
    def calls_tools(self) -> bool:
        """The answer is tool calls (its pieces after the reasoning are call deltas, not content)."""
        return self.shape is not None and bool(self.shape.calls)

    def text(self, tokens: int | None = None) -> str:
        """The answer (without reasoning) in the first ``tokens`` pieces (all by default)."""
        return "" if self.calls_tools else "".join(self.pieces[self.reasoning_tokens:tokens])

    def tool_calls(self, tokens: int | None = None) -> list[dict[str, Any]] | None:
        """``message.tool_calls`` of the first ``tokens`` pieces; ``None`` for an answer without calls."""
        if self.shape is None or not self.shape.calls:
            return None
        end = len(self.pieces) if tokens is None else tokens
        return self.shape.calls_json(max(0, end - self.reasoning_tokens))

    def reasoning_text(self, tokens: int | None = None) -> str | None:
        """The reasoning in the first ``tokens`` pieces, ``None`` for a non-reasoning answer."""
        if not self.reasoning_tokens:
            return None
        return "".join(self.pieces[: self.reasoning_in(len(self.pieces) if tokens is None else tokens)])


def _words(rng: random.Random, count: int) -> list[str]:
    pieces: list[str] = []
    capital = True
    for _ in range(count):
        word = rng.choice(_WORDS)
        if capital:
            pieces.append((" " if pieces else "") + word.capitalize())
            capital = False
        elif rng.random() < 0.08:
            pieces.append(".")
            capital = True
        else:
            pieces.append(" " + word)
    return pieces


def plan_completion(
    model: ModelInfo,
    messages: Sequence[Any],
    *,
    max_tokens: int | None,
    reasoning: bool = False,
    seed: int,
    request_number: int,
    latency_scale: float,
    tools: Any = None,
    shape: ShapedAnswer | None = None,
) -> CompletionPlan:
    """Draw the answer and its timing for one request (``shape``: the answer a request fixed)."""
    content_rng = random.Random(f"{seed}|{model.id}|{max_tokens}|{messages!r}")
    median = MEDIAN_COMPLETION_TOKENS * (3 if reasoning else 1)
    drawn = math.exp(content_rng.gauss(math.log(median), 0.8))
    length = int(min(max(drawn, 1.0), MAX_DRAWN_TOKENS))
    caps = [c for c in (max_tokens, model.max_completion_tokens) if c is not None and c > 0]
    cap = min(caps) if caps else None
    stop, cut = _NATIVE_FINISH.get(model.provider, ("stop", "length"))
    finish, native = ("stop", stop)
    if shape is not None:
        # a thinking model reasons first; the shaped pieces follow, whatever their number
        thinking = int(length * content_rng.uniform(0.3, 0.7)) if reasoning else 0
        pieces = _words(content_rng, thinking) + list(shape.pieces)
        if shape.calls:
            finish, native = "tool_calls", _NATIVE_TOOL_FINISH.get(model.provider, "tool_calls")
        if cap is not None and len(pieces) > cap:
            pieces, finish, native = pieces[:cap], "length", cut
        thinking = min(thinking, len(pieces))
    else:
        if cap is not None and length >= cap:
            length, finish, native = cap, "length", cut
        # a thinking model spends a drawn share of its budget on reasoning before the answer
        thinking = int(length * content_rng.uniform(0.3, 0.7)) if reasoning else 0
        pieces = _words(content_rng, thinking) + _words(content_rng, length - thinking)

    timing_rng = random.Random(f"{seed}|{request_number}")
    profile = profile_for(model, seed)
    ttft = profile.ttft_median_s * math.exp(timing_rng.gauss(0.0, profile.ttft_sigma))
    rate = profile.tokens_per_s * math.exp(timing_rng.gauss(0.0, 0.2))
    return CompletionPlan(
        pieces=pieces,
        reasoning_tokens=thinking,
        finish_reason=finish,
        native_finish_reason=native,
        prompt_tokens=count_prompt_tokens(messages, tools),
        ttft_s=ttft * latency_scale,
        token_interval_s=latency_scale / rate,
        comments_before=MIN_COMMENTS + timing_rng.randrange(4),
        shape=shape,
    )
