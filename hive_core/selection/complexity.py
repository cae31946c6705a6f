"""How hard a request is (Simple / Moderate / Complex / Expert) and what kind of task it is.

:func:`assess` is deterministic: one pass of one regular expression over the prompt, plus its
length. Each signal adds points :

=========================  ======  ====================================================
signal                     points  examples
=========================  ======  ====================================================
length                     0..4    <6 words 0, <25 1, <100 2, <400 3, more 4
hard words                 +3      complex, complicated, sophisticated, advanced, difficult
expert words               +3      prove, rigorous, formal verification, novel, research-grade
analysis words             +1      analyse, compare, evaluate, assess, critique, investigate, debug,
                                   explain why (+1 more with a large-output word: "in-depth analysis")
design words               +2      design, architecture, trade-off, scalable, distributed, refactor
multi-step words           +1      step by step, first ... then, numbered lists
code                       +1/+2   code fences or code syntax (+2 with 30+ lines of code)
math                       +1      equations, integrals, derivatives, theorems, primes, LaTeX
large output requested     +1      detailed, comprehensive, essay, report
requested size             +1/+2   "500 words" (+1), 1000 or more words/tokens/lines (+2)
easy words                 -1      simple, quick, brief, short, one word, yes or no
=========================  ======  ====================================================

Each kind counts once, plus one point when a second *distinct* word of that kind appears
(``design ... scalable``), so repeating a word never escalates.

Total <= 1 is simple, 2..3 moderate, 4..5 complex, >= 6 expert.

An analysis asked in depth ("evaluate ... in depth", "a detailed comparison") asks for sustained
judgement, which is what separates a strong model from a cheap one: it scores one more than its two
words apart, so such a request is complex rather than moderate.
For tasks that work on a text the prompt carries (summarize, translate, classify, extract:
``Summarize this: <text>``), only the instruction before the first colon gives signals - the text
after it is material, and a quoted paragraph that mentions a "design" does not make a summary
hard; its length still counts.

Task types (:data:`TASK_TYPES`) name the capabilities a task needs, the complexity assumed when
there is no prompt, and typical token counts (for cost estimates and the cost score).
:func:`classify_task` guesses the type of a prompt from the same kind of word lists.
"""

from __future__ import annotations

import functools
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


