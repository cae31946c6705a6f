"""Quality feedback: ``rate(request_id, score)`` appends a ``quality_rating`` event for a request.

The rating names the model that answered the request (looked up in the request's ``api_call``
events, else its ``usage`` event), so quality joins to models without a scan of every call later.
An id that no event knows is refused: a typo would otherwise rate nothing, silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hive_core.errors import ConfigError
from hive_core.store.events import EventSink, QualityRating

if TYPE_CHECKING:
    from hive_core.settings import Settings

__all__ = ["rate", "request_model"]


def request_model(settings: Settings, request_id: str) -> str | None:
    """The model that answered ``request_id``; ConfigError when no event has that id."""
    from jobs.rollup.daily import named_table
    from queries import connect

    with connect(settings.data_dir, warn=False) as store:
        rows = named_table(store, "reports/request_model", {"request_id": request_id}).to_pylist()
    if not rows:
        raise ConfigError(f"unknown request id {request_id!r}: no api_call or usage event has it "
                          "(request ids are printed by `hive ask --verbose` and kept in the events)")
    model = rows[0]["model"]
    return None if model is None else str(model)


def rate(settings: Settings, sink: EventSink, request_id: str, score: float, *, rater: str | None = None) -> QualityRating:
    """Record a rating of ``request_id``'s answer (0 bad .. 1 good) into ``sink``; returns the event."""
    if not 0.0 <= score <= 1.0:
        raise ConfigError(f"score {score:g} is outside 0..1 (or use --good / --bad)")
    event = QualityRating(request_id=request_id, score=score, model=request_model(settings, request_id),
                          rater=rater or settings.user, app=settings.app, user=settings.user)
    sink.record(event)
    return event
