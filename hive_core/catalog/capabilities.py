"""Capabilities a model has, derived from its catalog entry (and measured speed, when known).

=================  ===========================================================================
capability         when a model has it
=================  ===========================================================================
tools              ``tools`` in ``supported_parameters``
reasoning          ``reasoning``/``include_reasoning``/``reasoning_effort`` supported, or a
                   ``reasoning`` object in the entry
json-mode          ``response_format`` (or ``structured_outputs``) supported: a JSON answer
structured-output  ``structured_outputs`` supported: an answer held to a JSON schema (OpenRouter's
                   parameter for ``response_format: {type: json_schema}``; ``response_format``
                   alone is JSON mode, ``json_object``)
vision             ``image`` in ``architecture.input_modalities``
audio              ``audio`` input;  ``file``: file input;  ``video``: video input
long-context       context length >= 128k tokens
programming        a code model (id/name such as coder, codex, codestral, devstral, or a
                   description that says coding model / software engineering), or a strong
                   general model: Premium/Flagship tier, or Artificial Analysis coding index >= 45
fast               measured median TTFT <= 1 s in the ranking table when the model has enough
                   samples there; otherwise a small/fast model by name (flash, mini, nano, haiku,
                   lite, turbo, instant, ``:nitro``)
=================  ===========================================================================

Names are lower-case with dashes; :data:`CAPABILITIES` is the full list (CLI choices and docs).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

from hive_core.catalog.tiers import TIER_RANK

__all__ = [
    "CAPABILITIES",
    "FAST_TTFT_MS",
    "LONG_CONTEXT_TOKENS",
    "describe",
    "fast_by_name",
    "parse_capability",
    "static_capabilities",
    "with_measured_speed",
]

CAPABILITIES: tuple[str, ...] = (
    "tools", "reasoning", "json-mode", "structured-output", "vision", "audio", "file", "video",
    "long-context", "programming", "fast",
)
LONG_CONTEXT_TOKENS = 128_000
#: median time to first token at or under which a measured model counts as fast
FAST_TTFT_MS = 1000.0
#: Artificial Analysis coding index from which a general model counts as good at programming
CODING_INDEX_MIN = 45.0

# Compiled on first use (:func:`_rx`): only parsing a ``/models`` document needs them.
_CODE_NAME = r"cod(?:er|ex|estral|e\b)|devstral|programm"
_CODE_DESCRIPTION = (
    r"\b(?:coding (?:model|assistant|agent|specialist)|code (?:model|generation|completion)"
    r"|agentic coding|software engineering)\b"
)
_FAST_NAME = r"flash|mini\b|-mini|nano|haiku|lite|turbo|instant|:nitro|-fast\b"
_MODALITY_CAPS = {"image": "vision", "audio": "audio", "file": "file", "video": "video"}


@functools.cache
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def parse_capability(value: str) -> str:
    """A capability name as written by a user (``Structured_Output``) in canonical form."""
    name = value.strip().lower().replace("_", "-")
    if name not in CAPABILITIES:
        raise ValueError(f"unknown capability {value!r}: one of {', '.join(CAPABILITIES)}")
    return name


def fast_by_name(model_id: str) -> bool:
    """The name-based prior for ``fast`` (used until the ranking table has measured TTFT)."""
    return bool(_rx(_FAST_NAME).search(model_id))


def static_capabilities(
    *,
    model_id: str,
    name: str,
    description: str,
    context_length: int,
    input_modalities: Iterable[str],
    supported_parameters: Iterable[str],
    has_reasoning_object: bool,
    tier: str,
    coding_index: float | None,
) -> frozenset[str]:
    """Every capability that follows from the catalog entry alone (``fast`` by name)."""
    params = set(supported_parameters)
    caps: set[str] = set()
    if "tools" in params:
        caps.add("tools")
    if has_reasoning_object or params & {"reasoning", "include_reasoning", "reasoning_effort"}:
        caps.add("reasoning")
    if params & {"structured_outputs", "response_format"}:
        caps.add("json-mode")
    if "structured_outputs" in params:
        caps.add("structured-output")
    caps.update(_MODALITY_CAPS[m] for m in input_modalities if m in _MODALITY_CAPS)
    if context_length >= LONG_CONTEXT_TOKENS:
        caps.add("long-context")
    code = _rx(_CODE_NAME)
    code_model = bool(code.search(model_id) or code.search(name) or _rx(_CODE_DESCRIPTION).search(description))
    strong = TIER_RANK[tier] >= TIER_RANK["premium"] or (coding_index or 0.0) >= CODING_INDEX_MIN
    if code_model or strong:
        caps.add("programming")
    if fast_by_name(model_id):
        caps.add("fast")
    return frozenset(caps)


def with_measured_speed(caps: frozenset[str], ttft_p50_ms: float | None) -> frozenset[str]:
    """Replace the name-based ``fast`` with the measured one when a TTFT is known."""
    if ttft_p50_ms is None:
        return caps
    return caps | {"fast"} if ttft_p50_ms <= FAST_TTFT_MS else caps - {"fast"}


def describe(caps: Mapping[str, bool] | Iterable[str]) -> str:
    """Capabilities in :data:`CAPABILITIES` order, comma-separated (for tables)."""
    have = {k for k, v in caps.items() if v} if isinstance(caps, Mapping) else set(caps)
    return ",".join(c for c in CAPABILITIES if c in have)
