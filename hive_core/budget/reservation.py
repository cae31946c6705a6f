"""Reserve a request's maximum cost before it is sent; settle it to the billed cost afterwards.

    budget = Budget(settings.data_dir, prices=catalog, sink=event_log, app=settings.app,
                    ledger_url=settings.ledger_url)
    with budget.reserve(model, messages, max_tokens=200, request_id=rid) as reservation:
        result = client.chat(messages, model=model, max_tokens=200, request_id=rid)
        reservation.settle(result.cost_usd)     # billed cost; None = unknown -> the prompt cost

Leaving the ``with`` block by an exception releases the reservation (a failed request is not
billed); leaving it normally without :meth:`Reservation.settle` settles to the full reserved amount,
the conservative choice (``rebuild-ledger`` corrects it from the events). A cancelled stream settles
to what was billed, or to the prompt's cost when nothing was reported (reconciled later).
**A limit governs the requests that start after it is set.** A request no limit applies to when it
starts (the common case: no budget configured for any of its scopes) holds nothing: there is no
check to make, so nothing is written until it settles, and then its row and its spend go to the
ledger in one transaction (:meth:`~hive_core.budget.ledger_core.LedgerCore.record_spend`) instead
of two (measured: ~150 us less gateway CPU per request). Its spend is recorded on every scope
like any other, so ``hive budget show`` and any later limit count it. The one difference: a
request already in flight when a limit is first set is not seen "reserved in flight" by the
requests checked against that limit meanwhile; it counts against the limit when it settles.

``over_budget=True`` is the escape hatch: the request is reserved even past a limit, and one
:class:`~hive_core.store.events.BudgetOverride` event per breached limit records that it happened.
A limit of 0 is the kill switch: it refuses every request of its scope before anything else is
looked at - free models, unpriced ones and ``over_budget`` included (a script that always passes
``--over-budget`` must still stop) - with :func:`kill_switch_message`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from hive_core.budget.config import BudgetConfig, ConfigReader
from hive_core.budget.estimate import CostBound, max_cost
from hive_core.budget.ledger_core import Breach, request_scopes
from hive_core.budget.ledgers import open_ledger
from hive_core.catalog.pricing import PriceBook
from hive_core.clock import Clock, system_clock
from hive_core.errors import BudgetExceeded
from hive_core.format import usd as format_usd
from hive_core.ids import new_request_id, uuid7
from hive_core.period import BudgetWindow, Period
from hive_core.store.datadir import DataDir

if TYPE_CHECKING:  # the event classes (pydantic) load only when an event is built
    from hive_core.store.events import Event, EventSink, Usage

__all__ = ["Budget", "Reservation", "SettlingSink", "kill_switch_message", "refusal_message", "settling_usage"]

State = Literal["reserved", "settled", "released"]


def _scope_flag(scope: str) -> str:
    kind, _, name = scope.partition(":")
    return f" --{kind} {name}" if name else ""


def refusal_message(breach: Breach) -> str:
    """The one line ``BudgetExceeded`` says: the limit, what is spent and reserved, what to do."""
    flag = f"--{breach.window} N{_scope_flag(breach.scope)}"
    # typed: a limit shows the digits the user typed, and the amounts next to it the same way
    limit, spent, reserved, needed = (format_usd(amount, typed=True) for amount in
                                      (breach.limit_usd, breach.spent_usd, breach.reserved_usd, breach.needed_usd))
    return (
        f"{breach.window} budget of {breach.scope} exceeded: limit {limit}, "
        f"spent {spent}, reserved {reserved} in flight, "
        f"this request may cost up to {needed}; wait for the period to reset "
        f"({breach.period.end.date().isoformat()} 00:00 UTC), raise the limit (`hive budget set {flag}`), "
        "lower --max-tokens, or pass --over-budget"
    )


def kill_switch_message(scope: str, window: BudgetWindow) -> str:
    """The one line a request refused by a limit of 0 gets: what is set, and how to lift it."""
    flag = _scope_flag(scope)
    return (f"the {window} budget of {scope} is 0, so every request is refused (a kill switch, --over-budget "
            f"included); lift it with `hive budget set --{window} N{flag}` or `hive budget unset{flag}`")


class Reservation:
    """Money held for one request until it is settled or released. Settle/release are idempotent."""

    def __init__(self, budget: Budget, reservation_id: str, request_id: str, model: str,
                 bound: CostBound | Callable[[], CostBound | None] | None, breaches: Sequence[Breach], *,
                 limited: bool = False,
                 app: str | None = None, key: str | None = None, unlimited: bool = False) -> None:
        self.budget = budget
        #: no limit applied when it started: nothing is in the ledger until it settles (the module's
        #: docstring); settling writes its row and spend at once, releasing writes nothing
        self.unlimited = unlimited
        self.app = app
        self.key = key
        self.id = reservation_id
        self.request_id = request_id
        self.model = model
        # an unlimited request's bound is a function, called only if it is needed (a settlement
        # without a billed cost): most settle from their usage event and never compute it
        self._bound = bound
        #: under a limit, the output cap the reservation assumed: a request that set none is sent
        #: with it, so the reservation really is its maximum (None without a limit or a price)
        self.completion_tokens = bound.completion_tokens if isinstance(bound, CostBound) and limited else None
        #: limits this request was allowed past with ``over_budget``
        self.breaches = list(breaches)
        self.state: State = "reserved"

    @cached_property
    def bound(self) -> CostBound | None:
        """The most this request can cost (``None``: the price is unknown)."""
        return self._bound() if callable(self._bound) else self._bound

    @property
    def amount_usd(self) -> float:
        """USD held; 0 when the price is unknown and no limit applies."""
        return self.bound.max_usd if self.bound else 0.0

    @property
    def prompt_usd(self) -> float:
        """What the prompt alone costs: the settlement when the billed cost is unknown."""
        return self.bound.prompt_usd if self.bound else 0.0

    def settle(self, cost_usd: float | None, *, model: str | None = None, event_id: str | None = None,
               spent_at: datetime | None = None) -> None:
        """Record the billed cost (``None``: unknown, the prompt's cost stands in). ``model``: the
        model that was billed, when a router or fallback served another one. ``event_id`` and
        ``spent_at``: the usage event this comes from and its time (see :meth:`Ledger.settle`)."""
        if self.state != "reserved":
            return
        cost = self.prompt_usd if cost_usd is None or not math.isfinite(cost_usd) else max(0.0, cost_usd)
        if self.unlimited:
            self.budget.ledger.record_spend(self.id, cost, request_id=self.request_id, app=self.app,
                                            model=self.model, key=self.key, now=self.budget.clock(),
                                            billed_model=model, event_id=event_id, spent_at=spent_at)
        else:
            self.budget.ledger.settle(self.id, cost, now=self.budget.clock(), model=model, event_id=event_id,
                                      spent_at=spent_at)
        self.state = "settled"
        self.budget._open.pop(self.request_id, None)

    def release(self) -> None:
        """Give the held amount back: the request failed and nothing was billed."""
        if self.state != "reserved":
            return
        if not self.unlimited:
            self.budget.ledger.release(self.id, now=self.budget.clock())
        self.state = "released"
        self.budget._open.pop(self.request_id, None)

    def abandon(self) -> None:
        """Let go of it here, as the ledger has it: the ledger failed to settle or release it (its
        spend, if any, is in the usage event), so it holds its maximum cost there until it goes
        stale - on the budget's safe side, never released as if unbilled - and ``rebuild-ledger``
        counts the spend from the events."""
        self.budget._open.pop(self.request_id, None)

    def reopen(self) -> None:
        """Hold the amount again: the ledger transaction that settled this reservation rolled back
        (:meth:`Ledger.batch`), so its owner may settle it once more or release it."""
        if self.state == "settled":
            self.state = "reserved"
            self.budget._open[self.request_id] = self

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.release()
        else:
            self.settle(self.amount_usd)


class Budget:
    """The budget of one data directory as the request path sees it. One per process; thread-safe."""

    def __init__(
        self,
        data_dir: Path,
        *,
        # (a keyword-only signature: `duplicates` pairs it by shape with others; nothing is repeated)
        prices: PriceBook | None = None,
        sink: EventSink | None = None,
        app: str | None = None,
        clock: Clock = system_clock,
        ledger_url: str | None = None,
    ) -> None:
        """``ledger_url``: ``Settings.ledger_url``, a PostgreSQL ledger shared by several hosts; by
        default the ledger is the data directory's SQLite file (:func:`open_ledger`)."""
        self.data_dir = Path(data_dir)
        self.config_path = DataDir(self.data_dir).config_file
        self.prices = prices
        self.sink = sink
        self.app = app
        self.clock = clock
        self.ledger = open_ledger(self.data_dir, ledger_url)
        self._config = ConfigReader(self.config_path)
        #: open reservations by request_id, for :class:`SettlingSink`
        self._open: dict[str, Reservation] = {}

    def close(self) -> None:
        """Close the ledger."""
        self.ledger.close()

    def __enter__(self) -> Budget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def config(self) -> BudgetConfig:
        """The budget settings, re-read when ``config.json`` changed (``hive budget set`` applies to
        running processes at their next request)."""
        return self._config.get()

    def reserve(
        self,
        model: str,
        messages: str | Sequence[Mapping[str, Any]] = (),
        *,
        max_tokens: int | None = None,
        request_id: str | None = None,
        app: str | None = None,
        over_budget: bool = False,
        tools: Sequence[Mapping[str, Any]] | None = None,
        key: str | None = None,
    ) -> Reservation:
        """Hold the most this request can cost against every applicable limit, or refuse
        (``tools``: the definitions offered, billed as prompt tokens; ``key``: the id of the
        gateway's virtual key the request came with, whose daily/monthly limits are one more
        scope, ``key:<key_id>``, reserved in the same transaction as the others).

        Raises :class:`BudgetExceeded` (one line: limit, spent, reserved, what to do) when it does
        not fit, or when a limit applies and the model's price is unknown; ``over_budget`` sends it
        anyway and records a ``budget_override`` event per breached limit. A limit of 0 refuses
        it whatever else holds (:func:`kill_switch_message`). Without a limit on any of its scopes
        nothing is written before it settles (the module's docstring).
        """
        config = self.config
        app = app if app is not None else self.app
        request_id = request_id or new_request_id()
        limits = config.limits_for(request_scopes(app, model, key))
        for limit in limits:
            for window in limit.off():
                raise BudgetExceeded(kill_switch_message(limit.scope, window), scopes=(limit.scope,))

        def bound_of() -> CostBound | None:
            try:
                return max_cost(self.prices, model, messages, max_tokens=max_tokens,
                                default_max_tokens=config.default_max_tokens, tools=tools)
            except BudgetExceeded:  # unpriced: refused under a limit (below), else held at 0
                return None

        reservation_id = uuid7()
        if not limits:
            # No limit applies: nothing to check, and no check to hold an amount for; the spend is
            # written when it settles (Reservation.unlimited), one transaction instead of two, and
            # the bound is computed only if the settlement needs it.
            reservation = Reservation(self, reservation_id, request_id, model, bound_of, (), app=app, key=key,
                                      unlimited=True)
            self._open[request_id] = reservation
            return reservation
        bound: CostBound | None = None
        try:
            bound = max_cost(self.prices, model, messages, max_tokens=max_tokens,
                             default_max_tokens=config.default_max_tokens, tools=tools)
        except BudgetExceeded:
            if not over_budget:
                raise
        now = self.clock()
        breaches = self.ledger.reserve(
            reservation_id, request_id=request_id, app=app, model=model,
            amount_usd=bound.max_usd if bound else 0.0, limits=limits, now=now,
            stale_after_s=config.stale_after_s, force=over_budget, key=key,
        )
        if breaches and not over_budget:
            raise BudgetExceeded(refusal_message(breaches[0]), scopes=tuple(b.scope for b in breaches))
        if over_budget and bound is None:
            breaches = [self._unpriced_breach(lim.scope, window, cap, lim.reset_day, now)
                        for lim in limits for window, cap in lim.caps()]
        if breaches and self.sink is not None:
            for breach in breaches:
                from hive_core.store.events import BudgetOverride

                self.sink.record(BudgetOverride(
                    request_id=request_id, app=app, scope=breach.scope, period=breach.window,
                    limit_usd=breach.limit_usd, spent_usd=breach.spent_usd + breach.reserved_usd,
                    reserved_usd=breach.needed_usd,
                ))
        reservation = Reservation(self, reservation_id, request_id, model, bound, breaches, limited=bool(limits),
                                  app=app, key=key)
        self._open[request_id] = reservation
        return reservation

    def _unpriced_breach(self, scope: str, window: BudgetWindow, cap: float, reset_day: int,
                         now: datetime) -> Breach:
        # An unpriced request over budget: the limit is "breached" by an unknown amount.
        period = Period.budget(window, now, reset_day)
        return Breach(scope, window, period, cap, self.ledger.spend(scope, period), self.ledger.reserved(scope), 0.0)

    def settling_sink(self, inner: EventSink) -> SettlingSink:
        """``inner`` wrapped so that each request's ``usage`` event settles its reservation."""
        return SettlingSink(self, inner)


def settling_usage(event: Event) -> Usage | None:
    """``event`` if it is what a request's reservation settles from: a ``usage`` event that corrects
    none (a correction, ``supersedes``, is the reconciliation's, never a request's own)."""
    if event.type != "usage":
        return None
    usage: Usage = event  # type: ignore[assignment]
    return usage if usage.supersedes is None else None


class SettlingSink:
    """An event sink that passes every event on and settles a reservation to its ``usage`` event.

    The client records a ``usage`` event for every billed request - answered, partially billed
    before an error, or a cancelled stream - so settling from it makes the ledger count exactly
    what the events say (cost, billed model and UTC day), whichever way the request ended. A
    reservation that sees no ``usage`` event was not billed and is released by its owner.

    The settlement is written *before* the event is passed on, with the event's id: an event that
    reached the disk always has its settlement in the ledger already, which is what lets
    ``rebuild-ledger`` tell a settlement the events hold from one still in a writer's buffer.
    """

    def __init__(self, budget: Budget, inner: EventSink) -> None:
        self.budget = budget
        self.inner = inner

    def record(self, event: Event) -> None:
        """Settle the reservation of its request when ``event`` is a ``usage`` event; pass it on
        (also when settling failed: the event is never lost to a ledger error)."""
        try:
            self._settle(event)
        finally:
            self.inner.record(event)

    def record_many(self, events: Sequence[Event]) -> None:
        """:meth:`record` for several events (several requests'), their settlements written in one
        ledger transaction (:meth:`~hive_core.budget.ledger_core.LedgerCore.batch`) before any of
        them is passed on; passed on also when that failed."""
        if not any(event.type == "usage" for event in events):  # nothing to settle: no write transaction
            self._pass_on(events)
            return
        settled: list[Reservation] = []
        try:
            with self.budget.ledger.batch():
                for event in events:
                    if (reservation := self._settle(event)) is not None:
                        settled.append(reservation)
        except BaseException:
            for reservation in settled:  # the transaction rolled back: none of them was written
                reservation.reopen()
            raise
        finally:
            self._pass_on(events)

    def _pass_on(self, events: Sequence[Event]) -> None:
        many = getattr(self.inner, "record_many", None)  # the event log takes its lock once
        if many is not None:
            many(events)
        else:
            for event in events:
                self.inner.record(event)

    def _settle(self, event: Event) -> Reservation | None:
        """The reservation ``event`` settled, if it is a usage event that settled one."""
        usage = settling_usage(event)
        reservation = self.budget._open.get(usage.request_id) if usage is not None else None
        if usage is None or reservation is None:
            return None
        reservation.settle(usage.cost_usd, model=usage.model, event_id=usage.event_id, spent_at=usage.ts)
        return reservation
