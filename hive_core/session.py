"""One Session: everything a request needs - settings, event sink, catalog, budget, circuit breaker,
selector and client - opened once, shared by every request, closed once.

    with EventLog(settings.data_dir) as log, Session(settings, log) as session:
        chosen = session.select(SelectionRequest(prompt=prompt), request_id=rid)   # recorded
        answer = session.ask(prompt, [chosen.primary, *chosen.fallbacks], AskOptions(request_id=rid))
        print(answer.result.text, answer.summary(session.prices_note))

Every command that sends a completion (``hive ask``, ``--experiment``, ``hive models test``,
``hive models benchmark``) goes through :meth:`Session.ask` (or its async twin, :meth:`Session.aio`),
and library callers through :meth:`Session.chat` / :meth:`Session.stream` (one model, the client's
whole request surface) too, so the budget (reserve, then settle or release), the breaker and the
event log apply to all of them alike; the metadata requests (``/key``, ``/models``) use
:attr:`Session.client`. ``chat`` and ``stream`` are ``ask`` over a chain of one model: the same
decisions (:class:`hive_core.ask.ChainRun`), nothing re-derived.

Each part is built on first use and then shared, so a command pays only for what it touches (``hive
key`` never loads the catalog or opens the ledger) and nothing is loaded twice: the catalog is
parsed once for the selector, the budget's estimates and the client's prices. :meth:`close` closes
what was opened, clients before the budget's ledger.

The sink comes from the caller: ``hive_core`` imports nothing of ours, and the event log is
``ingest``'s (the CLIs, the composition root, open ``ingest.EventLog`` and pass it; the library's
front door, ``hive.Session.from_env()``, opens its own). A Session without a sink records nothing,
so it refuses completions (:data:`NO_SINK`, one line saying why and what to use) and serves only
the metadata requests, which record nothing anyway.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any, Unpack

from hive_core.errors import CatalogError, CatalogMissing, ConfigError, OpenRouterError

if TYPE_CHECKING:
    from hive_core.ask import AskOptions, AskResult, ChainRun, Step
    from hive_core.budget import Budget
    from hive_core.catalog.catalog import Catalog
    from hive_core.experiments import Experiment
    from hive_core.openrouter.aio import AsyncOpenRouterClient, AsyncStreamHandle
    from hive_core.openrouter.client import OpenRouterClient, StreamHandle
    from hive_core.openrouter.params import ChatParams
    from hive_core.openrouter.protocol import Messages
    from hive_core.openrouter.results import ChatResult, Progress, ToolCallDelta
    from hive_core.openrouter.retry import RetryPolicy
    from hive_core.openrouter.tracking import Labels
    from hive_core.selection.health import CircuitBreaker
    from hive_core.selection.selector import SelectionRequest, SelectionResult, Selector
    from hive_core.settings import Settings
    from hive_core.store.events import EventSink

__all__ = ["NO_SINK", "AsyncSession", "Session", "prompt_text"]

#: what a cost line says when there are no catalog prices to estimate with
NO_CATALOG_NOTE = "no model catalog (run `hive models sync`) for cost estimates"
#: why a Session without a sink refuses a completion, and what to open instead
NO_SINK = ("this Session has no event sink, so it sends no completions (they would go unrecorded and "
           "unbudgeted): use hive.Session.from_env(), which records into the data directory's event log, "
           "or pass one: Session(settings, ingest.EventLog(settings.data_dir))")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _listed(catalog: Catalog, model_id: str) -> bool:
    """Whether the catalog knows ``model_id`` (a routing shortcut of a model it lists too), without
    ``get``'s "did you mean" search for one it does not."""
    from hive_core.catalog.variants import split_shortcut

    shortcut = split_shortcut(model_id)
    return model_id in catalog or (shortcut is not None and shortcut[0] in catalog)


