"""Injected faults: which requests fail, and how, decided deterministically from the seed.

A rule is ``MODEL:KIND:RATE`` (model ``*`` matches every model; model ids may themselves contain
``:``, as in ``qwen/qwen3-4b:free``, so the string is split from the right). For each chat request
the emulator takes the next value of a per-emulator counter; rule ``i`` fires when a hash of
``(seed, counter, i)`` falls below its rate. The first rule that fires wins, so the same seed and
the same sequence of requests give the same faults.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULT_KINDS", "FaultPlan", "FaultRule", "parse_fault", "unit_hash"]

FAULT_KINDS = frozenset(
    {"429", "500", "502", "503", "timeout", "disconnect", "midstream-error", "malformed", "slow"}
)


def unit_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (stable across processes, unlike ``hash``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Fail requests for ``model`` (``*`` = all) with ``kind`` at ``rate`` (0..1)."""

    model: str
    kind: str
    rate: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(sorted(FAULT_KINDS))}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1], got {self.rate}")
        if not self.model:
            raise ValueError("fault model must be a model id or *")

    def matches(self, model: str) -> bool:
        """The rule applies to requests for ``model``."""
        return self.model == "*" or self.model == model

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used by ``/_emulator/faults``."""
        return {"model": self.model, "kind": self.kind, "rate": self.rate}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FaultRule:
        """From ``{"model", "kind", "rate"}`` (rate defaults to 1)."""
        return cls(str(raw["model"]), str(raw["kind"]), float(raw.get("rate", 1.0)))


def parse_fault(spec: str) -> FaultRule:
    """``MODEL:KIND:RATE`` (or ``MODEL:KIND``, rate 1) -> :class:`FaultRule`; ``ValueError`` if bad."""
    parts = spec.rsplit(":", 2)
    if len(parts) == 3 and parts[1] in FAULT_KINDS:
        model, kind, rate_text = parts
        try:
            rate = float(rate_text)
        except ValueError:
            raise ValueError(f"bad fault rate in {spec!r}") from None
        return FaultRule(model, kind, rate)
    model, _, kind = spec.rpartition(":")
    if kind in FAULT_KINDS and model:
        return FaultRule(model, kind, 1.0)
    raise ValueError(f"bad fault {spec!r}: expected MODEL:KIND:RATE, KIND one of {sorted(FAULT_KINDS)}")


def _coerce(rule: FaultRule | str | Mapping[str, Any]) -> FaultRule:
    if isinstance(rule, FaultRule):
        return rule
    if isinstance(rule, str):
        return parse_fault(rule)
    return FaultRule.from_dict(rule)


class FaultPlan:
    """The active rules and the request counter that drives their draws."""

    def __init__(self, rules: Iterable[FaultRule | str | Mapping[str, Any]] = (), seed: int = 0) -> None:
        self.seed = seed
        self.rules: list[FaultRule] = [_coerce(r) for r in rules]
        self.counter = 0

    def replace(self, rules: Iterable[FaultRule | str | Mapping[str, Any]]) -> None:
        """Swap the rules (validated first, so a bad list changes nothing)."""
        self.rules = [_coerce(r) for r in rules]

    def draw(self, model: str) -> str | None:
        """The fault kind for the next request to ``model``, or ``None``. Always advances the counter."""
        self.counter += 1
        for index, rule in enumerate(self.rules):
            if not rule.matches(model) or rule.rate <= 0:
                continue
            if rule.rate >= 1.0 or unit_hash(self.seed, self.counter, index) < rule.rate:
                return rule.kind
        return None
