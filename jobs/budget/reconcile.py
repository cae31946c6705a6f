"""``hive-jobs reconcile``: replace estimated or unknown costs with what OpenRouter billed.

Cancelled and cut streams end without a ``usage`` chunk, so their ``usage`` event carries an
estimate (``cost_source=estimated``) or nothing (``unknown``). OpenRouter's ``GET /generation``
knows what was billed. For each such event that has a generation id and was not corrected yet,
this fetches the record and appends a new ``usage`` event with ``cost_source=billed`` and
``supersedes=<old event_id>`` (the store is append-only: nothing is edited; the ``usage`` view
hides superseded events). Running it again corrects nothing twice: an event that some event
supersedes is skipped. A generation the API does not know yet (``404``: the record lags the
completion) is left for the next run.

Two runs at once (cron and a user) would both find the same events and both correct them - the cost
then counted twice, for good. A run holds the ``reconcile`` job lock from its read until its
corrections are on disk, so the second waits and finds nothing left; and the ``usage`` view keeps
one correction per event (the lowest ``event_id``) should an older or foreign writer add a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive_core.errors import AuthError, NotFound, OpenRouterError
from hive_core.store.datadir import DataDir
from hive_core.store.events import Usage
from hive_core.store.lock import DEFAULT_LOCK_TIMEOUT_S, job_lock

if TYPE_CHECKING:
    from hive_core.openrouter.client import OpenRouterClient
    from jobs.budget.alerts import FlushingSink

__all__ = ["LOCK_NAME", "ReconcileReport", "Unbilled", "corrected_usage", "find_unbilled", "reconcile"]

#: the job lock under ``<data>/state/`` that one run holds from its read to its last write
LOCK_NAME = "reconcile"


@dataclass(frozen=True)
class Unbilled:
    """A usage event whose cost was not billed, and the stream outcome of its request (if streamed)."""

    event_id: str
    request_id: str
    generation_id: str
    model: str
    provider: str | None
    request_type: str
    task_category: str | None
    app: str | None
    user: str | None
    tags: list[str]
    cost_source: str
    outcome: str | None
    #: when the original was recorded: the correction carries the same time, so it lands in the
    #: same day's partition and that day's rollup is redone (no cost counted on two days)
    ts: datetime
    #: the gateway's virtual key it came with: the correction counts against the same key
    key_id: str | None = None


@dataclass
class ReconcileReport:
    """What one run did: events looked at, corrected, still pending (404) and failed (other errors)."""

    # (counts and lists, like every job's report: alike by shape, nothing shared to factor out)
    checked: int = 0
    corrected: int = 0
    pending: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    corrected_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The run as ``hive-jobs reconcile --json`` prints it: each failure as ``{generation_id, error}``."""
        return {"checked": self.checked, "corrected": self.corrected, "pending": list(self.pending),
                "failed": [{"generation_id": g, "error": e} for g, e in self.failed],
                "corrected_usd": self.corrected_usd}


def find_unbilled(data_dir: Path) -> list[Unbilled]:
    """Usage events in ``data_dir`` that still need their billed cost (oldest first)."""
    from queries import connect, load, run_sql

    with connect(data_dir, warn=False) as store:
        rows = run_sql(store, load("reports/unbilled_usage")).fetchall()
    return [
        Unbilled(event_id=r[0], request_id=r[1], generation_id=r[2], model=r[3], provider=r[4], request_type=r[5],
                 task_category=r[6], app=r[7], user=r[8], tags=list(r[9] or []), cost_source=r[10], outcome=r[11],
                 ts=r[12], key_id=r[13])
        for r in rows
    ]


def _int(data: Mapping[str, Any], *keys: str) -> int:
    for key in keys:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return 0


def _usd(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def corrected_usage(old: Unbilled, generation: Mapping[str, Any]) -> Usage | None:
    """The superseding event for ``old`` from a ``/generation`` record; ``None`` without a cost."""
    cost = generation.get("total_cost", generation.get("usage"))
    if not isinstance(cost, int | float) or isinstance(cost, bool):
        return None
    # native_* counts are the billing basis (tokens_* are normalised GPT-style counts)
    completion = _int(generation, "native_tokens_completion", "tokens_completion")
    prompt = _int(generation, "native_tokens_prompt", "tokens_prompt")
    provider = generation.get("provider_name")
    # (builds a Usage from /generation's names, as the client's tracker builds one from the answer's
    # usage object: `duplicates` pairs the two keyword lists by shape; the sources differ)
    return Usage(
        ts=old.ts,
        request_id=old.request_id,
        app=old.app,
        user=old.user,
        tags=old.tags,
        model=old.model,
        provider=provider if isinstance(provider, str) else old.provider,
        request_type=old.request_type,
        task_category=old.task_category,
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=min(_int(generation, "native_tokens_reasoning"), completion),
        cached_tokens=min(_int(generation, "native_tokens_cached"), prompt),
        cost_usd=float(cost),
        cost_source="billed",
        is_byok=generation.get("is_byok") is True,
        # a BYOK call's real price, billed on the user's key (cost_usd is only OpenRouter's fee)
        upstream_cost_usd=_usd(generation.get("upstream_inference_cost")),
        completion_image_tokens=_int(generation, "native_tokens_completion_images"),
        generation_id=old.generation_id,
        supersedes=old.event_id,
        key_id=old.key_id,
    )


def reconcile(data_dir: Path, client: OpenRouterClient, sink: FlushingSink, *, limit: int | None = None,
              lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> ReconcileReport:
    """Fetch ``/generation`` for every unbilled usage event and record the billed correction.

    Holds the ``reconcile`` lock until ``sink`` is flushed (``LockHeld`` after ``lock_timeout_s``).
    """
    with job_lock(DataDir(data_dir), LOCK_NAME, timeout_s=lock_timeout_s):
        try:
            return _correct(data_dir, client, sink, limit)
        finally:
            sink.flush()  # on disk before the next run reads, or it would correct them again


def _correct(data_dir: Path, client: OpenRouterClient, sink: FlushingSink, limit: int | None) -> ReconcileReport:
    report = ReconcileReport()
    for old in find_unbilled(data_dir)[:limit]:
        report.checked += 1
        try:
            generation = client.get_generation(old.generation_id)
        except NotFound:
            report.pending.append(old.generation_id)
            continue
        except AuthError:
            raise  # every lookup would fail the same way
        except OpenRouterError as error:
            report.failed.append((old.generation_id, str(error)))
            continue
        event = corrected_usage(old, generation)
        if event is None:
            report.failed.append((old.generation_id, "the generation record has no cost"))
            continue
        sink.record(event)
        report.corrected += 1
        report.corrected_usd += event.cost_usd or 0.0
    return report
