"""``hive models benchmark``: the same prompts against several models, real calls, one comparison table.

Every request is an ask of one model through the Session's async twin (:meth:`hive_core.session.Session.aio`):
streamed so TTFT is measured, at most ``concurrency`` in flight, reserved against the budget and
reported to the circuit breaker like any other request, and recorded with
``request_type="benchmark"`` (so analytics and suggestions can leave it out). Per model: success
rate, TTFT and latency P50/P95 (successful requests), mean tokens/s, cost per request.
``--top N`` takes the N best-ranked models of the ranking table (``*`` rows, balanced score).

The built-in prompts (:data:`PROMPT_SET`) carry their task category, so the answers can be graded
with that category's rubric: :func:`answer_prompts` asks each model each prompt (recorded with
the prompt's ``task_category``) and hands back the answer texts, which ``hive-jobs eval
--benchmark`` gives to a judge (``jobs.eval``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core import stats
from hive_core.errors import ConfigError, OpenRouterError
from hive_core.shutdown import run_async

if TYPE_CHECKING:
    from hive_core.openrouter.results import ChatResult
    from hive_core.session import Session
    from hive_core.store.datadir import DataDir

__all__ = [
    "DEFAULT_PROMPTS",
    "PROMPT_SET",
    "BenchmarkAnswer",
    "BenchmarkPrompt",
    "ModelResult",
    "answer_prompts",
    "benchmark",
    "format_table",
    "load_prompts",
    "top_models",
]


@dataclass(frozen=True)
class BenchmarkPrompt:
    """A built-in prompt and the task category whose rubric grades its answers."""

    task: str
    text: str


#: one prompt per common task category, each with a checkable answer
PROMPT_SET = (
    BenchmarkPrompt("chat", "Explain in two sentences why the sky is blue."),
    BenchmarkPrompt("code-generation", "Write a Python function that reverses a linked list."),
    BenchmarkPrompt("summarization", "Summarise the plot of Hamlet in three sentences."),
    BenchmarkPrompt("math", "What is 17 * 23? Answer with the number only."),
    BenchmarkPrompt("classification", "Is this review positive or negative? \"The battery died after two days.\" "
                                      "Answer with one word."),
    BenchmarkPrompt("extraction", "Return JSON with keys name and year from: \"Ada Lovelace published her notes "
                                  "in 1843.\""),
    BenchmarkPrompt("translation", "Translate into French: \"The meeting moved to Thursday at ten.\""),
    BenchmarkPrompt("reasoning", "A bat and a ball cost $1.10; the bat costs $1.00 more than the ball. "
                                 "What does the ball cost? Explain briefly."),
)
#: the prompt texts (``hive models benchmark`` without ``--prompts``)
DEFAULT_PROMPTS = tuple(p.text for p in PROMPT_SET)


@dataclass(frozen=True)
class BenchmarkAnswer:
    """One model's answer to one built-in prompt (``text`` None when the request failed)."""

    model: str
    prompt: BenchmarkPrompt
    request_id: str
    text: str | None
    error: str | None = None


@dataclass
class ModelResult:
    """One model's results over the prompt set."""

    model: str
    requests: int = 0
    successes: int = 0
    latency_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: ChatResult | OpenRouterError) -> None:
        self.requests += 1
        if isinstance(outcome, OpenRouterError):
            self.errors[outcome.status_name] = self.errors.get(outcome.status_name, 0) + 1
            return
        self.successes += 1
        self.latency_ms.append(outcome.latency_ms)
        if outcome.ttft_ms is not None:
            self.ttft_ms.append(outcome.ttft_ms)
        if outcome.tokens_per_s is not None:
            self.tokens_per_s.append(outcome.tokens_per_s)
        if outcome.cost_usd is not None:
            self.costs.append(outcome.cost_usd)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "requests": self.requests, "successes": self.successes,
            "success_rate": self.successes / self.requests if self.requests else None,
            "ttft_p50_ms": stats.percentile(self.ttft_ms, 0.5), "ttft_p95_ms": stats.percentile(self.ttft_ms, 0.95),
            "latency_p50_ms": stats.percentile(self.latency_ms, 0.5),
            "latency_p95_ms": stats.percentile(self.latency_ms, 0.95),
            "tokens_per_s": sum(self.tokens_per_s) / len(self.tokens_per_s) if self.tokens_per_s else None,
            "cost_per_request_usd": sum(self.costs) / len(self.costs) if self.costs else None,
            "errors": self.errors,
        }