def _stamp(path: Any) -> tuple[int, int] | None:
    """A file's modification time and size (``None``: none there), what says it was replaced."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class Session:
    """The request side of Hive for one data directory. Use as a context manager, or :meth:`close`.

    ``sink`` receives every event (``None``: metadata requests only, see the module docstring);
    ``policy`` overrides the retry policy the settings describe (tests use a fast one).
    """

    def __init__(self, settings: Settings, sink: EventSink | None, *, policy: RetryPolicy | None = None,
                 notice: Callable[[str], object] | None = None) -> None:
        self.settings = settings
        self.sink = sink
        self.policy = policy
        #: where the catalog's one-line fetch/refresh notice goes (None: stderr)
        self.notice = notice
        self.closed = False
        #: the catalog file and the selector's inputs as they were loaded (:meth:`refresh`)
        self._catalog_stamp: tuple[int, int] | None = None
        self._selector_stamp: tuple[tuple[int, int] | None, date] | None = None
        self._fallbacks_stamp: tuple[int, int] | None = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close what was opened: the client, then the budget's ledger. Idempotent; a closed Session
        opens nothing again."""
        self.closed = True
        opened = self.__dict__
        client = opened.pop("client", None)
        budget = opened.pop("budget", None)
        try:
            if client is not None:
                client.close()
        finally:
            if budget is not None:
                budget.close()

    # -- the catalog: loaded once, for the selector, the budget and the client's prices -------------

    @cached_property
    def _catalog(self) -> Catalog | CatalogMissing | CatalogError:
        """Fetched on first use when missing, refreshed when a day old (``/models`` needs no key;
        :func:`hive_core.catalog.fetch.ensure_catalog`); offline, the last copy."""
        return self._load_catalog()

    def _load_catalog(self) -> Catalog | CatalogMissing | CatalogError:
        from hive_core.catalog.fetch import ensure_catalog

        self._catalog_stamp = _stamp(self.settings.datadir.catalog_file)  # before: a change meanwhile is seen next
        try:
            return ensure_catalog(self.settings, notice=self.notice or _to_stderr)
        except (CatalogMissing, CatalogError) as error:
            return error

    def _read_catalog(self) -> Catalog | CatalogMissing | CatalogError:
        """The catalog file as it is (no fetch: N workers would each download it at once)."""
        from hive_core.catalog.catalog import load_catalog

        datadir = self.settings.datadir
        self._catalog_stamp = _stamp(datadir.catalog_file)
        try:
            return load_catalog(datadir.catalog_file, cache_dir=datadir.cache)
        except (CatalogMissing, CatalogError) as error:
            return error

    def refresh(self) -> bool:
        """Take in what changed since the catalog and the selector were loaded, for a process that
        runs for days (a gateway worker calls it every few seconds, from a thread): a catalog that
        ``hive models sync`` replaced (from cron, say: a day-old catalog is fetched again only as a
        process starts, and a worker never fetches it on its own), a ranking table
        that ``hive-jobs rankings`` rewrote, a new UTC day (the selector's "today"). What was not
        loaded yet is left to load on first use. Returns whether anything was replaced; requests
        under way keep what they started with.

        Also the fallbacks ``config.json`` names (:meth:`fallbacks_for`). A new catalog or
        ``config.json`` that cannot be read leaves what is in use in place and raises its error
        (once: until the file changes again)."""
        from hive_core.catalog.catalog import Catalog

        opened = self.__dict__
        changed = False
        loaded = opened.get("_catalog")
        if loaded is not None and _stamp(self.settings.datadir.catalog_file) != self._catalog_stamp:
            fresh = self._read_catalog()
            if isinstance(fresh, Catalog) or not isinstance(loaded, Catalog):
                self._use_catalog(fresh)
                changed = True
            if not isinstance(fresh, Catalog):
                raise fresh
        selector = opened.get("selector")
        if selector is not None and (changed or self._selector_stamp != self._selector_inputs()):
            opened["selector"] = self._new_selector()
            changed = True
        # (after the selector: fallbacks are not among what it is built from)
        if "_fallbacks" in opened and _stamp(self.settings.datadir.config_file) != self._fallbacks_stamp:
            fallbacks = self._load_fallbacks()  # a file that cannot be read: raised once
            if fallbacks != opened["_fallbacks"]:  # (not a budget's or a key's change of the file)
                opened["_fallbacks"] = fallbacks
                changed = True
        return changed

    @cached_property
    def _fallbacks(self) -> dict[str, tuple[str, ...]]:
        return self._load_fallbacks()

    def _load_fallbacks(self) -> dict[str, tuple[str, ...]]:
        from hive_core.fallbacks import load_fallbacks

        config_file = self.settings.datadir.config_file
        self._fallbacks_stamp = _stamp(config_file)  # before: a change meanwhile is seen next
        return load_fallbacks(config_file)

    def fallbacks_for(self, model: str) -> tuple[str, ...]:
        """The fallbacks ``config.json`` names for ``model`` (:mod:`hive_core.fallbacks`), less any the
        catalog no longer lists (``hive gateway --check`` names those): for a request that names
        its model and no fallbacks of its own."""
        chain = self._fallbacks.get(model, ())
        catalog = self.prices
        if not chain or catalog is None:
            return chain
        return tuple(m for m in chain if _listed(catalog, m))

    def _use_catalog(self, catalog: Catalog | CatalogMissing | CatalogError) -> None:
        """``catalog`` in place of the one loaded, in what holds its prices."""
        opened = self.__dict__
        opened["_catalog"] = catalog
        prices = self.prices
        if "budget" in opened:
            opened["budget"].prices = prices
        if "client" in opened and self.sink is not None:
            opened["client"].core.tracker.prices = prices

    @property
    def catalog(self) -> Catalog:
        """The synced catalog; raises ``CatalogMissing`` (run ``hive models sync``) or ``CatalogError``."""
        loaded = self._catalog
        if isinstance(loaded, CatalogMissing | CatalogError):
            raise loaded
        return loaded

    @property
    def prices(self) -> Catalog | None:
        """The catalog as a price book, ``None`` without a usable one: an explicit model still works,
        billed costs need no catalog, and a request under a limit is refused with what to do."""
        loaded = self._catalog
        return None if isinstance(loaded, CatalogMissing | CatalogError) else loaded

    def resolve(self, models: Sequence[str]) -> list[str]:
        """The catalog ids ``models`` name (a short name like ``gpt-4o-mini`` resolves; a typo raises
        ``UnknownModel`` with "did you mean", before anything is sent or billed). An OpenRouter routing
        shortcut after one (``openai/gpt-4o-mini:nitro``, :mod:`hive_core.catalog.variants`) is kept:
        the request goes out and is recorded as asked, priced and budgeted as its model. Without a
        catalog the names go as given: OpenRouter is then the judge."""
        catalog = self.prices
        return list(models) if catalog is None else [catalog.resolve(model).id for model in models]

    @property
    def prices_note(self) -> str:
        """Why cost estimates are unavailable (for cost lines), or ``""``."""
        return "" if self.prices is not None else NO_CATALOG_NOTE

    # -- the parts every completion shares ------------------------------------------------------

    @cached_property
    def budget(self) -> Budget:
        """The budget (limits and the ledger); its overrides are recorded in the sink."""
        from hive_core.budget import Budget

        self._still_open()
        settings = self.settings
        return Budget(settings.data_dir, prices=self.prices, sink=self.sink, app=settings.app, clock=settings.clock,
                      ledger_url=settings.ledger_url)

    @property
    def recorder(self) -> EventSink:
        """What the clients record into: the sink, each request's usage event settling its reservation."""
        return self.budget.settling_sink(self._sink())

    @cached_property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker the selector reads and every completion reports to."""
        from hive_core.selection.health import CircuitBreaker

        return CircuitBreaker(self.settings.datadir)

    @cached_property
    def selector(self) -> Selector:
        """A selector over the catalog, the ranking table and the breaker; needs a synced catalog."""
        return self._new_selector()

    def _new_selector(self) -> Selector:
        from hive_core.selection.rankings import load_rankings
        from hive_core.selection.selector import Selector

        settings = self.settings
        self._selector_stamp = inputs = self._selector_inputs()
        return Selector(self.catalog, load_rankings(settings.data_dir), self.breaker, today=inputs[1])

    def _selector_inputs(self) -> tuple[tuple[int, int] | None, date]:
        """What a selector is built from besides the catalog: the ranking table's file, the UTC day."""
        return _stamp(self.settings.datadir.rankings_file), self.settings.now().date()

    @cached_property
    def client(self) -> OpenRouterClient:
        """The synchronous client: recording into :attr:`recorder` with the catalog's prices, or bare
        (no prices, nothing recorded) in a Session without a sink."""
        from hive_core.openrouter.client import OpenRouterClient

        self._still_open()
        if self.sink is None:
            return OpenRouterClient(self.settings, policy=self.policy)
        return OpenRouterClient(self.settings, sink=self.recorder, prices=self.prices, policy=self.policy)

    def _still_open(self) -> None:
        if self.closed:
            raise ConfigError("this Session is closed: open a new one")

    def _sink(self) -> EventSink:
        if self.sink is None:
            raise ConfigError(NO_SINK)
        return self.sink

    # -- requests ----------------------------------------------------------------------------------

    def select(self, request: SelectionRequest, *, request_id: str | None = None,
               labels: Labels | None = None) -> SelectionResult:
        """The selector's choice; with ``request_id``, recorded as that request's ``selection`` event
        (labelled with ``labels``, else the settings' app and user)."""
        chosen = self.selector.select(request)
        if request_id is not None:
            settings = self.settings
            envelope: dict[str, Any] = {"app": settings.app, "user": settings.user}
            if labels is not None:
                envelope = {"app": labels.app, "user": labels.user, "tags": list(labels.tags)}
            self._sink().record(chosen.to_event(request_id, request.strategy, **envelope))
        return chosen

    def ask(self, prompt: Messages, chain: Sequence[str] | None = None, options: AskOptions | None = None, *,
            selection: SelectionRequest | None = None, **callbacks: Any) -> AskResult:
        """:func:`hive_core.ask.ask` with this Session's client, budget and breaker; ``callbacks``:
        ``on_text``, ``on_progress``, ``on_fallback``.

        Without a ``chain`` the selector picks the model and its fallbacks (``selection``; default:
        the prompt's own complexity and task, balanced), recorded as the request's ``selection``.
        """
        from hive_core.ask import ask

        chain, options = self._chain(prompt, chain, options, selection)
        return ask(self.client, prompt, chain, options, budget=self.budget, breaker=self.breaker, **callbacks)

    def _chain(self, prompt: Messages, chain: Sequence[str] | None, options: AskOptions | None,
               selection: SelectionRequest | None) -> tuple[Sequence[str], AskOptions]:
        """The chain to ask and its options: as given, or the selector's (needs a synced catalog)."""
        from dataclasses import replace

        from hive_core.ask import AskOptions
        from hive_core.ids import new_request_id
        from hive_core.selection.selector import SelectionRequest

        self._sink()
        options = options or AskOptions()
        if chain is not None:
            return self.resolve(chain), options
        request_id = options.request_id or new_request_id()
        request = selection or SelectionRequest(prompt=prompt_text(prompt), max_tokens=options.max_tokens)
        chosen = self.select(request, request_id=request_id)
        return chosen.chain, replace(options, request_id=request_id,
                                     task_category=options.task_category or chosen.task_category)

    def chat(self, messages: Messages, *, model: str, max_tokens: int | None = None, request_type: str = "chat",
             task_category: str | None = None, request_id: str | None = None, over_budget: bool = False,
             **params: Unpack[ChatParams]) -> ChatResult:
        """One completion from ``model``: the client's ``chat`` (``params``: tools, response_format,
        reasoning, ... - the whole request surface, passed through), reserved before it is sent
        (``BudgetExceeded`` when it does not fit; ``over_budget`` sends it anyway, recorded),
        settled to the billed cost, reported to the breaker, recorded. No fallback: :meth:`ask` has them."""
        options = _options(False, max_tokens, request_type, task_category, request_id, over_budget, params)
        return self.ask(messages, [model], options).result

    def stream(self, messages: Messages, *, model: str, max_tokens: int | None = None,
               on_chunk: Callable[[str, str], object] | None = None,
               on_progress: Callable[[Progress], object] | None = None,
               on_complete: Callable[[ChatResult], object] | None = None,
               on_error: Callable[[OpenRouterError], object] | None = None,
               on_tool_call: Callable[[ToolCallDelta], object] | None = None,
               request_type: str = "chat", task_category: str | None = None, request_id: str | None = None,
               over_budget: bool = False, **params: Unpack[ChatParams]) -> StreamHandle:
        """:meth:`chat` streamed: the client's :class:`~hive_core.openrouter.client.StreamHandle` (its
        callbacks, ``cancel()``, ``collect()``), reserved now and settled or released when the stream
        ends. Read it to its end (or cancel it): a stream never started holds its reservation until
        it goes stale."""
        run, step = self._one(messages, model, _options(True, max_tokens, request_type, task_category, request_id,
                                                        over_budget, params))
        completed, failed = _ends(run, step, on_complete, on_error)
        return self.client.stream(messages, on_chunk=on_chunk, on_progress=on_progress, on_tool_call=on_tool_call,
                                  on_complete=completed, on_error=failed, **run.send_arguments(step))

    def _one(self, messages: Messages, model: str, options: AskOptions) -> tuple[ChainRun, Step]:
        """A chain of one model, its reservation made (or ``BudgetExceeded``)."""
        from hive_core.ask import ChainRun

        self._sink()
        run = ChainRun(messages, self.resolve([model]), options, budget=self.budget, breaker=self.breaker)
        return run, next(iter(run))

    def ask_in_experiment(self, experiment: Experiment, prompt: Messages, options: AskOptions,
                          **callbacks: Any) -> tuple[str, AskResult]:
        """:func:`hive_core.experiments.ask_in_experiment` (assignment recorded, then the variant's
        model alone) with this Session's client, budget and breaker."""
        from hive_core.experiments import ask_in_experiment

        return ask_in_experiment(self.client, self._sink(), experiment, prompt, options, budget=self.budget,
                                 breaker=self.breaker, **callbacks)

    @asynccontextmanager
    async def aio(self) -> AsyncIterator[AsyncSession]:
        """The async twin for the running event loop: an async client (an httpx pool belongs to one
        loop, so it is opened and closed in it) over this Session's sink, prices, budget and breaker."""
        from hive_core.openrouter.aio import AsyncOpenRouterClient

        async with AsyncOpenRouterClient(self.settings, sink=self.recorder, prices=self.prices,
                                         policy=self.policy) as client:
            yield AsyncSession(self, client)


