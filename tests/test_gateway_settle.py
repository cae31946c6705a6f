"""The gateway's answered requests settle together: one ledger transaction per settling window (or
per turn of the event loop) (:class:`hive_gateway.settle.Settler` over
:meth:`hive_core.budget.SettlingSink.record_many`), each settlement written before its event is passed on."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hive_core.ask import AskOptions, ChainRun
from hive_core.budget import Budget, BudgetConfig, Limit, save_budget_config
from hive_core.catalog.catalog import Catalog
from hive_core.errors import DataError
from hive_core.openrouter.results import ChatResult
from hive_core.openrouter.tracking import Labels
from hive_core.period import Period
from hive_core.store.datadir import DataDir
from hive_core.store.events import ApiCall, Event, Usage
from hive_gateway.chat import HeldEvents, settle_later
from hive_gateway.settle import Settler
from tests.faults import allow_spend, refuse_spend
from tests.plugins.emulator import MODEL
from tests.plugins.store import ListSink

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


class LedgerWatch:
    """The sink after the settling one: what the ledger held when each event was passed on."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.seen: list[tuple[str, dict[str, int]]] = []

    def record(self, event: Event) -> None:
        self.seen.append((event.type, self.budget.ledger.states()))


def _answer(request_id: str, cost: float) -> list[Event]:
    return [ApiCall(ts=NOW, request_id=request_id, attempt=1, model=MODEL, request_type="chat", status="ok",
                    latency_ms=1.0, streamed=False, fallback_index=0),
            Usage(ts=NOW, request_id=request_id, model=MODEL, cost_usd=cost, cost_source="billed")]


@pytest.fixture
def budget(data_dir: Path, catalog: Catalog) -> Any:
    save_budget_config(DataDir(data_dir).config_file,
                       BudgetConfig(limits={"app:search": Limit("app:search", daily_usd=1.0)}))
    with Budget(data_dir, prices=catalog, clock=lambda: NOW) as b:
        yield b


def test_answers_of_one_turn_settle_in_one_transaction(budget: Budget) -> None:
    limited = budget.reserve(MODEL, "hi", max_tokens=10, request_id="r-limited", app="search")
    unlimited = budget.reserve(MODEL, "hi", max_tokens=10, request_id="r-free", app="other")
    watch = LedgerWatch(budget)
    statements: list[str] = []
    budget.ledger._con.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    called: list[str] = []

    async def turn() -> None:
        settler = Settler(budget.settling_sink(watch), _unexpected, window_s=0)
        settler.add(_answer("r-limited", 0.0004), lambda: called.append("limited"))
        settler.add(_answer("r-free", 0.0002), lambda: called.append("free"))
        assert watch.seen == [] and called == []  # nothing before the turn ends
        await asyncio.sleep(0)

    asyncio.run(turn())
    assert statements.count("COMMIT") == 1
    assert limited.state == unlimited.state == "settled" and called == ["limited", "free"]
    # every event was passed on after both settlements committed, in order
    assert watch.seen == [(kind, {"settled": 2}) for kind in ("api_call", "usage", "api_call", "usage")]
    day = Period.daily(NOW)
    assert budget.ledger.spend("global", day) == pytest.approx(0.0006)
    assert budget.ledger.spend("app:search", day) == pytest.approx(0.0004)


def test_answers_of_one_window_settle_in_one_transaction(budget: Budget) -> None:
    """The window, not the loop's turn, ends a batch: answers of several turns settle together once
    it has passed, and not before."""
    for n in range(3):
        budget.reserve(MODEL, "hi", max_tokens=10, request_id=f"r-{n}", app="search")
    watch = LedgerWatch(budget)
    statements: list[str] = []
    budget.ledger._con.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    called: list[str] = []
    window = 0.2

    async def turns() -> None:
        loop = asyncio.get_running_loop()
        settler = Settler(budget.settling_sink(watch), _unexpected, window_s=window)
        began = loop.time()
        for n in range(3):  # one answer per turn of the loop
            settler.add(_answer(f"r-{n}", 0.0001), lambda n=n: called.append(f"r-{n}"))
            await asyncio.sleep(0)
        if loop.time() - began < window:  # (a machine that stalled past the window settled them already)
            assert watch.seen == [] and called == []
        await asyncio.sleep(window * 2)
        assert settler._scheduled is None

    asyncio.run(turns())
    assert statements.count("COMMIT") == 1 and called == ["r-0", "r-1", "r-2"]
    assert watch.seen == [(kind, {"settled": 3}) for _ in range(3) for kind in ("api_call", "usage")]
    assert budget.ledger.spend("app:search", Period.daily(NOW)) == pytest.approx(0.0003)


