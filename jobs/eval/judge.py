"""The judge loop: grade answers with a judge model and record each grade as a ``quality_rating``.

    report = evaluate(session, log, samples, judge="openai/gpt-4.1-mini")

Each sample becomes one judge request through the :class:`hive_core.session.Session` - reserved
against the budget, reported to the circuit breaker, billed and recorded like any request, with
``request_type="judge"`` (so analytics can tell what grading cost) - whose messages are the blind
rubric prompt of the sample's task category (:mod:`jobs.eval.rubrics`). The judge's ``SCORE: N`` is
recorded as ``quality_rating(request_id=<the graded request>, model=<the model that answered>,
score=N/10, rater="judge:<judge model>")``; the rankings weigh it against people's ratings
(:mod:`jobs.rankings.quality`).

Skipped, and counted in the report: answers of the judge model itself (a model grading its own
answers is biased toward them), judge answers without a score, and judge requests that failed. A
budget refusal (``BudgetExceeded``) ends the run: what was graded before it stays recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hive_core.errors import BudgetExceeded, OpenRouterError
from hive_core.store.events import QualityRating
from jobs.eval.rubrics import judge_messages, parse_score

if TYPE_CHECKING:
    from hive_core.session import Session
    from hive_core.store.events import EventSink
    from jobs.eval.samples import Sample

__all__ = ["DEFAULT_JUDGE", "EvalReport", "evaluate", "judge_rater"]

#: the judge when none is named: strong enough to grade the rubrics, cheap enough to run nightly
DEFAULT_JUDGE = "openai/gpt-4.1-mini"
#: output cap of one judgement ("SCORE: N" and a one-line reason)
JUDGE_MAX_TOKENS = 80


def judge_rater(judge: str) -> str:
    """The ``rater`` a judge's ratings carry."""
    return f"judge:{judge}"


@dataclass
class EvalReport:
    """What a run graded: per model, the number of grades and their mean; what it skipped; its cost."""

    judge: str
    graded: int = 0
    by_model: dict[str, list[float]] = field(default_factory=dict)
    skipped_self: int = 0
    unscored: int = 0
    failed: int = 0
    answer_failures: int = 0
    judge_cost_usd: float = 0.0
    stopped_by_budget: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``hive-jobs eval --json``)."""
        return {
            "judge": self.judge, "graded": self.graded, "skipped_self": self.skipped_self,
            "unscored": self.unscored, "failed": self.failed, "answer_failures": self.answer_failures,
            "judge_cost_usd": self.judge_cost_usd, "stopped_by_budget": self.stopped_by_budget,
            "models": {m: {"ratings": len(s), "mean": sum(s) / len(s)} for m, s in sorted(self.by_model.items())},
        }


def evaluate(session: Session, sink: EventSink, samples: Sequence[Sample], *, judge: str = DEFAULT_JUDGE,
             on_graded: Callable[[Sample, float], object] | None = None) -> EvalReport:
    """Grade ``samples`` with ``judge`` (a catalog id or short name) and record every grade into
    ``sink`` (the Session's own, usually: the judge requests are recorded there too)."""
    from hive_core.ask import AskOptions

    judge_id = session.resolve([judge])[0]
    report = EvalReport(judge_id)
    settings = session.settings
    options = AskOptions(stream=False, max_tokens=JUDGE_MAX_TOKENS, request_type="judge",
                         params={"temperature": 0})
    for sample in samples:
        if sample.model == judge_id:
            report.skipped_self += 1
            continue
        try:
            answer = session.ask(judge_messages(sample.task, sample.prompt, sample.answer), [judge_id], options)
        except BudgetExceeded as exc:
            report.stopped_by_budget = str(exc)
            break
        except OpenRouterError:
            report.failed += 1
            continue
        report.judge_cost_usd += answer.result.cost_usd or 0.0
        score = parse_score(answer.result.text)
        if score is None:
            report.unscored += 1
            continue
        sink.record(QualityRating(
            request_id=sample.request_id, score=score, model=sample.model, rater=judge_rater(judge_id),
            app=settings.app, user=settings.user))
        report.graded += 1
        report.by_model.setdefault(sample.model, []).append(score)
        if on_graded is not None:
            on_graded(sample, score)
    return report
