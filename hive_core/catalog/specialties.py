"""What a model is *for*, when it is not a general text model: the selector leaves such models out of
an implicit choice unless the request asks for what they do (naming or ``--allow``-ing one always works).

Why: ranked on price and priors alone, an audio model (``openai/gpt-audio-mini``) was a fallback
for "Simple question", a tool-selection variant (``...-customtools``) and a coding model
(``...-codex``) answered "Complex analysis task", and an older catalog sent a general question to
``deepcoder-14b-preview``. A person would pick none of them.

============  ==============================================  ==========================================
specialty     from the catalog entry (data first)             chosen implicitly for
============  ==============================================  ==========================================
media-output  ``architecture.output_modalities`` has more     never: Hive's requests want text back
              than text (older entries: the right side of
              ``architecture.modality``, ``text->text+image``)
guard         the description presents a safety classifier    never: it labels content, it does not
              (guardrail, content safety, safety model,       answer it
              moderates ...); names ``guard``/``safeguard``/
              ``content-safety`` when there is no description
research      the description says it always uses a tool      never: it bills web searches (or several
              (``always uses the 'web_search' tool``), is a   agents) nobody asked for
              research-focused model that searches on its
              own, or a multi-agent system; names ``deep-research``/
              ``multi-agent`` when there is no description
tools         the description's first sentence presents a     requests that need ``tools`` (the
              variant tuned for tool selection; the name      tool-use task, ``--capability tools``)
              ``customtools`` (the description is often cut)
code          the description's first sentence presents a     code tasks (code-generation,
              coding model (coding model/agent/series, code   code-analysis) and ``--capability
              generation model, code-patching, code edits,    programming``
              not "the best coding model": a general
              model's boast),
              a codebase); or the name is a code line
              (coder, codex, codestral, devstral, ``-code``)
============  ==============================================  ==========================================

Only the *first sentence* of a description is read for tools and code, because that is where a
catalog entry says what the model is; later sentences of general models praise their coding and
tool use too ("strong performance in code generation"), which must not make them specialists.
Names are read as well for code and tools (and alone, for guard and research, when an entry has no
description): a code line's name is what its vendor calls it, and descriptions are cut at ~200
characters in some catalog eras. The first matching row wins, in the table's order.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

__all__ = ["SPECIALTIES", "output_modalities", "specialty"]

#: every specialty, in the order the rules are tried
SPECIALTIES: tuple[str, ...] = ("media-output", "guard", "research", "tools", "code")

# Patterns (case-insensitive), compiled on first use by :func:`_rx`: only parsing a ``/models``
# document needs them, and a catalog is usually loaded from its parse cache (compiling all of them
# would be a few percent of `hive models recommend`).
_GUARD_DESCRIPTION = r"guardrail|content[- ]safety|safety (?:reasoning )?(?:model|classifi)|\bmoderat(?:es|ion model)"
_GUARD_NAME = r"guard\b|safeguard|content-safety"
_RESEARCH_DESCRIPTION = (
    r"always uses the \W?\w+\W? tool|\bmultiple agents\b|\bresearch-focused model|autonomously searches")
_RESEARCH_NAME = r"deep-research|multi-agent"
_TOOLS_SENTENCE = r"\bvariant\b[^.]*\btool (?:selection|use|calling)\b"
_TOOLS_NAME = r"customtools|custom-tools"
_CODE_SENTENCE = (
    r"(?<!best )\bcod(?:ing|e)[- ](?:model|agent|series|specialist|generation model)"
    r"|\bagentic coding model|code-patching|code-specific|\bmodel for [^.]{0,40}\bcode edits|\bcodebase\b"
)
_CODE_NAME = r"coder|codex|codestral|devstral|[-/ ]code(?:\b|$)"
#: the end of a description's first sentence: a full stop, ! or ? before white space, or a line break
_SENTENCE_END = r"[.!?](?:\s|$)|\n"


@functools.cache
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def output_modalities(architecture: object) -> tuple[str, ...]:
    """What a model answers with: ``architecture.output_modalities``, or the right side of the older
    ``architecture.modality`` (``text+image->text``); ``("text",)`` when the entry says nothing."""
    if not isinstance(architecture, Mapping):
        return ("text",)
    listed = architecture.get("output_modalities")
    if isinstance(listed, list) and listed and all(isinstance(m, str) for m in listed):
        return tuple(listed)
    modality = architecture.get("modality")
    if isinstance(modality, str) and "->" in modality:
        return tuple(modality.split("->", 1)[1].split("+"))
    return ("text",)


def _first_sentence(description: str) -> str:
    found = _rx(_SENTENCE_END).search(description)
    return description[: found.start()] if found else description


def specialty(*, model_id: str, name: str, description: str, outputs: Iterable[str]) -> str | None:
    """The model's specialty (see the module docstring), ``None`` for a general text model."""
    if any(m != "text" for m in outputs):
        return "media-output"
    names = f"{model_id} {name}"
    first = _first_sentence(description)
    if _rx(_GUARD_DESCRIPTION).search(description) or (not description and _rx(_GUARD_NAME).search(names)):
        return "guard"
    if _rx(_RESEARCH_DESCRIPTION).search(description) or (not description and _rx(_RESEARCH_NAME).search(names)):
        return "research"
    if _rx(_TOOLS_SENTENCE).search(first) or _rx(_TOOLS_NAME).search(names):
        return "tools"
    if _rx(_CODE_SENTENCE).search(first) or _rx(_CODE_NAME).search(names):
        return "code"
    return None