# One row per task type: rows of a table are alike by nature (`duplicates` pairs them by shape).
TASK_TYPES: dict[str, TaskType] = {t.name: t for t in (
    _task("chat", "", "simple", 300, 300, "conversation and short questions"),
    _task("classification", "", "simple", 300, 20, "labels, yes/no, sentiment"),
    _task("translation", "", "simple", 500, 500, "translate text"),
    _task("summarization", "", "moderate", 3000, 400, "condense a document"),
    _task("extraction", "json-mode", "moderate", 2000, 300, "pull fields out as JSON"),
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


def _table(**kinds: str) -> dict[str, str]:
    return {word: kind for kind, words in kinds.items() for word in words.split()}


# Signals are looked up per distinct lower-case word (one regex pass to split words, then dict
# lookups): ~20x faster than one big case-insensitive alternation. Stems cover inflections.
_SIGNAL_WORDS = _table(
    hard="complex complicated sophisticated advanced difficult intricate challenging",
    expert="prove proof rigorous rigorously novel publishable phd state-of-the-art research-grade",
    analysis="compare comparison evaluate investigate assess diagnose critique",
    design="distributed microservice microservices tradeoff tradeoffs trade-off trade-offs",
    math="integral derivative theorem lemma equation matrix probability primes",
    big="detailed comprehensive thorough in-depth essay report whitepaper extensive",
    easy="simple quick quickly brief briefly short one-word tl;dr tldr hello hi thanks",
    steps="step-by-step",
)
_SIGNAL_STEMS = _table(
    analysis="analys analyz debugg evalu compar assess critiq",  # analysis, analyze, debugging, evaluating...
    design="design archit scalab refact migrat concur optimi optimiz",
    math="eigen",
)
_WORD = re.compile(r"[a-z][a-z0-9;'-]*")
_WORD_FIRST = re.compile(r"[a-z][a-z0-9;']*")
_SIGNAL_PHRASES = {
    "step by step": "steps", "explain why": "analysis", "root cause": "analysis",
    "yes or no": "easy", "one word": "easy", "in depth": "big", "full implementation": "big",
    "complete implementation": "big", "state of the art": "expert",
    "research grade": "expert", "formal verification": "expert",
    "debug": "analysis",
}
#: first word of a phrase -> the phrases starting with it (only prompts with that word are scanned)
_PHRASE_STARTS: dict[str, list[tuple[str, str]]] = {}
for _phrase, _kind in _SIGNAL_PHRASES.items():
    _PHRASE_STARTS.setdefault(_WORD_FIRST.match(_phrase).group(), []).append((_phrase, _kind))  # type: ignore[union-attr]
# The patterns below are compiled on first use (:func:`_rx`): a request without a prompt (``hive
# models recommend --task``) never needs them, and compiling them is ~1.5 ms of its start-up.
_FIRST_THEN = r"\bfirst\b[^.]{0,80}\bthen\b|(?:^|\n)\s*(?:[2-9]\.|-\s)\s*\w"
_ARITHMETIC = r"\d\s*[-+*/^]\s*\d"
_SIZE = r"\b(\d{3,6})\s*(?:words|tokens|lines)\b"
_CODE = (
    r"```|\bdef \w+\(|\bclass \w+[:({]|=>|\bimport \w+|#include|\bselect\b.+\bfrom\b"
    r"|\breturn\b.*;|\bconst \w+ =|\bpublic static\b|\bfn \w+\(|\)\s*\{"
)
#: every _CODE alternative contains one of these
_CODE_MARKS = ("`", "(", "=>", "{", ";", "import ", "#include", "select ", "const ", "class ")
_CODE_WORDS = frozenset(
    ["code", "coding", "function", "script", "program", "python", "javascript", "typescript", "rust", "golang", "java", "sql", "regex", "endpoint", "unittest", "compiler", "algorithm"]
)
_POINTS = {"hard": 3, "expert": 3, "analysis": 1, "design": 2, "steps": 1, "code": 1, "math": 1, "big": 1,
           "easy": -1}
_LENGTH_STEPS = (6, 25, 100, 400)
_LEVELS = ((1, "simple"), (3, "moderate"), (5, "complex"))

_TASK_WORDS = _table(
    summarization="summarize summarise summary summarization condense tl;dr tldr",
    translation="translate translation translating",
    creative="poem story stories lyrics haiku novel slogan creative fiction limerick",
    extraction="extract extraction parse json",
    classification="classify categorize categorise sentiment",
    vision="image picture photo screenshot diagram",
    math="prove theorem integral derivative equation",
    reasoning="reason reasoning logic logical puzzle plan",
    tooluse="agent tools",
    review="review explain debug debugging bug analyze analyse analysis refactor why",
    write="write implement create generate build",
)
#: "call the get_price function", "use the calculator tool": a request to call a tool
_TOOL_CALL = r"\b(?:call|use|invoke|run)\s+(?:the\s+)?[\w.-]+\s+(?:function|tool)s?\b"
#: tasks on a text the prompt carries after a colon (signals come from the instruction before it)
_MATERIAL_TASKS = frozenset({"summarization", "translation", "classification", "extraction"})
# Order decides ties: more specific kinds first.
_TASK_ORDER = ("summarization", "translation", "extraction", "classification", "math", "vision",
               "creative", "tooluse", "reasoning")


@functools.cache
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _signals(lower: str, words: set[str]) -> dict[str, set[str]]:
    """Signal kind -> the distinct words/phrases that triggered it."""
    seen: dict[str, set[str]] = {}
    for word in words:
        kind = _SIGNAL_WORDS.get(word) or _SIGNAL_STEMS.get(word[:5]) or _SIGNAL_STEMS.get(word[:6])
        if kind:
            seen.setdefault(kind, set()).add(word)
    for first in words & _PHRASE_STARTS.keys():
        for phrase, kind in _PHRASE_STARTS[first]:
            if phrase in lower:
                seen.setdefault(kind, set()).add(phrase)
    if "\\" in lower:
        for macro in ("\\frac", "\\int", "\\sum"):
            if macro in lower:
                seen.setdefault("math", set()).add(macro)
    # Cheap substring guards first: the regexes cost microseconds per prompt, the guards nanoseconds.
    if ("then" in lower or "\n" in lower) and _rx(_FIRST_THEN).search(lower):
        seen.setdefault("steps", set()).add("first-then")
    if _rx(_ARITHMETIC).search(lower):
        seen.setdefault("math", set()).add("arithmetic")
    if _has_code(lower):
        seen["code"] = {"code"}
    return seen


def _has_code(lower: str) -> bool:
    return any(mark in lower for mark in _CODE_MARKS) and bool(_rx(_CODE).search(lower))


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
    lower = prompt.lower()
    words = set(_WORD.findall(lower))
    return _classify(lower, words, _has_code(lower) if has_code is None else has_code)


def _classify(lower: str, words: set[str], has_code: bool) -> str:
    found = {_TASK_WORDS[w] for w in words if w in _TASK_WORDS}
    if "yes or no" in lower:
        found.add("classification")
    if "step by step" in lower:
        found.add("reasoning")
    if not has_code and ("function" in words or "tool" in words) and _rx(_TOOL_CALL).search(lower):
        return "tool-use"  # "call the get_price function": a tool to call, not code to write
    if has_code or not _CODE_WORDS.isdisjoint(words):
        return "code-generation" if "write" in found and "review" not in found else "code-analysis"
    for kind in _TASK_ORDER:
        if kind in found:
            return "tool-use" if kind == "tooluse" else kind
    return "chat"


#: the assessment of a request without a prompt, per task type (immutable, so built once: a
#: task-only selection is a dict lookup here)
_TASK_DEFAULTS: dict[str, Assessment] = {
    t.name: Assessment(t.complexity, 0, t.name, ("task default",), t.prompt_tokens, t.completion_tokens)
    for t in TASK_TYPES.values()
}


def assess(prompt: str | None, task: str | None = None) -> Assessment:
    """Complexity and task type of a request (see the module docstring for the rules).

    Without a prompt, the task's default complexity and typical token counts are used.
    """
    kind = task_type(task) if task else None
    if not prompt:
        return _TASK_DEFAULTS[kind.name if kind else "chat"]
    n_words = len(prompt.split())
    lower = prompt.lower()
    words = set(_WORD.findall(lower))
    seen = _signals(lower, words)
    if kind:
        name = kind.name
    else:
        name = "long-context" if len(prompt) > 200_000 else _classify(lower, words, "code" in seen)
    if name in _MATERIAL_TASKS and ":" in lower:
        # The signals of the instruction only: what follows its colon is the text to work on.
        lower = lower.split(":", 1)[0]
        words = set(_WORD.findall(lower))
        seen = _signals(lower, words)
    score = sum(n_words >= step for step in _LENGTH_STEPS)
    for group, texts in seen.items():
        # A second distinct word of the same kind adds one point; repeating a word adds nothing.
        score += _POINTS[group] + (len(texts) >= 2 and _POINTS[group] > 0)
    if "code" in seen and prompt.count("\n") >= 30:
        score += 1
    if "analysis" in seen and "big" in seen:
        score += 1
    requested = max((int(n) for n in _rx(_SIZE).findall(lower)), default=0) if ("words" in words or "tokens" in words
                                                                        or "lines" in words) else 0
    if requested:
        score += 2 if requested >= 1000 else 1
        seen["size"] = {str(requested)}
    typical = TASK_TYPES[name]
    completion = int(requested * 4 / 3) if requested else typical.completion_tokens
    signals = (f"{n_words} words", *sorted(seen))
    return Assessment(_level(score), score, name, signals, max(1, len(prompt) // 4), completion)
