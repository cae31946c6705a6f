"""What a judge grades: stored answers of the user's own traffic, or fresh answers to the built-in prompts.

* :func:`stored_samples` - requests of a period whose text the user opted to store
  (``HIVE_STORE_CONTENT=true``: ``<data>/content/YYYY-MM-DD.jsonl``, :mod:`hive_core.store.content`)
  and that the judge has not rated yet (the named query ``reports/eval_candidates``: answered,
  not a judge's own request). A deterministic sample of at most ``limit``: the requests whose
  hash of the id is smallest, so a rerun picks the same ones and a later run the next ones.
* :func:`benchmark_samples` - each model's answers to :data:`hive_core.benchmark.PROMPT_SET`,
  asked now through the Session (recorded as ``benchmark`` requests with the prompt's task).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hive_core.session import Session
    from hive_core.settings import Settings

__all__ = ["Sample", "benchmark_samples", "stored_samples"]


@dataclass(frozen=True)
class Sample:
    """One answer to grade: the request it answered, the model that answered, and the texts."""

    request_id: str
    model: str
    task: str | None
    prompt: str
    answer: str


def _texts(settings: Settings, since: date, until: date) -> dict[str, tuple[str, str, str]]:
    """request_id -> (model, prompt, response) from the stored content of since..until (and the
    day after: a request near midnight is stored under the day its answer finished)."""
    out: dict[str, tuple[str, str, str]] = {}
    day = since
    while day <= until + timedelta(days=1):
        path = settings.datadir.content_day(day)
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    item = json.loads(line)
                    out[str(item["request_id"])] = (str(item["model"]), str(item["prompt"]), str(item["response"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash mid-append: nothing to grade
        day += timedelta(days=1)
    return out


def _order(request_id: str) -> bytes:
    return hashlib.blake2b(request_id.encode(), digest_size=8).digest()


def stored_samples(settings: Settings, since: date, until: date, *, rater: str, limit: int) -> list[Sample]:
    """At most ``limit`` stored answers of since..until that ``rater`` has not rated yet."""
    texts = _texts(settings, since, until)
    if not texts:
        return []
    from queries import connect, named_table

    with connect(settings.data_dir, warn=False) as store:
        rows = named_table(store, "reports/eval_candidates",
                           {"since": since, "until": until, "rater": rater}).to_pylist()
    found = []
    for row in rows:
        stored = texts.get(row["request_id"])
        if stored is None or not stored[2].strip():
            continue
        model, prompt, answer = stored
        found.append(Sample(row["request_id"], row["model"] or model, row["task_category"], prompt, answer))
    found.sort(key=lambda s: _order(s.request_id))
    return found[:limit]


def benchmark_samples(session: Session, models: Sequence[str], *, max_tokens: int = 512) -> tuple[list[Sample], int]:
    """Each model's answers to the built-in prompts, and how many requests failed (not graded)."""
    from hive_core.benchmark import answer_prompts

    answers = answer_prompts(session, session.resolve(models), max_tokens=max_tokens)
    samples = [Sample(a.request_id, a.model, a.prompt.task, a.prompt.text, a.text)
               for a in answers if a.text is not None]
    return samples, len(answers) - len(samples)
