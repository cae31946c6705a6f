"""Quality feedback: ``rate(request_id, score)`` appends a ``quality_rating`` event for a request.

``request_id`` may be :data:`LAST` (``"last"``): the most recent request of the data directory
(the named query ``reports/last_request``; a judge's own requests left out), so ``hive ask ...``
then ``hive rate last --good`` needs no id.

The rating names the model that answered the request (:func:`queries.lookup.request_model`), so
quality joins to models without a scan of every call later; an id that no event knows is refused.
The rankings (:func:`jobs.rankings.table.quality_rows`), performance and A/B reports read these
events back.

Not batch work, but it sits here on purpose: it reads the store (through ``queries``) and writes an
event, and ``jobs`` is the lowest library layer allowed both (``hive_core`` and ``ingest`` may not
import ``queries``; the CLI is no library).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hive_core.errors import ConfigError
from hive_core.store.events import EventSink, QualityRating

if TYPE_CHECKING:
    from hive_core.settings import Settings
    from queries import Store

__all__ = ["LAST", "last_request", "rate"]

#: the request id that means "the most recent request"
LAST = "last"


def last_request(store: Store) -> str:
    """The id of the most recent request in ``store``; ConfigError when there is none."""
    from queries import named_table

    rows = named_table(store, "reports/last_request", {}).to_pylist()
    if not rows:
        raise ConfigError("no request to rate yet: ask one with `hive ask`")
    return str(rows[0]["request_id"])


def rate(settings: Settings, sink: EventSink, request_id: str, score: float, *, rater: str | None = None) -> QualityRating:
    """Record a rating of ``request_id``'s answer (0 bad .. 1 good; ``"last"``: the most recent
    request) into ``sink``; returns the event."""
    from queries import connect, request_model

    if not 0.0 <= score <= 1.0:
        raise ConfigError(f"score {score:g} is outside 0..1 (or use --good / --bad)")
    with connect(settings.data_dir, warn=False) as store:
        if request_id == LAST:
            request_id = last_request(store)
        model = request_model(store, request_id)
    event = QualityRating(request_id=request_id, score=score, model=model,
                          rater=rater or settings.user, app=settings.app, user=settings.user)
    sink.record(event)
    return event
