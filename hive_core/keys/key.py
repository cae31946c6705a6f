"""A virtual key as the gateway and ``hive keys list`` see it: who it is for and what it may do.

Never the secret, never its hash: a :class:`VirtualKey` can be logged, printed and put in an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hive_core.catalog.variants import split_shortcut

__all__ = ["VirtualKey"]


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """One key of the gateway. ``key_id`` is public (it names the key in ``hive keys revoke`` and
    its budget scope ``key:<key_id>``); the secret that proves possession is shown once, at creation.
    """

    key_id: str
    #: the app every request with this key is recorded and budgeted under
    app: str
    #: the end user it is for (recorded on its requests), if one
    user: str | None
    #: its budget scope's limits, USD (``None``: no limit; 0: every request refused)
    daily_usd: float | None
    monthly_usd: float | None
    #: the model ids it may call; empty: any
    models: tuple[str, ...]
    #: requests per minute across every gateway worker (``None``: no limit)
    rpm: int | None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def scope(self) -> str:
        """Its budget scope in ``config.json`` and the ledger."""
        return f"key:{self.key_id}"

    @property
    def revoked(self) -> bool:
        """Whether it was revoked (a revoked key is refused whatever the time)."""
        return self.revoked_at is not None

    def allows_model(self, model: str) -> bool:
        """Whether a request with this key may call ``model`` (a model id; the gateway decides
        what an alias such as ``hive/auto`` may pick among). A routing shortcut of an allowed model
        (``openai/gpt-4o-mini:nitro``) is that model."""
        if not self.models or model in self.models:
            return True
        shortcut = split_shortcut(model)
        return shortcut is not None and shortcut[0] in self.models

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, times in ISO 8601 (what ``hive keys list --json`` prints)."""
        return {
            "key_id": self.key_id, "app": self.app, "user": self.user, "daily_usd": self.daily_usd,
            "monthly_usd": self.monthly_usd, "models": list(self.models), "rpm": self.rpm,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }
