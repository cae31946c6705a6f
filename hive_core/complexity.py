"""How hard a request is (Simple / Moderate / Complex / Expert) and what kind of task it is.

:func:`assess` is deterministic: one pass of one regular expression over the prompt, plus its
length. Each signal adds points :

=========================  ======  ====================================================
signal                     points  examples
=========================  ======  ====================================================
length                     0..4    <6 words 0, <25 1, <100 2, <400 3, more 4
hard words                 +3      complex, complicated, sophisticated, advanced, difficult
expert words               +3      prove, rigorous, formal verification, novel, research-grade
analysis words             +1      analyse, compare, evaluate, investigate, debug, explain why
design words               +2      design, architecture, trade-off, scalable, distributed, refactor
multi-step words           +1      step by step, first ... then, numbered lists
code                       +1/+2   code fences or code syntax (+2 with 30+ lines of code)
math                       +1      equations, integrals, derivatives, theorems, LaTeX
large output requested     +1      detailed, comprehensive, essay, report
requested size             +1/+2   "500 words" (+1), 1000 or more words/tokens/lines (+2)
easy words                 -1      simple, quick, brief, short, one word, yes or no
=========================  ======  ====================================================

Each kind counts once, plus one point when a second *distinct* word of that kind appears
(``design ... scalable``), so repeating a word never escalates.

Total <= 1 is simple, 2..3 moderate, 4..5 complex, >= 6 expert.

Task types (:data:`TASK_TYPES`) name the capabilities a task needs, the complexity assumed when
there is no prompt, and typical token counts (for cost estimates and the cost score).
:func:`classify_task` guesses the type of a prompt from the same kind of word lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hive_core.errors import ConfigError

__all__ = [
    "COMPLEXITIES",
    "COMPLEXITY_RANK",
    "TASK_TYPES",
    "Assessment",
    "TaskType",
    "assess",
    "classify_task",
    "parse_complexity",
    "task_type",
]

COMPLEXITIES: tuple[str, ...] = ("simple", "moderate", "complex", "expert")
COMPLEXITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(COMPLEXITIES)}


@dataclass(frozen=True, slots=True)
class TaskType:
    """A kind of task: capabilities it needs, default complexity, typical tokens in and out."""

    name: str
    capabilities: frozenset[str]
    complexity: str
    prompt_tokens: int
    completion_tokens: int
    description: str


def _task(name: str, caps: str, complexity: str, prompt: int, completion: int, description: str) -> TaskType:
    return TaskType(name, frozenset(caps.split()), complexity, prompt, completion, description)


TASK_TYPES: dict[str, TaskType] = {t.name: t for t in (
    _task("chat", "", "simple", 300, 300, "conversation and short questions"),
    _task("classification", "", "simple", 300, 20, "labels, yes/no, sentiment"),
    _task("translation", "", "simple", 500, 500, "translate text"),
    _task("summarization", "", "moderate", 3000, 400, "condense a document"),
    _task("extraction", "structured-output", "moderate", 2000, 300, "pull fields out as JSON"),
    _task("creative", "", "moderate", 300, 1200, "stories, poems, marketing copy"),
    _task("vision", "vision", "moderate", 1500, 400, "questions about images"),
    _task("code-generation", "programming", "complex", 800, 1500, "write new code"),
    _task("code-analysis", "programming", "complex", 3000, 800, "review, explain or debug code"),
    _task("tool-use", "tools", "complex", 2000, 500, "agents calling functions"),
    _task("reasoning", "reasoning", "complex", 500, 2000, "multi-step logic and planning"),
    _task("math", "reasoning", "complex", 300, 1500, "calculation and proofs"),
    _task("long-context", "long-context", "complex", 60000, 800, "questions over very long inputs"),
)}


def task_type(name: str) -> TaskType:
    """The task type called ``name``; :class:`ConfigError` listing the known ones otherwise."""
    try:
        return TASK_TYPES[name.strip().lower()]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}: one of {', '.join(TASK_TYPES)}") from None


def parse_complexity(value: str) -> str:
    """A complexity name in canonical form; :class:`ConfigError` otherwise."""
    name = value.strip().lower()
    if name not in COMPLEXITY_RANK:
        raise ConfigError(f"unknown complexity {value!r}: one of {', '.join(COMPLEXITIES)}")
    return name


_CODE_PATTERN = (
    r"```|\bdef \w+\(|\bclass \w+[:({]|=>|\bimport \w+|#include|\bSELECT\b.+\bFROM\b"
    r"|\breturn\b.*;|\bconst \w+ =|\bpublic static\b|\bfn \w+\(|\w+\([^)]*\)\s*\{"
)
_CODE = re.compile(_CODE_PATTERN, re.IGNORECASE)
_CODE_WORDS = re.compile(
    r"\b(?:code|coding|function|script|program|python|javascript|typescript|rust|golang|java|sql|regex"
    r"|api endpoint|unit tests?|stack trace|compiler|algorithm)\b",
    re.IGNORECASE,
)

# One alternation, one pass: each named group is a signal kind.
_SIGNALS = re.compile(
    r"(?P<hard>\b(?:complex|complicated|sophisticated|advanced|difficult|intricate|challenging)\b)"
    r"|(?P<expert>\b(?:prove|proof|rigorous\w*|formal(?:ly)? verif\w*|novel|research[- ]grade"
    r"|state[- ]of[- ]the[- ]art|publishable|phd)\b)"
    r"|(?P<analysis>\b(?:analy[sz]\w*|compare|comparison|evaluate|investigate|assess|debug\w*"
    r"|diagnose|critique|explain why|root cause)\b)"
    r"|(?P<design>\b(?:design\w*|architect\w*|trade-?offs?|scalab\w*|distributed|refactor\w*"
    r"|migrat\w*|microservices?|concurren\w*|optimi[sz]\w*)\b)"
    r"|(?P<steps>\bstep[- ]by[- ]step\b|\bfirst\b[^.]{0,80}\bthen\b|(?:^|\n)\s*(?:[2-9]\.|-\s)\s*\w)"
    rf"|(?P<code>{_CODE_PATTERN})"
    r"|(?P<math>\\frac|\\int|\\sum|\bintegral\b|\bderivative\b|\btheorem\b|\blemma\b|\bequation\b"
    r"|\bmatrix\b|\beigen\w*|\bprobability\b|\d\s*[-+*/^]\s*\d)"
    r"|(?P<big>\b(?:detailed|comprehensive|thorough|in[- ]depth|essay|report|full implementation"
    r"|complete implementation|whitepaper|extensive)\b)"
    r"|(?P<words>\b(?P<n>\d{3,6})\s*(?:words|tokens|lines)\b)"
    r"|(?P<easy>\b(?:simple|quick(?:ly)?|brief(?:ly)?|short|one[- ]word|yes or no|tl;?dr|hello|hi|thanks)\b)",
    re.IGNORECASE,
)
_POINTS = {"hard": 3, "expert": 3, "analysis": 1, "design": 2, "steps": 1, "code": 1, "math": 1, "big": 1,
           "easy": -1}
_LENGTH_STEPS = (6, 25, 100, 400)
_LEVELS = ((1, "simple"), (3, "moderate"), (5, "complex"))

_TASK_WORDS = re.compile(
    r"(?P<summarization>\bsummar\w*|\btl;?dr\b|\bcondense\b|\bkey points\b)"
    r"|(?P<translation>\btranslat\w*)"
    r"|(?P<creative>\b(?:poem|story|stories|lyrics|haiku|novel|slogan|creative|fiction|limerick)\b)"
    r"|(?P<extraction>\bextract\w*|\bparse\b|\bas json\b|\bjson schema\b)"
    r"|(?P<classification>\bclassify\b|\bcategori[sz]e\b|\bsentiment\b|\byes or no\b)"
    r"|(?P<vision>\b(?:image|picture|photo|screenshot|diagram)\b)"
    r"|(?P<math>\b(?:prove|theorem|integral|derivative|equation|solve for)\b|\\frac|\\int)"
    r"|(?P<reasoning>\b(?:step[- ]by[- ]step|reason\w*|logic\w*|puzzle|plan)\b)"
    r"|(?P<tooluse>\b(?:call the (?:api|tool)|use the tools?|function calling|agent)\b)"
    r"|(?P<review>\b(?:review|explain|debug\w*|bug|why does|what does|analy[sz]\w*|refactor\w*)\b)"
    r"|(?P<write>\b(?:write|implement|create|generate|build)\b)",
    re.IGNORECASE,
)
# Order decides ties: more specific kinds first.
_TASK_ORDER = ("summarization", "translation", "extraction", "classification", "math", "vision",
               "creative", "tooluse", "reasoning")


@dataclass(frozen=True, slots=True)
class Assessment:
    """What :func:`assess` found: complexity, task type, the signals behind them, token estimates."""

    complexity: str
    score: int
    task: str
    signals: tuple[str, ...]
    prompt_tokens: int
    completion_tokens: int


def _level(score: int) -> str:
    for limit, name in _LEVELS:
        if score <= limit:
            return name
    return "expert"


def classify_task(prompt: str, *, has_code: bool | None = None) -> str:
    """The most likely task type of a prompt (``chat`` when nothing stands out)."""
    if len(prompt) > 200_000:
        return "long-context"
    found = {m.lastgroup for m in _TASK_WORDS.finditer(prompt)}
    if has_code is None:
        has_code = bool(_CODE.search(prompt))
    if has_code or _CODE_WORDS.search(prompt):
        return "code-generation" if "write" in found and "review" not in found else "code-analysis"
    for kind in _TASK_ORDER:
        if kind in found:
            return "tool-use" if kind == "tooluse" else kind
    return "chat"


def assess(prompt: str | None, task: str | None = None) -> Assessment:
    """Complexity and task type of a request (see the module docstring for the rules).

    Without a prompt, the task's default complexity and typical token counts are used.
    """
    kind = task_type(task) if task else None
    if not prompt:
        chosen = kind or TASK_TYPES["chat"]
        return Assessment(chosen.complexity, 0, chosen.name, ("task default",), chosen.prompt_tokens,
                          chosen.completion_tokens)
    words = len(prompt.split())
    score = sum(words >= step for step in _LENGTH_STEPS)
    seen: dict[str, set[str]] = {}
    requested: int | None = None
    for match in _SIGNALS.finditer(prompt):
        group = match.lastgroup
        if group == "words":
            requested = max(requested or 0, int(match.group("n")))
        elif group is not None:
            seen.setdefault(group, set()).add(match.group().lower())
    for group, texts in seen.items():
        # A second distinct word of the same kind adds one point; repeating a word adds nothing.
        score += _POINTS[group] + (len(texts) >= 2 and _POINTS[group] > 0)
    if "code" in seen and prompt.count("\n") >= 30:
        score += 1
    if requested:
        score += 2 if requested >= 1000 else 1
        seen["size"] = {str(requested)}
    name = kind.name if kind else classify_task(prompt, has_code="code" in seen)
    typical = TASK_TYPES[name]
    completion = int(requested * 4 / 3) if requested else typical.completion_tokens
    signals = (f"{words} words", *sorted(seen))
    return Assessment(_level(score), score, name, signals, max(1, len(prompt) // 4), completion)
