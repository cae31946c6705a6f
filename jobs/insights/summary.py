"""The short summary ``make demo`` ends with: spend, top models, latency percentiles, health.

Built from the rollups (through :mod:`jobs.insights.analytics` and :mod:`jobs.insights.performance`), so it is what
``hive analytics cost`` and ``hive models performance`` would say, condensed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hive_core.format import ms, pct, usd

if TYPE_CHECKING:
    from hive_core.period import Period
    from hive_core.settings import Settings
    from jobs.insights.analytics import CostReport
    from jobs.insights.performance import ModelPerformance

__all__ = ["Summary", "summary"]


@dataclass
class Summary:
    cost: CostReport
    models: list[ModelPerformance]

    def lines(self, top: int = 8) -> list[str]:
        c = self.cost
        billed = "" if c.billed_share is None else f", {pct(c.billed_share, places=0)} billed"
        lines = [f"{c.period.first_day}..{c.period.last_day}: {c.requests:,} billed requests, "
                 f"{usd(c.total_usd)} spent{billed}",
                 f"{'model':<42} {'cost $':>9} {'requests':>9} {'success':>8} {'P50 ms':>8} {'P95 ms':>8} {'P99 ms':>8}  health"]
        by_model = {m.model: m for m in self.models}
        for row in c.rows[:top]:
            m = by_model.get(row.key)
            if m is None:
                continue
            times = " ".join(f"{ms(t, unit=False):>8}" for t in (m.p50_ms, m.p95_ms, m.p99_ms))
            lines.append(f"{row.key:<42} {row.cost_usd:>9,.2f} {m.requests:>9,} {pct(m.success_rate):>8} "
                         f"{times}  {m.health}")
        return lines


def summary(settings: Settings, period: Period) -> Summary:
    """Spend by model and per-model performance over ``period``."""
    from jobs.insights.analytics import cost
    from jobs.insights.performance import performance

    return Summary(cost=cost(settings, period, by="model"), models=performance(settings, period))
