"""Cost analytics: spend over a period, broken down, against the previous period of the same length.

Numbers come from the daily rollups (:mod:`jobs.rollup.period_rows`: the files where current, the same
rollup computed live for days whose events changed since the last run, typically today), so the
total always equals ``sum(usage.cost_usd)`` over the period's UTC days, superseded usage excluded.
``billed`` is cost OpenRouter reported, ``estimated`` cost computed from catalog prices; usage
events without any cost are counted in ``unknown_cost_requests`` (their cost is not guessed).

Two parties bill a BYOK request (one sent on the user's own provider key): OpenRouter its fee,
and the provider the inference, on the user's key. ``total_usd`` is always what OpenRouter
charged (it matches the OpenRouter invoice and the budgets), BYOK fees included
(``byok_fee_usd``); the providers' BYOK bills are ``byok_upstream_usd``, kept out of every total
and every share, and added only in :attr:`CostReport.all_in_usd`. BYOK requests whose provider
price was not reported (events before usage schema 2) are counted in ``byok_upstream_unknown``:
then ``all_in_usd`` is a lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hive_core.period import Period

if TYPE_CHECKING:
    import pyarrow as pa

    from hive_core.settings import Settings

__all__ = ["BREAKDOWNS", "CostReport", "CostRow", "cost", "days_in"]

#: --by value -> rollup column
BREAKDOWNS = {"model": "model", "provider": "provider", "request-type": "request_type",
              "task": "task_category", "day": "day"}
_COLUMNS = ("usage_events", "cost_usd", "cost_billed_usd", "cost_estimated_usd", "cost_unknown", "byok_requests",
            "byok_fee_usd", "byok_upstream_usd", "byok_upstream_unknown", "web_search_requests", "cache_write_tokens")


@dataclass
class CostRow:
    """Spend of one breakdown key in the period."""

    key: str
    cost_usd: float
    requests: int
    billed_usd: float
    estimated_usd: float
    share: float
    previous_cost_usd: float
    #: of ``requests``, those on the user's own provider keys; their OpenRouter fees are in ``cost_usd``
    byok_requests: int = 0
    byok_fee_usd: float = 0.0
    #: what the providers billed those requests on the user's keys: not in ``cost_usd``
    byok_upstream_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CostReport:
    """Spend in a period and the one before it."""

    period: Period
    previous: Period
    by: str
    # (fields with defaults: `duplicates` pairs them with any such record by shape; nothing is repeated)
    total_usd: float = 0.0
    previous_total_usd: float = 0.0
    billed_usd: float = 0.0
    estimated_usd: float = 0.0
    requests: int = 0
    unknown_cost_requests: int = 0
    #: BYOK requests, the OpenRouter fees they were charged (part of ``total_usd``), and what the
    #: providers billed them on the users' own keys (not part of ``total_usd``)
    byok_requests: int = 0
    byok_fee_usd: float = 0.0
    byok_upstream_usd: float = 0.0
    #: BYOK requests whose provider price is unknown (recorded before usage schema 2)
    byok_upstream_unknown: int = 0
    web_search_requests: int = 0
    cache_write_tokens: int = 0
    rows: list[CostRow] = field(default_factory=list)

    @property
    def all_in_usd(self) -> float:
        """OpenRouter's charges plus the providers' BYOK bills: the whole inference spend (a lower
        bound while ``byok_upstream_unknown``)."""
        return self.total_usd + self.byok_upstream_usd

    @property
    def change_pct(self) -> float | None:
        """Change against the previous period, percent; None when it spent nothing."""
        if self.previous_total_usd == 0:
            return None
        return (self.total_usd - self.previous_total_usd) / self.previous_total_usd * 100

    @property
    def billed_share(self) -> float | None:
        """Share of the known cost that was billed (the rest estimated)."""
        known = self.billed_usd + self.estimated_usd
        return self.billed_usd / known if known else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.period.first_day.isoformat(), "until": self.period.last_day.isoformat(),
            "previous_since": self.previous.first_day.isoformat(), "previous_until": self.previous.last_day.isoformat(),
            "by": self.by, "total_usd": self.total_usd, "previous_total_usd": self.previous_total_usd,
            "change_pct": self.change_pct, "billed_usd": self.billed_usd, "estimated_usd": self.estimated_usd,
            "billed_share": self.billed_share, "requests": self.requests,
            "unknown_cost_requests": self.unknown_cost_requests, "byok_requests": self.byok_requests,
            "byok_fee_usd": self.byok_fee_usd, "byok_upstream_usd": self.byok_upstream_usd,
            "byok_upstream_unknown": self.byok_upstream_unknown, "all_in_usd": self.all_in_usd,
            "web_search_requests": self.web_search_requests, "cache_write_tokens": self.cache_write_tokens,
            "rows": [r.as_dict() for r in self.rows],
        }


def days_in(rows: pa.Table | None, period: Period) -> pa.Table | None:
    """The rollup rows (a ``day`` column) of the days of ``period``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if rows is None:
        return None
    mask = pc.and_(pc.greater_equal(rows["day"], pa.scalar(period.first_day, pa.date32())),
                   pc.less_equal(rows["day"], pa.scalar(period.last_day, pa.date32())))
    return rows.filter(mask)


