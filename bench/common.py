"""What every bench module returns: figures, each with its target and, where measured, a peer."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Figure", "median_time"]


@dataclass
class Figure:
    """One measured figure. ``ok`` says whether ``value`` meets ``target``; ``ratio`` is ours / peer's
    (or as documented in ``note``) when a peer ran the same work in the same run."""

    name: str
    value: float
    unit: str
    target: str
    ok: bool | None
    peer: str | None = None
    peer_value: float | None = None
    ratio: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def median_time(func: Callable[[], object], *, repeat: int = 7, number: int = 1) -> float:
    """Median seconds of one call of ``func`` over ``repeat`` rounds of ``number`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)
