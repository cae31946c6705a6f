"""Answer quality and the judge: how the emulator lets Hive's evaluation loop run offline.

Each model has an *answer quality* in [0, 1] (default :data:`DEFAULT_QUALITY`), set like the faults:
``Emulator(quality={"openai/gpt-4o-mini": 0.2})``, ``hive-emulator --quality MODEL=Q`` or
``POST /_emulator/quality`` with ``{"MODEL": Q, ...}`` (``GET`` shows them; a reset restores the
start-up set).

* A free-text answer of a model whose quality was *set* begins with the tag ``[quality Q]`` (its
  first answer token; the answer keeps its length). Models left at the default answer as before.
* A *judge request* (its system message begins with :data:`JUDGE_MARKER`, as Hive's judge prompts
  do: ``jobs.eval.rubrics``) is answered ``SCORE: N`` (N in 0..10) followed by a short reason. N is
  the judged answer's quality x 10, rounded, moved by at most one point by a hash of the answer, so
  the same answer always gets the same score. The quality comes from the tag in the judged
  answer; an answer without one scores as :data:`DEFAULT_QUALITY`.

The judge never learns which model answered (Hive's judge prompts are blind): the tag travels in
the answer text itself, which is also what Hive stores with ``HIVE_STORE_CONTENT``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hive_emulator.faults import unit_hash

__all__ = ["DEFAULT_QUALITY", "JUDGE_MARKER", "judge_verdict", "parse_quality", "quality_tag", "validate_qualities"]

#: the quality of a model nobody set
DEFAULT_QUALITY = 0.75
#: the first words of a judge request's system message (Hive's jobs.eval.rubrics writes them)
JUDGE_MARKER = "You are Hive's answer judge."
_TAG = re.compile(r"\[quality (\d(?:\.\d+)?)\]")


def validate_qualities(raw: Mapping[str, Any]) -> dict[str, float]:
    """``{model: quality}`` checked (a model id, a number in 0..1); ``ValueError`` names the bad entry."""
    out: dict[str, float] = {}
    for model, value in raw.items():
        if not isinstance(model, str) or not model:
            raise ValueError(f"bad model {model!r}: a model id")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"quality of {model} must be a number in 0..1, got {value!r}")
        out[model] = float(value)
    return out


def parse_quality(spec: str) -> tuple[str, float]:
    """``MODEL=Q`` (the ``--quality`` flag) -> ``(model, q)``; ``ValueError`` if bad."""
    model, sep, value = spec.rpartition("=")
    try:
        quality = float(value)
    except ValueError:
        quality = -1.0
    if not sep or not model or not 0.0 <= quality <= 1.0:
        raise ValueError(f"bad quality {spec!r}: expected MODEL=Q with Q in 0..1")
    return model, quality


def quality_tag(quality: float) -> str:
    """The tag that opens an answer of a model whose quality was set."""
    return f"[quality {quality:.2f}] "


def _is_judge_request(messages: Any) -> bool:
    if not isinstance(messages, list):
        return False
    return any(isinstance(m, dict) and m.get("role") == "system" and isinstance(m.get("content"), str)
               and m["content"].startswith(JUDGE_MARKER) for m in messages)


def judge_verdict(messages: Any, seed: int) -> str | None:
    """The judge's answer to ``messages``, or ``None`` when they are no judge request."""
    if not _is_judge_request(messages):
        return None
    judged = next((m["content"] for m in reversed(messages)
                   if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)), "")
    found = _TAG.search(judged)
    quality = float(found.group(1)) if found else DEFAULT_QUALITY
    nudge = round(2 * unit_hash(seed, "judge", judged) - 1)  # -1, 0 or +1: the same answer, the same score
    score = min(10, max(0, round(10 * quality) + nudge))
    return f"SCORE: {score}\nREASON: the answer reads as {'good' if score >= 7 else 'mixed' if score >= 4 else 'poor'}."