class AsyncSession:
    """:class:`Session` on one event loop (from :meth:`Session.aio`): the same parts, the async client.

    Its ``chat``/``stream`` signatures repeat the sync ones on purpose (the public twin surface);
    the decisions behind them live once, in ``_options``, ``_one`` and :class:`~hive_core.ask.ChainRun`."""

    def __init__(self, session: Session, client: AsyncOpenRouterClient) -> None:
        self.session = session
        self.client = client

    async def ask(self, prompt: Messages, chain: Sequence[str] | None = None, options: AskOptions | None = None, *,
                  selection: SelectionRequest | None = None, **callbacks: Any) -> AskResult:
        """:func:`hive_core.ask.aask` with the Session's budget and breaker (see :meth:`Session.ask`).

        The ledger and breaker calls are short local transactions made on the loop, not in a thread:
        the budget's connection and open reservations belong to the thread that opened them.
        """
        from hive_core.ask import aask

        session = self.session
        chain, options = session._chain(prompt, chain, options, selection)
        return await aask(self.client, prompt, chain, options, budget=session.budget, breaker=session.breaker,
                          **callbacks)

    async def chat(self, messages: Messages, *, model: str, max_tokens: int | None = None, request_type: str = "chat",
                   task_category: str | None = None, request_id: str | None = None, over_budget: bool = False,
                   **params: Unpack[ChatParams]) -> ChatResult:
        """:meth:`Session.chat` on the loop."""
        options = _options(False, max_tokens, request_type, task_category, request_id, over_budget, params)
        return (await self.ask(messages, [model], options)).result

    def stream(self, messages: Messages, *, model: str, max_tokens: int | None = None,
               on_chunk: Callable[[str, str], object] | None = None,
               on_progress: Callable[[Progress], object] | None = None,
               on_complete: Callable[[ChatResult], object] | None = None,
               on_error: Callable[[OpenRouterError], object] | None = None,
               on_tool_call: Callable[[ToolCallDelta], object] | None = None,
               request_type: str = "chat", task_category: str | None = None, request_id: str | None = None,
               over_budget: bool = False, **params: Unpack[ChatParams]) -> AsyncStreamHandle:
        """:meth:`Session.stream` on the loop: ``async for piece in handle``; cancelling the task (or
        ``handle.cancel()``) ends it as ``cancelled``."""
        run, step = self.session._one(messages, model, _options(True, max_tokens, request_type, task_category,
                                                                request_id, over_budget, params))
        completed, failed = _ends(run, step, on_complete, on_error)
        return self.client.stream(messages, on_chunk=on_chunk, on_progress=on_progress, on_tool_call=on_tool_call,
                                  on_complete=completed, on_error=failed, **run.send_arguments(step))