def test_a_full_window_settles_at_once(budget: Budget) -> None:
    """``most`` answers waiting end the window there and then: no timer is left behind, and the
    next answer opens a window of its own."""
    for n in range(4):
        budget.reserve(MODEL, "hi", max_tokens=10, request_id=f"r-{n}", app="search")
    watch = LedgerWatch(budget)

    async def main() -> None:
        settler = Settler(budget.settling_sink(watch), _unexpected, window_s=3600, most=3)
        settler.add(_answer("r-0", 0.0001), lambda: None)
        settler.add(_answer("r-1", 0.0001), lambda: None)
        assert watch.seen == [] and settler._scheduled is not None
        settler.add(_answer("r-2", 0.0001), lambda: None)  # the third: settled in this call
        assert len(watch.seen) == 6 and settler._scheduled is None
        settler.add(_answer("r-3", 0.0001), lambda: None)
        assert len(watch.seen) == 6 and settler._scheduled is not None
        settler.flush()  # what a stopping worker does
        assert len(watch.seen) == 8 and settler._scheduled is None

    asyncio.run(main())
    assert budget.ledger.states() == {"settled": 4}


def test_an_answer_alone_in_flight_settles_at_the_end_of_its_turn(budget: Budget) -> None:
    """No other request in flight: nothing would share a window, so the answer settles at the end
    of the loop's turn, while its client reads it; and a window left open by earlier answers ends
    there too, once the last request in flight has answered."""
    for n in range(3):
        budget.reserve(MODEL, "hi", max_tokens=10, request_id=f"r-{n}", app="search")
    watch = LedgerWatch(budget)
    in_flight = [1]

    async def main() -> None:
        settler = Settler(budget.settling_sink(watch), _unexpected, window_s=3600, alone=lambda: in_flight[0] <= 1)
        settler.add(_answer("r-0", 0.0001), lambda: None)
        assert watch.seen == []
        await asyncio.sleep(0)
        assert len(watch.seen) == 2 and settler._scheduled is None  # the turn ended it
        in_flight[0] = 3
        settler.add(_answer("r-1", 0.0001), lambda: None)  # others in flight: a window opens
        await asyncio.sleep(0)
        assert len(watch.seen) == 2 and settler._scheduled is not None
        in_flight[0] = 1
        settler.add(_answer("r-2", 0.0001), lambda: None)  # the last in flight: the window ends with this turn
        await asyncio.sleep(0)
        assert len(watch.seen) == 6 and settler._scheduled is None

    asyncio.run(main())
    assert budget.ledger.states() == {"settled": 3}


def _unexpected(error: BaseException, request_id: str | None) -> None:
    raise AssertionError(f"reported: {error}")


def test_a_failed_batch_still_passes_every_event_on(budget: Budget) -> None:
    budget.reserve(MODEL, "hi", max_tokens=10, request_id="r-free", app="other")
    inner = ListSink()
    settler_sink = budget.settling_sink(inner)
    budget.ledger.close()  # every write fails now
    called: list[str] = []
    reported: list[tuple[str, str | None]] = []

    def then() -> None:
        called.append("then")
        raise RuntimeError("settling again failed too")

    async def turn() -> None:
        Settler(settler_sink, lambda error, rid: reported.append((type(error).__name__, rid)), window_s=0).add(
            _answer("r-free", 0.0002), then)
        await asyncio.sleep(0)

    loop_errors: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: loop_errors.append(context))
        await turn()

    asyncio.run(main())
    assert [e.type for e in inner.events] == ["api_call", "usage"] and called == ["then"]
    # both failures are the operator's lines (the second with its request), not the loop's tracebacks
    assert reported[1] == ("RuntimeError", "r-free") and len(reported) == 2 and loop_errors == []