def _sums(table: pa.Table | None, key: str, period: Period) -> dict[str, dict[str, float]]:
    """key value -> column sums, for rows of the days of ``period``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    part = days_in(table, period)
    if part is None or part.num_rows == 0:
        return {}
    part = part.select([key, *_COLUMNS])
    part = part.set_column(0, key, pc.fill_null(pc.cast(part[key], pa.string()), "(none)"))
    grouped = part.group_by(key).aggregate([(c, "sum") for c in _COLUMNS])
    # rows with no usage at all (a model that only failed) are not spend
    return {row[key]: {c: row[f"{c}_sum"] for c in _COLUMNS} for row in grouped.to_pylist()
            if row["usage_events_sum"] or row["cost_usd_sum"]}


def cost(settings: Settings, period: Period, by: str = "model") -> CostReport:
    """Spend in ``period`` broken down ``by`` (a :data:`BREAKDOWNS` key), with the previous period."""
    from jobs.rollup.period_rows import fine_rows

    if by not in BREAKDOWNS:
        raise ValueError(f"unknown breakdown {by!r}: one of {', '.join(BREAKDOWNS)}")
    key = BREAKDOWNS[by]
    previous = period.previous()
    table = fine_rows(settings, previous.first_day, period.last_day)
    now, before = _sums(table, key, period), _sums(table, key, previous)
    report = CostReport(period=period, previous=previous, by=by)
    report.total_usd = sum(v["cost_usd"] for v in now.values())
    report.previous_total_usd = sum(v["cost_usd"] for v in before.values())
    report.billed_usd = sum(v["cost_billed_usd"] for v in now.values())
    report.estimated_usd = sum(v["cost_estimated_usd"] for v in now.values())
    report.requests = int(sum(v["usage_events"] for v in now.values()))
    report.unknown_cost_requests = int(sum(v["cost_unknown"] for v in now.values()))
    report.byok_requests = int(sum(v["byok_requests"] for v in now.values()))
    report.byok_fee_usd = sum(v["byok_fee_usd"] for v in now.values())
    report.byok_upstream_usd = sum(v["byok_upstream_usd"] for v in now.values())
    report.byok_upstream_unknown = int(sum(v["byok_upstream_unknown"] for v in now.values()))
    report.web_search_requests = int(sum(v["web_search_requests"] for v in now.values()))
    report.cache_write_tokens = int(sum(v["cache_write_tokens"] for v in now.values()))
    for name, v in now.items():
        report.rows.append(CostRow(
            key=name, cost_usd=v["cost_usd"], requests=int(v["usage_events"]), billed_usd=v["cost_billed_usd"],
            estimated_usd=v["cost_estimated_usd"],
            share=v["cost_usd"] / report.total_usd if report.total_usd else 0.0,
            previous_cost_usd=before.get(name, {}).get("cost_usd", 0.0),
            byok_requests=int(v["byok_requests"]), byok_fee_usd=v["byok_fee_usd"],
            byok_upstream_usd=v["byok_upstream_usd"],
        ))
    # by day: chronological (a trend); otherwise biggest spender first
    report.rows.sort(key=(lambda r: r.key) if by == "day" else (lambda r: (-r.cost_usd, r.key)))
    return report
