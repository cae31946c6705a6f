"""``hive-jobs alerts``: budget thresholds and burn-rate forecasts, fired once, recorded, delivered.

For every scope with a limit and each of its periods (UTC day, month from its reset day):

* **threshold**: spend reached ``p``% of the limit, for each ``p`` in ``thresholds_pct``
  (default 50/80/100);
* **forecast** (monthly limits): at the last 7 days' rate the month ends over the limit ("... you
  will spend $X by 2026-11-30, over the limit on the 23rd"); not sent once the limit is already
  crossed (the 100% threshold says it).

An alert fires once per (scope, period, period start, kind, threshold): the ``budget_alerts``
events already in the store are the memory, read under a job lock so two runs (cron and a rollup)
never both fire one. Each alert is recorded as a ``budget_alert`` event, returned for stdout, and,
when a webhook is configured, posted through the outbox (:mod:`jobs.budget.webhook`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hive_core.budget.config import BudgetConfig, load_budget_config
from hive_core.budget.forecast import WINDOW_DAYS, forecast, history_since
from hive_core.errors import ConfigError, LockHeld
from hive_core.format import usd
from hive_core.period import BudgetWindow, Period
from hive_core.store.datadir import DataDir
from hive_core.store.lock import DEFAULT_LOCK_TIMEOUT_S, job_lock

if TYPE_CHECKING:
    import httpx

    from hive_core.settings import Settings
    from hive_core.store.events import BudgetAlert, Event
    from jobs.budget.spend import ScopeSpend
    from jobs.budget.webhook import WebhookPolicy

__all__ = ["AlertRun", "FlushingSink", "alerts_after_rollup", "evaluate_alerts", "run_alerts"]

AlertKey = tuple[str, str, str, str, float]


class FlushingSink(Protocol):
    """An event sink that can be flushed (``ingest.EventLog``): alerts must be on disk before the
    lock is released, or the next run would not see them and fire again."""

    def record(self, event: Event) -> None: ...

    def flush(self) -> object: ...


@dataclass
class AlertRun:
    """What one run did."""

    fired: list[BudgetAlert] = field(default_factory=list)
    delivered: int = 0
    failures: list[str] = field(default_factory=list)
    #: alerts still waiting in the outbox for the webhook
    pending: int = 0
    #: why no alert was evaluated at all (an unreadable budget config), else None: a run that could
    #: not look is a failure, never the same as "no alert was due"
    not_evaluated: str | None = None

    def problems(self) -> list[str]:
        """One line per failure, saying what failed: the evaluation itself, or deliveries."""
        if self.not_evaluated is not None:
            return [f"not evaluated: {self.not_evaluated}"]
        return [f"delivery failed: {failure}; {self.pending} alert(s) kept for the next run" for failure in self.failures]


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _key(alert: BudgetAlert) -> AlertKey:
    return (alert.scope, alert.period, alert.period_start, alert.kind, alert.threshold_pct or -1.0)


def _when(window: BudgetWindow, period: Period) -> str:
    return period.first_day.isoformat() if window == "daily" else f"month from {period.first_day.isoformat()}"


def evaluate_alerts(config: BudgetConfig, spend: ScopeSpend, fired: set[AlertKey], now: datetime) -> list[BudgetAlert]:
    """The alerts due now that have not fired yet (pure: no I/O)."""
    from hive_core.ids import new_request_id
    from hive_core.store.events import BudgetAlert

    alerts: list[BudgetAlert] = []
    for scope, limit in sorted(config.limits.items()):
        for kind, cap in limit.caps():
            if cap <= 0:  # a kill switch (`--daily 0`) refuses every request: no spend to warn about
                continue
            period = Period.budget(kind, now, limit.reset_day)
            spent = spend.total(scope, period)
            common: dict[str, Any] = {"request_id": new_request_id(), "ts": now, "scope": scope, "period": kind,
                      "period_start": period.first_day.isoformat(), "limit_usd": cap, "spent_usd": spent}
            for pct in config.thresholds_pct:
                if spent < cap * pct / 100:
                    continue
                message = (f"budget alert: {scope} {kind} spend reached {pct:g}% of its limit: "
                           f"{usd(spent)} of {usd(cap, typed=True)} ({_when(kind, period)}, UTC)")
                if pct >= 100:
                    message += "; requests that do not fit are refused"
                alerts.append(BudgetAlert(**common, kind="threshold", threshold_pct=pct, message=message))
            if kind == "monthly" and spent < cap:
                outlook = forecast(period, spent, spend.daily(scope), now, cap)
                if outlook.projected_usd > cap and outlook.over_on is not None:
                    message = (f"budget forecast: at the last {WINDOW_DAYS} days' rate ({usd(outlook.rate_per_day)}/day) "
                               f"{scope} will spend {usd(outlook.projected_usd)} by {period.last_day.isoformat()}, over its "
                               f"{usd(cap, typed=True)} monthly limit on the {_ordinal(outlook.over_on.day)}")
                    alerts.append(BudgetAlert(**common, kind="forecast", forecast_usd=outlook.projected_usd,
                                              message=message))
    return [a for a in alerts if _key(a) not in fired]


def _fired(data_dir: Path, since: date) -> set[AlertKey]:
    from queries import connect, load, run_sql

    with connect(data_dir, views=("budget_alerts",)) as store:
        rows = run_sql(store, load("reports/alerts_fired"), {"since": since.isoformat()}).fetchall()
    return {(s, p, ps, k, float(t)) for s, p, ps, k, t in rows}


def run_alerts(
    data_dir: Path,
    *,
    now: datetime,
    sink: FlushingSink,
    config: BudgetConfig | None = None,
    policy: WebhookPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> AlertRun:
    """Evaluate, record, and deliver (webhook outbox included); see the module docstring."""
    # the spend ledger (sqlite3) and the webhook's outbox: only when alerts run (a rollup without a
    # budget skips them)
    from jobs.budget.spend import read_spend
    from jobs.budget.webhook import Outbox, WebhookPolicy, alert_payload

    paths = DataDir(data_dir)
    config = config or load_budget_config(paths.config_file)
    policy = policy or WebhookPolicy()
    run = AlertRun()
    with job_lock(paths, "budget-alerts", timeout_s=lock_timeout_s):
        periods = [Period.budget(kind, now, lim.reset_day) for lim in config.limits.values() for kind, _ in lim.caps()]
        if periods:
            since = history_since(periods, now)
            run.fired = evaluate_alerts(config, read_spend(data_dir, since=since), _fired(data_dir, since), now)
        for alert in run.fired:
            sink.record(alert)
        sink.flush()
        outbox = Outbox(paths.alert_outbox)
        waiting = outbox.load()
        if config.webhook_url is None:
            run.pending = len(waiting)
        else:
            waiting += [alert_payload(a) for a in run.fired]
            outbox.save(waiting)  # before posting: a crash mid-delivery retries, never loses
            run.delivered, remaining = _deliver(config.webhook_url, waiting, policy, transport, run.failures)
            outbox.save(remaining)
            run.pending = len(remaining)
        if outbox.moved_aside is not None:
            run.failures.append(f"the alert outbox {outbox.path} was unreadable: moved to {outbox.moved_aside}, "
                                "the alerts waiting in it were not sent (their budget_alert events are in the store)")
    return run


def _deliver(url: str, waiting: list[dict[str, object]], policy: WebhookPolicy,
             transport: httpx.BaseTransport | None, failures: list[str]) -> tuple[int, list[dict[str, object]]]:
    import httpx

    from jobs.budget.webhook import post_payload

    remaining: list[dict[str, object]] = []
    delivered = 0
    with httpx.Client(transport=transport, timeout=policy.timeout_s) as client:
        for payload in waiting:
            if failures:  # the receiver is down: one failure says so, the rest wait for the next run
                remaining.append(payload)
                continue
            error = post_payload(client, url, dict(payload), policy)
            if error is None:
                delivered += 1
            else:
                failures.append(error)
                remaining.append(payload)
    return delivered, remaining


def alerts_after_rollup(settings: Settings, report: object) -> AlertRun | None:
    """The rollup's post step (``jobs.pipeline.POST_STEPS``): alerts are evaluated by every rollup,
    recorded and sent to the webhook. ``None`` when a ``hive-jobs alerts`` run is busy (it does the
    same work). A bad budget config does not fail the rollup (its files are written) but is reported in
    the result (:attr:`AlertRun.not_evaluated`), which the rollup command and ``run-due`` turn into a
    failing exit."""
    try:
        config = load_budget_config(settings.datadir.config_file)
        if not config.limits and not settings.datadir.alert_outbox.exists():
            return AlertRun()  # no budget, nothing waiting: skip the event log and the lock
        from ingest import EventLog

        with EventLog(settings.data_dir) as log:
            return run_alerts(settings.data_dir, now=settings.now(), sink=log, config=config, lock_timeout_s=5.0)
    except LockHeld:
        return None
    except ConfigError as exc:
        return AlertRun(not_evaluated=str(exc))
