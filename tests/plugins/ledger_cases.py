"""The ledger protocol's test vocabulary, shared by the SQLite and PostgreSQL ledger tests: a fixed
instant, one global limit, and a reservation against it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hive_core.budget import Limit
from hive_core.budget.ledger_core import LedgerCore
from tests.plugins.emulator import MODEL

__all__ = ["GLOBAL", "NOW", "reserve"]

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
GLOBAL = [Limit("global", daily_usd=1.0, monthly_usd=10.0)]


def reserve(ledger: LedgerCore, rid: str, usd: float, *, now: datetime = NOW, force: bool = False,
            model: str = MODEL, app: str | None = None) -> list[Any]:
    """Reserve ``usd`` for request ``rid`` against :data:`GLOBAL`; the breaches (empty: it fits)."""
    return ledger.reserve(rid, request_id=rid, app=app, model=model, amount_usd=usd, limits=GLOBAL, now=now,
                          stale_after_s=900, force=force)