def _options(stream: bool, max_tokens: int | None, request_type: str, task_category: str | None,
             request_id: str | None, over_budget: bool, params: Mapping[str, Any]) -> AskOptions:
    from hive_core.ask import AskOptions

    return AskOptions(stream=stream, max_tokens=max_tokens, request_type=request_type, task_category=task_category,
                      params=dict(params), request_id=request_id, over_budget=over_budget)


def _ends(run: ChainRun, step: Step, on_complete: Callable[[ChatResult], object] | None,
          on_error: Callable[[OpenRouterError], object] | None,
          ) -> tuple[Callable[[ChatResult], None], Callable[[OpenRouterError], None]]:
    """The stream's ``on_complete`` / ``on_error``: the run settles (or releases) the step's
    reservation and tells the breaker, then the caller's own callback runs. A cancel ends as an
    error (``Cancelled``): released, unless its usage event already settled it; no verdict."""

    def completed(result: ChatResult) -> None:
        run.answered(step, result)
        if on_complete is not None:
            on_complete(result)

    def failed(error: OpenRouterError) -> None:
        run.falls_back(step, error)
        if on_error is not None:
            on_error(error)

    return completed, failed


def prompt_text(prompt: Messages) -> str:
    """What the selector assesses: the prompt string, or the text of the last user message."""
    if isinstance(prompt, str):
        return prompt
    for message in reversed(prompt):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, Sequence):
                return " ".join(part["text"] for part in content
                                if isinstance(part, Mapping) and isinstance(part.get("text"), str))
    return ""
