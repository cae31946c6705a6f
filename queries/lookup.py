"""Look-ups of one request by its id in the event store.

``hive rate`` names the model that answered the request it rates (so quality joins to models
without a scan of every call later) and refuses an id no event knows: a typo would otherwise rate
nothing, silently. The SQL is the named query ``reports/request_model``.
"""

from __future__ import annotations

from hive_core.errors import ConfigError
from queries.connect import Store, named_table

__all__ = ["request_model"]


def request_model(store: Store, request_id: str) -> str | None:
    """The model that answered ``request_id`` (the last attempt of the last fallback, else the model
    its usage event names; ``None`` when they name none); ConfigError when no event has that id."""
    rows = named_table(store, "reports/request_model", {"request_id": request_id}).to_pylist()
    if not rows:
        raise ConfigError(f"unknown request id {request_id!r}: no api_call or usage event has it "
                          "(request ids are printed by `hive ask --verbose` and kept in the events)")
    model = rows[0]["model"]
    return None if model is None else str(model)