def load_prompts(path: Path | None) -> list[str]:
    """Prompts from a file (one per line, or a JSON list of strings); the built-in set without one."""
    import json

    if path is None:
        return list(DEFAULT_PROMPTS)
    text = Path(path).read_text()
    if text.lstrip().startswith("["):
        prompts = [str(p) for p in json.loads(text)]
    else:
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise ConfigError(f"{path}: no prompts")
    return prompts


def top_models(datadir: DataDir, n: int) -> list[str]:
    """The ``n`` best models of the ranking table by balanced score (all tasks)."""
    import pyarrow.parquet as pq

    path = datadir.rankings_file
    if not path.exists():
        raise ConfigError(f"no ranking table at {path}: run `hive-jobs rollup --daily`, or pass --models")
    rows = [r for r in pq.ParquetFile(path).read().to_pylist() if r["task_category"] == "*"]
    rows.sort(key=lambda r: -(r["score_balanced"] or 0.0))
    return [r["model"] for r in rows[:n]]


def benchmark(
    session: Session, models: Sequence[str], prompts: Sequence[str], *, requests: int, concurrency: int,
    max_tokens: int = 256, on_done: Callable[[], object] | None = None,
) -> list[dict[str, Any]]:
    """Send ``requests`` requests per model (cycling through ``prompts``); one summary per model.

    A budget refusal (``BudgetExceeded``) stops the benchmark; a failed request is counted.
    """
    if not models:
        raise ConfigError("no models to benchmark: pass --models or --top")
    results = {m: ModelResult(m) for m in models}
    # SIGTERM cancels the run like Ctrl-C: every request in flight records its cancelled outcome
    # and partial usage (settling its reservation), then Terminated ends the command (exit 143).
    run_async(_run(session, results, prompts, requests, concurrency, max_tokens, on_done))
    return [results[m].as_dict() for m in models]


async def _run(session: Session, results: dict[str, ModelResult], prompts: Sequence[str], requests: int,
               concurrency: int, max_tokens: int, on_done: Callable[[], object] | None) -> None:
    from hive_core.ask import AskOptions

    gate = asyncio.Semaphore(concurrency)
    options = AskOptions(max_tokens=max_tokens, request_type="benchmark")
    async with session.aio() as aio:

        async def one(model: str, prompt: str) -> None:
            async with gate:
                try:
                    results[model].add((await aio.ask(prompt, [model], options)).result)
                except OpenRouterError as exc:
                    results[model].add(exc)
                finally:
                    if on_done is not None:
                        on_done()

        await asyncio.gather(*(one(m, prompts[i % len(prompts)]) for m in results for i in range(requests)))


def answer_prompts(session: Session, models: Sequence[str], prompts: Sequence[BenchmarkPrompt] = PROMPT_SET,
                   *, max_tokens: int = 512) -> list[BenchmarkAnswer]:
    """Ask each model each prompt once through ``session`` (reserved, recorded with
    ``request_type="benchmark"`` and the prompt's task category) and return the answers. A failed
    request is an answer with ``error`` set; a budget refusal (``BudgetExceeded``) ends the run."""
    from hive_core.ask import AskOptions
    from hive_core.ids import new_request_id

    out = []
    for model in models:
        for prompt in prompts:
            request_id = new_request_id()
            options = AskOptions(stream=False, max_tokens=max_tokens, request_type="benchmark",
                                 task_category=prompt.task, request_id=request_id)
            try:
                answer = session.ask(prompt.text, [model], options)
            except OpenRouterError as exc:  # BudgetExceeded is no OpenRouterError: it ends the run
                out.append(BenchmarkAnswer(model, prompt, request_id, None, exc.status_name))
                continue
            out.append(BenchmarkAnswer(model, prompt, request_id, answer.result.text))
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    """The comparison table (``hive models benchmark`` prints it)."""
    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    width = max([len("model"), *(len(r["model"]) for r in rows)])
    lines = [f"{'model':<{width}} {'success':>8} {'TTFT p50':>9} {'TTFT p95':>9} {'lat p50':>9} {'lat p95':>9} "
             f"{'tok/s':>7} {'$/request':>11}"]
    for r in rows:
        lines.append(f"{r['model']:<{width}} {num(r['success_rate'] and 100 * r['success_rate'], '.1f') + '%':>8} "
                     f"{num(r['ttft_p50_ms'], '.0f'):>9} {num(r['ttft_p95_ms'], '.0f'):>9} "
                     f"{num(r['latency_p50_ms'], '.0f'):>9} {num(r['latency_p95_ms'], '.0f'):>9} "
                     f"{num(r['tokens_per_s'], '.0f'):>7} {num(r['cost_per_request_usd'], '.6f'):>11}")
    return "\n".join(lines)