def test_a_batch_that_rolls_back_reopens_what_it_settled(budget: Budget, data_dir: Path) -> None:
    """The batch's commit fails (the ledger refuses the spend): the reservation it had settled in
    memory holds again, so its owner can settle it once more or release it; the events were passed on."""
    reservation = budget.reserve(MODEL, "hi", max_tokens=10, request_id="r-limited", app="search")
    refuse_spend(DataDir(data_dir).ledger)
    inner = ListSink()
    with pytest.raises(DataError, match="no room for spend"):
        budget.settling_sink(inner).record_many(_answer("r-limited", 0.0004))
    assert [e.type for e in inner.events] == ["api_call", "usage"]
    assert reservation.state == "reserved" and budget._open["r-limited"] is reservation
    assert budget.ledger.reserved("global") > 0
    reservation.release()
    assert budget.ledger.reserved("global") == 0 and "r-limited" not in budget._open


def test_failed_attempts_pass_their_events_on_without_a_ledger_transaction(budget: Budget) -> None:
    """Events with no usage (a 429, a timeout) settle nothing: no write transaction for them."""
    inner = ListSink()
    statements: list[str] = []
    budget.ledger._con.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    budget.settling_sink(inner).record_many(_answer("r-free", 0.0002)[:1])  # the api_call alone
    assert [e.type for e in inner.events] == ["api_call"] and statements == []



def test_settling_again_counts_the_usage_events_day_not_the_retrys(data_dir: Path, catalog: Catalog) -> None:
    """An answer at 23:59:59.9 whose batch the ledger refuses; the ledger is back when the chain's
    bookkeeping settles once more, after midnight: the spend lands on the usage event's day, under
    its id, as the settling sink would have put it (:func:`hive_gateway.chat.settle_later`)."""
    spent_at = datetime(2026, 12, 31, 23, 59, 59, 900_000, tzinfo=UTC)
    clock = [spent_at - timedelta(seconds=1)]
    ledger = DataDir(data_dir).ledger
    save_budget_config(DataDir(data_dir).config_file,
                       BudgetConfig(limits={"app:search": Limit("app:search", daily_usd=1.0)}))
    with Budget(data_dir, prices=catalog, clock=lambda: clock[0]) as budget:
        run = ChainRun("hi", [MODEL], AskOptions(max_tokens=10, labels=Labels(app="search")), budget=budget)
        step = next(iter(run))
        held = HeldEvents(budget.settling_sink(ListSink()))
        call, usage = _answer(step.request_id, 0.0004)
        held.record(call)
        held.record(usage.model_copy(update={"ts": spent_at}))
        refuse_spend(ledger)
        reported: list[str] = []

        def report(error: BaseException, request_id: str | None) -> None:
            reported.append(str(error))
            allow_spend(ledger)  # back by the time the bookkeeping settles again
            clock[0] = spent_at + timedelta(seconds=0.2)  # which runs in the new year

        async def turn() -> None:
            settle_later(Settler(held.sink, report, window_s=0), held, run, step, ChatResult(text="", model=MODEL, cost_usd=0.0004))
            await asyncio.sleep(0)

        asyncio.run(turn())
        assert len(reported) == 1 and "no room for spend" in reported[0]  # the batch failed; the retry did not
        assert step.reservation is not None and step.reservation.state == "settled"
        assert budget.ledger.spend("app:search", Period.daily(spent_at)) == pytest.approx(0.0004)
        assert budget.ledger.spend("app:search", Period.daily(clock[0])) == 0
        with contextlib.closing(sqlite3.connect(ledger)) as con:
            assert con.execute("SELECT event_id, day FROM reservations").fetchall() == [(usage.event_id, "2026-12-31")]
