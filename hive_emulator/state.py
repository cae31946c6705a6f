"""The emulator's mutable state and the helpers every endpoint shares (auth, error answers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from hive_emulator.billing import Ledger
from hive_emulator.bodies import error_body, user_id_for
from hive_emulator.catalog import Catalog
from hive_emulator.faults import FaultPlan, FaultRule
from hive_emulator.http import Exchange, Request
from hive_emulator.judge import validate_qualities

__all__ = ["KEY_PREFIX", "EmulatorState", "mask_key"]

KEY_PREFIX = "sk-or-v1-"


def mask_key(key: str) -> str:
    """``sk-or-v1-abc...xyz``: enough to tell keys apart, never the whole key."""
    rest = key[len(KEY_PREFIX):]
    if len(rest) < 12:
        return KEY_PREFIX + "..."
    return f"{KEY_PREFIX}{rest[:3]}...{rest[-3:]}"


class EmulatorState:
    """Everything one emulator instance knows; used only from its event loop's thread."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        faults: Iterable[FaultRule | str | Mapping[str, Any]] = (),
        seed: int = 0,
        latency_scale: float = 1.0,
        api_key: str | None = None,
        credit_limit: Decimal | None = None,
        quality: Mapping[str, float] | None = None,
    ) -> None:
        if latency_scale < 0:
            raise ValueError("latency_scale must be >= 0")
        self.catalog = catalog
        self.seed = seed
        self.latency_scale = latency_scale
        self.api_key = api_key
        self.faults = FaultPlan(faults, seed)
        self.initial_faults = list(self.faults.rules)
        #: answer quality per model (:mod:`hive_emulator.judge`); models not in it answer untagged
        self.quality = validate_qualities(quality or {})
        self.initial_quality = dict(self.quality)
        self.ledger = Ledger(credit_limit)
        self.request_number = 0

    def next_request_number(self) -> int:
        """Number the next chat request (drives timing draws and generation ids)."""
        self.request_number += 1
        return self.request_number

    def reset(self) -> None:
        """Back to the state at start: start-up faults and qualities, no records, no usage, counters at zero."""
        self.faults = FaultPlan(self.initial_faults, self.seed)
        self.quality = dict(self.initial_quality)
        self.ledger = Ledger(self.ledger.credit_limit)
        self.request_number = 0

    def authenticate(self, request: Request, exchange: Exchange) -> str | None:
        """The request's key, or ``None`` after answering 401 as OpenRouter does."""
        header = request.headers.get("authorization", "").strip()
        if not header:
            exchange.send(401, error_body(401, "No auth credentials found"))
            return None
        scheme, _, key = header.partition(" ")
        key = key.strip()
        valid = scheme.lower() == "bearer" and key.startswith(KEY_PREFIX) and len(key) > len(KEY_PREFIX)
        if not valid or (self.api_key is not None and key != self.api_key):
            exchange.send(401, b'{"error":{"message":"User not found.","code":401}}')
            return None
        return key


def send_error(
    exchange: Exchange,
    status: int,
    message: str,
    *,
    key: str | None = None,
    metadata: dict[str, Any] | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    """An OpenRouter error answer (``user_id`` set once the key is known, as in real bodies)."""
    user_id = user_id_for(key) if key is not None else None
    exchange.send(status, error_body(status, message, metadata=metadata, user_id=user_id), headers=headers)
