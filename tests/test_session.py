"""The Session: one catalog, budget, breaker, selector and client per process, and every completion
through its budget and breaker. Against the emulator and real data directories (no mocks)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from hive_core.ask import AskOptions, AskResult
from hive_core.budget import BudgetConfig, Limit, save_budget_config
from hive_core.errors import BudgetExceeded, CatalogMissing, ConfigError, ServerError, UnknownModel
from hive_core.selection.selector import SelectionRequest
from hive_core.session import NO_SINK, Session
from hive_core.settings import Settings
from hive_core.store.events import ApiCall, Selection, Usage
from tests.plugins.emulator import MODEL, emu_settings, fast_policy, function_tool
from tests.plugins.store import ListSink

TEST_PROMPT = "Reply with the single word: OK"


def synced(settings: Settings, catalog_path: Path) -> Settings:
    """``settings`` whose data directory holds the real catalog (what ``hive models sync`` writes)."""
    target = settings.datadir.catalog_file
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(catalog_path, target)
    return settings


def test_catalog_loads_once(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    """The selector, the budget's estimates and the client's prices share one parsed catalog."""
    settings = synced(emu_settings(emulator, tmp_path), catalog_path)
    sink = ListSink()
    with Session(settings, sink) as session:
        chosen = session.select(SelectionRequest(prompt="Say hi", max_tokens=10), request_id="r-1")
        answer = session.ask("Say hi", [chosen.primary], AskOptions(max_tokens=10, request_id="r-1"))
        catalog = session.catalog
        assert session.selector.catalog is catalog and session.budget.prices is catalog
        assert session.client.core.tracker.prices is catalog and session.prices_note == ""
    assert answer.result.request_id == "r-1" and answer.result.cost_source == "billed"
    (selection,) = sink.of(Selection)
    assert (selection.request_id, selection.model) == ("r-1", chosen.primary)


def test_without_a_catalog_costs_are_billed_only(emulator_factory: Any, tmp_path: Path) -> None:
    """An explicit model works without a catalog (OpenRouter's /models failing, no copy: the note
    says why estimates are missing); the selector needs one and says how to get it."""
    emulator = emulator_factory(faults=["/models:503"])
    sink = ListSink()
    notices: list[str] = []
    with Session(emu_settings(emulator, tmp_path), sink, notice=notices.append) as session:
        answer = session.ask("Say hi", [MODEL], AskOptions(max_tokens=10))
        assert session.prices is None and "hive models sync" in session.prices_note
        with pytest.raises(CatalogMissing, match="hive models sync"):
            session.select(SelectionRequest(prompt="Say hi"))
    assert answer.result.cost_source == "billed"  # the answer's own cost: no catalog needed


def test_the_catalog_is_fetched_on_first_use(emulator: Any, tmp_path: Path) -> None:
    """A fresh data directory: the first thing that needs the catalog fetches it (no key needed),
    tells the notice callback once, and the selector works."""
    notices: list[str] = []
    settings = emu_settings(emulator, tmp_path)
    with Session(settings, ListSink(), notice=notices.append) as session:
        assert session.select(SelectionRequest(prompt="Say hi")).primary
        assert session.prices is session.catalog and settings.datadir.catalog_file.is_file()
    assert len(notices) == 1 and notices[0].startswith("fetched the model catalog (")
    with Session(settings, ListSink(), notice=notices.append) as session:
        assert session.catalog is not None
    assert len(notices) == 1  # the copy is fresh: not fetched again


def test_budget_refuses_models_test(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    """``hive models test``'s request (request_type=test) reserves like ``hive ask``: over the limit,
    it is refused before anything is sent."""
    settings = synced(emu_settings(emulator, tmp_path), catalog_path)
    save_budget_config(settings.datadir.config_file,
                       BudgetConfig(limits={"global": Limit(scope="global", daily_usd=0.000001)}))
    sink = ListSink()
    with Session(settings, sink) as session, pytest.raises(BudgetExceeded, match="daily budget of global"):
        session.ask(TEST_PROMPT, [MODEL], AskOptions(max_tokens=16, request_type="test"))
    assert sink.of(ApiCall) == []


def test_every_completion_reports_to_the_breaker(emulator_factory: Any, tmp_path: Path) -> None:
    """A model that keeps failing opens its circuit whichever path sent the requests."""
    emu = emulator_factory(faults=[{"model": MODEL, "kind": "500", "rate": 1.0}])
    settings = emu_settings(emu, tmp_path, max_attempts=1)
    with Session(settings, ListSink(), policy=fast_policy(settings)) as session:
        for _ in range(5):
            with pytest.raises(ServerError):
                session.ask(TEST_PROMPT, [MODEL], AskOptions(max_tokens=8, request_type="test"))
        assert session.breaker.state(MODEL) == "open"


def test_a_session_without_a_sink_only_reads_metadata(emulator: Any, tmp_path: Path) -> None:
    """No sink: ``/key`` and ``/models`` work, a completion is refused (it would go unrecorded and
    unbudgeted), and nothing was opened or written in the data directory."""
    settings = emu_settings(emulator, tmp_path)
    with Session(settings, None) as session:
        assert "usage" in session.client.key_info()
        assert session.client.models_document()["data"]
        with pytest.raises(ConfigError, match="no event sink"):
            session.ask("Say hi", [MODEL])
    assert not settings.data_dir.exists()
    with pytest.raises(ConfigError, match="closed"):  # closed once: nothing is opened again
        session.client.key_info()


def test_the_async_twin_budgets_and_records(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    """``Session.aio()``: the same sink, prices and budget on an event loop; the usage event settles
    the reservation to the billed cost."""
    import asyncio

    from hive_core.budget import Ledger

    settings = synced(emu_settings(emulator, tmp_path), catalog_path)
    save_budget_config(settings.datadir.config_file, BudgetConfig(limits={"global": Limit(scope="global", daily_usd=1)}))
    sink = ListSink()

    async def main(session: Session) -> AskResult:
        async with session.aio() as aio:
            return await aio.ask("Say hi", [MODEL], AskOptions(max_tokens=10))

    with Session(settings, sink) as session:
        answer = asyncio.run(main(session))
    (usage,) = sink.of(Usage)
    assert usage.cost_usd == answer.result.cost_usd and answer.result.cost_usd
    with Ledger(settings.datadir.ledger) as ledger:
        settled = {scope: usd for (scope, _day), usd in ledger.spend_by_day().items()}
    assert settled["global"] == pytest.approx(usage.cost_usd, abs=1e-12)


# -- chat and stream: one model, the whole request surface, under the budget and the breaker -------

WEATHER = function_tool("get_weather", {"type": "object", "properties": {"city": {"type": "string"}},
                                        "required": ["city"]}, "Current weather in a city")


def limited(settings: Settings, catalog_path: Path, daily_usd: float = 1.0) -> Settings:
    """``settings`` with the real catalog and a global daily limit (so every request reserves)."""
    synced(settings, catalog_path)
    save_budget_config(settings.datadir.config_file,
                       BudgetConfig(limits={"global": Limit(scope="global", daily_usd=daily_usd)}))
    return settings


def settled(settings: Settings) -> tuple[dict[str, int], float]:
    """The ledger's reservations per state, and the global spend it settled."""
    from hive_core.budget import Ledger

    with Ledger(settings.datadir.ledger) as ledger:
        spend = sum(usd for (scope, _day), usd in ledger.spend_by_day().items() if scope == "global")
        return ledger.states(), spend


