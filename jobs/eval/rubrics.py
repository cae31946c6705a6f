"""The judge's rubrics: what a good answer is, per task category, and the judge prompt built from them.

Every answer is graded on the same three core criteria, then on its task category's own:

=================  ==========================================================================
core (every task)  correct (no false statement, no wrong result); answers what was asked
                   (follows every instruction: format, length, language); no padding or
                   refusal of a harmless request
chat               direct and helpful; a clear answer first, detail after
classification     exactly one of the labels asked for, in the form asked for; no hedging
translation        meaning kept (nothing added or dropped); fluent in the target language
summarization      every key point of the source, nothing that is not in it; much shorter
extraction         valid JSON (or the format asked); every field present and taken from the
                   input, nothing invented
creative           original, fits the requested form, tone and audience
vision             describes what the image shows, not what images usually show
code-generation    runs as written; handles edge cases; idiomatic; no invented APIs
code-analysis      finds the real defects; explanations match what the code does
tool-use           calls the right tool with valid arguments; uses the results faithfully
reasoning          every step follows from the last; the conclusion answers the question
math               the final result is right; the working shows how it was reached
long-context       grounded in the given text, pointing to where; nothing from outside it
=================  ==========================================================================

Scale: the judge replies ``SCORE: N`` with N an integer 0..10 (10 = meets every criterion; 5 =
usable after corrections; 0 = wrong or unusable), which Hive records as N / 10. A coarse integer
scale is what judges grade consistently; a finer one adds noise, not information.

The prompt is *blind*: it shows the request and the answer, never the model's name (a judge
rates answers of its own family higher when it knows). Request and answer are cut to
:data:`MAX_CHARS` each, which bounds what one judgement costs. An untagged request (no task
category) is graded as ``chat``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CORE", "JUDGE_MARKER", "MAX_CHARS", "RUBRICS", "Rubric", "judge_messages", "parse_score", "rubric_for"]

#: the first words of every judge system prompt (the emulator recognises judge requests by them)
JUDGE_MARKER = "You are Hive's answer judge."
#: characters of the request and of the answer shown to the judge
MAX_CHARS = 6000

CORE = (
    "correct: no false statement and no wrong result",
    "answers what was asked and follows every instruction (format, length, language)",
    "no padding, and no refusal of a harmless request",
)


@dataclass(frozen=True)
class Rubric:
    """The criteria of one task category (after the core ones)."""

    task: str
    criteria: tuple[str, ...]

    def lines(self) -> list[str]:
        """Every criterion the judge checks, core first."""
        return [*CORE, *self.criteria]


# One rubric per task category of hive_core.selection.complexity.TASK_TYPES (a test checks the sets match).
RUBRICS: dict[str, Rubric] = {r.task: r for r in (
    Rubric("chat", ("direct and helpful: a clear answer first, detail after",)),
    Rubric("classification", ("exactly one of the labels asked for, in the form asked for", "no hedging")),
    Rubric("translation", ("the meaning is kept: nothing added or dropped", "fluent in the target language")),
    Rubric("summarization", ("every key point of the source and nothing that is not in it", "much shorter than the source")),
    Rubric("extraction", ("valid JSON or the format asked for", "every field present, taken from the input, nothing invented")),
    Rubric("creative", ("original", "fits the requested form, tone and audience")),
    Rubric("vision", ("describes what the image shows, not what images usually show",)),
    Rubric("code-generation", ("runs as written and handles edge cases", "idiomatic, with no invented APIs")),
    Rubric("code-analysis", ("finds the real defects", "explanations match what the code does")),
    Rubric("tool-use", ("calls the right tool with valid arguments", "uses the tool results faithfully")),
    Rubric("reasoning", ("every step follows from the previous one", "the conclusion answers the question")),
    Rubric("math", ("the final result is right", "the working shows how it was reached")),
    Rubric("long-context", ("grounded in the given text, pointing to where", "nothing from outside the text")),
)}

_SCORE = re.compile(r"SCORE:\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def rubric_for(task: str | None) -> Rubric:
    """The rubric of ``task``; ``chat`` for an untagged request or a category without one."""
    return RUBRICS.get(task or "chat") or RUBRICS["chat"]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "\n[... cut]"


def judge_messages(task: str | None, request: str, answer: str) -> list[dict[str, str]]:
    """The judge's chat messages for one (request, answer) of ``task`` (blind: no model name)."""
    rubric = rubric_for(task)
    system = (f"{JUDGE_MARKER} Grade one answer to one request against the rubric. Reply with one line "
              "`SCORE: N` (N an integer from 0 to 10: 10 meets every criterion, 5 is usable after "
              "corrections, 0 is wrong or unusable), then one line `REASON: ...`.")
    criteria = "\n".join(f"- {line}" for line in rubric.lines())
    user = (f"Task category: {rubric.task}\nRubric:\n{criteria}\n\n"
            f"Request:\n<<<\n{_cut(request)}\n>>>\n\nAnswer:\n<<<\n{_cut(answer)}\n>>>")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_score(text: str) -> float | None:
    """The judge's ``SCORE: N`` as a rating in 0..1 (N / 10, clamped); ``None`` when it gave none."""
    found = _SCORE.search(text)
    if found is None:
        return None
    return min(max(float(found.group(1)), 0.0), 10.0) / 10.0