def test_chat_passes_the_request_surface_and_settles(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    """``chat(tools=...)`` reaches the model (its tool calls come back), a tool loop is one budgeted,
    recorded request per turn, and the ledger holds exactly the billed cost."""
    settings = limited(emu_settings(emulator, tmp_path), catalog_path)
    sink = ListSink()
    with Session(settings, sink) as session:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
        first = session.chat(messages, model=MODEL, tools=[WEATHER], tool_choice="required")
        (call,) = first.tool_calls
        messages += [first.message, call.reply('{"celsius": 21}')]
        final = session.chat(messages, model=MODEL, tools=[WEATHER], max_tokens=20)
    assert call.name == "get_weather" and "city" in call.parse_arguments()
    assert final.text and not final.tool_calls and final.request_id != first.request_id
    usages = sink.of(Usage)
    assert [u.request_id for u in usages] == [first.request_id, final.request_id]
    states, spend = settled(settings)
    assert states == {"settled": 2} and spend == pytest.approx(sum(u.cost_usd for u in usages), abs=1e-12)


def test_chat_over_budget_sends_nothing(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    settings = limited(emu_settings(emulator, tmp_path), catalog_path, daily_usd=0.000001)
    sink = ListSink()
    with Session(settings, sink) as session:
        with pytest.raises(BudgetExceeded, match="daily budget of global exceeded"):
            session.chat("Say hi", model=MODEL, max_tokens=50)
        with pytest.raises(BudgetExceeded, match="daily budget of global exceeded"):
            session.stream("Say hi", model=MODEL, max_tokens=50)
        over = session.chat("Say hi", model=MODEL, max_tokens=5, over_budget=True)
    assert [c.request_id for c in sink.of(ApiCall)] == [over.request_id]


def test_stream_cancel_settles_what_was_billed(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    """A stream cancelled from a callback ends quietly; its billed part settles the reservation and
    nothing stays reserved. Callbacks are the caller's, called as the client calls them."""
    settings = limited(emu_settings(emulator, tmp_path), catalog_path)
    sink = ListSink()
    chunks: list[str] = []
    completed: list[Any] = []
    errors: list[Any] = []
    with Session(settings, sink) as session:
        def on_chunk(piece: str, so_far: str) -> None:
            chunks.append(piece)
            if len(chunks) == 3:
                handle.cancel()

        handle = session.stream("Count to 100", model=MODEL, max_tokens=300, on_chunk=on_chunk,
                                on_complete=completed.append, on_error=errors.append)
        pieces = list(handle)
        whole = session.stream("Say hi", model=MODEL, max_tokens=10, on_complete=completed.append).collect()
    assert handle.result is not None and handle.result.outcome == "cancelled" and len(pieces) == 3
    assert [type(e).__name__ for e in errors] == ["Cancelled"] and completed == [whole]
    (cancelled, done) = sink.of(Usage)
    states, spend = settled(settings)
    assert states == {"settled": 2} and spend == pytest.approx(cancelled.cost_usd + done.cost_usd, abs=1e-12)


def test_a_failed_stream_releases_and_tells_the_breaker(emulator_factory: Any, tmp_path: Path,
                                                        catalog_path: Path) -> None:
    emu = emulator_factory(faults=[{"model": MODEL, "kind": "500", "rate": 1.0}])
    settings = limited(emu_settings(emu, tmp_path, max_attempts=1), catalog_path)
    with Session(settings, ListSink(), policy=fast_policy(settings)) as session:
        for _ in range(5):
            with pytest.raises(ServerError):
                session.stream("Say hi", model=MODEL, max_tokens=8).collect()
        assert session.breaker.state(MODEL) == "open"
    assert settled(settings) == ({"released": 5}, 0)


def test_ask_without_a_chain_selects_and_records_it(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    settings = synced(emu_settings(emulator, tmp_path), catalog_path)
    sink = ListSink()
    with Session(settings, sink) as session:
        answer = session.ask([{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "Write a Python function that merges two sorted lists"}],
                             options=AskOptions(stream=False, max_tokens=30))
    (selection,) = sink.of(Selection)
    assert selection.request_id == answer.result.request_id and selection.model == answer.model
    assert selection.task_category == "code-generation"
    assert {c.task_category for c in sink.of(ApiCall)} == {"code-generation"}


def test_the_async_chat_and_stream(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    import asyncio

    settings = limited(emu_settings(emulator, tmp_path), catalog_path)
    sink = ListSink()

    async def main(session: Session) -> tuple[Any, list[str], Any]:
        async with session.aio() as aio:
            chat = await aio.chat("Say hi", model=MODEL, max_tokens=10, seed=7)
            handle = aio.stream("Say hi", model=MODEL, max_tokens=10)
            pieces = [piece async for piece in handle]
            return chat, pieces, handle.result

    with Session(settings, sink) as session:
        chat, pieces, streamed = asyncio.run(main(session))
    assert chat.text and "".join(pieces) == streamed.text and streamed.outcome == "completed"
    assert settled(settings)[0] == {"settled": 2}


def test_a_session_without_a_sink_says_what_to_use(emulator: Any, tmp_path: Path) -> None:
    with Session(emu_settings(emulator, tmp_path), None) as session:
        for send in (lambda: session.chat("hi", model=MODEL), lambda: session.stream("hi", model=MODEL)):
            with pytest.raises(ConfigError) as refused:
                send()
            assert str(refused.value) == NO_SINK and "hive.Session.from_env()" in NO_SINK


def test_a_mistyped_model_is_refused_before_it_is_sent(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    """Library calls resolve model names like the CLI: a short name finds its model, a typo raises
    "did you mean" before anything is reserved, sent or recorded."""
    settings = synced(emu_settings(emulator, tmp_path), catalog_path)
    sink = ListSink()
    with Session(settings, sink) as session:
        with pytest.raises(UnknownModel, match=r"did you mean.*openai/gpt-4o-mini"):
            session.chat("Say hi", model="openai/gpt-4o-mni", max_tokens=5)
        with pytest.raises(UnknownModel, match="did you mean"):
            session.ask("Say hi", ["gpt-4o-mni", MODEL])
        assert sink.events == []
        answer = session.chat("Say hi", model="gpt-4o-mini", max_tokens=5)
    assert answer.model == "openai/gpt-4o-mini"
    assert {c.model for c in sink.of(ApiCall)} == {"openai/gpt-4o-mini"}


def test_a_model_over_its_own_limit_falls_through_to_the_next(emulator: Any, tmp_path: Path,
                                                               catalog_path: Path) -> None:
    """A per-model limit blocks that model only: the chain moves on to the next one. A global
    limit that refuses ends the chain at once (no other model can fit it)."""
    settings = synced(emu_settings(emulator, tmp_path), catalog_path)
    other = "anthropic/claude-3-haiku"
    save_budget_config(settings.datadir.config_file, BudgetConfig(limits={
        f"model:{MODEL}": Limit(scope=f"model:{MODEL}", daily_usd=0.000001)}))
    sink = ListSink()
    with Session(settings, sink) as session:
        answer = session.ask("Say hi", [MODEL, other], AskOptions(max_tokens=5))
        assert answer.result.model == other
        assert [(m, type(e).__name__) for m, e in answer.failures] == [(MODEL, "BudgetExceeded")]
        with pytest.raises(BudgetExceeded, match=f"model:{MODEL}"):  # the last model refused: no other
            session.ask("Say hi", [MODEL], AskOptions(max_tokens=5))
    save_budget_config(settings.datadir.config_file, BudgetConfig(limits={
        "global": Limit(scope="global", daily_usd=0.000001)}))
    with Session(settings, sink) as session, pytest.raises(BudgetExceeded, match="global"):
        session.ask("Say hi", [MODEL, other], AskOptions(max_tokens=5))
    assert {c.model for c in sink.of(ApiCall)} == {other}


def test_refresh_takes_in_a_new_catalog_a_new_ranking_table_and_a_new_day(emulator: Any, tmp_path: Path,
                                                                         catalog_path: Path) -> None:
    """What a process that runs for days (a gateway worker) calls every few seconds: a catalog that
    ``hive models sync`` replaced reaches resolution, prices and the selector; a ranking table the
    jobs rewrote, or a new UTC day, a new selector; nothing changed, nothing replaced. A replacement
    that cannot be read is said once and the catalog in use stays: never downloaded (by every worker
    at once), though the emulator would serve one."""
    import json
    from dataclasses import replace
    from datetime import timedelta

    from hive_core.errors import CatalogError
    from tests.cases import ranking_row, write_rankings

    doc = json.loads(catalog_path.read_bytes())
    without = {**doc, "data": [m for m in doc["data"] if m["id"] != MODEL]}
    settings = emu_settings(emulator, tmp_path)
    catalog_file = settings.datadir.catalog_file
    catalog_file.parent.mkdir(parents=True)
    catalog_file.write_text(json.dumps(without))
    with Session(settings, ListSink()) as session:
        with pytest.raises(UnknownModel):
            session.resolve([MODEL])
        selector, budget = session.selector, session.budget
        assert session.refresh() is False and session.selector is selector
        catalog_file.write_text(json.dumps(doc))  # hive models sync
        assert session.refresh() is True
        assert session.resolve([MODEL]) == [MODEL]
        assert budget.prices is session.catalog and session.selector.catalog is session.catalog
        assert session.refresh() is False
        write_rankings(settings.data_dir, [ranking_row(MODEL)])  # hive-jobs rankings
        assert session.refresh() is True and session.selector.rankings.row("*", MODEL) is not None
        today = session.selector.today
        # a day later (HIVE_AS_OF's clock, the settings' own): the selector's "today" with it. (Compared
        # with that clock's own date, not today + 1: a real midnight may pass while the test runs.)
        session.settings = later = replace(settings, as_of=settings.now() + timedelta(days=1))
        assert session.refresh() is True
        assert session.selector.today == later.now().date() > today
        in_use = session.catalog
        catalog_file.write_text("{not json")
        with pytest.raises(CatalogError):
            session.refresh()
        assert session.refresh() is False and session.catalog is in_use  # said once; still serving
