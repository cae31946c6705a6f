"""``GET /metrics``: the gateway's Prometheus metrics, an :class:`~hive_gateway.observe.Observer`.

    metrics = Metrics(BudgetRemaining(budget), shared_dir=DataDir(data_dir).gateway_state)
    metrics.start()                  # a worker's snapshot file, written every second while it changes
    ...                              # the request path calls metrics.started() / metrics.finished()
    text = metrics.render()          # the sum over every worker, in the text format (CONTENT_TYPE)
    metrics.close()                  # the final snapshot, on exit

What is counted (the families are listed in :mod:`hive_gateway.exposition`): requests by route,
status and error class, tokens and cost by model, relayed SSE chunks, request latency and time to
first token, chat requests in flight, and the budget left per scope and window.

Labels are bounded and never carry a secret or a prompt: a route is one of :data:`ROUTES` or
``other`` (a path may hold anything a client typed), an error class must look like a class name, and
a model is labelled only when it was billed (a ``usage`` event names it; a refused request's model
is whatever a client typed) and looks like an OpenRouter model id (``vendor/name``; a key never
does), up to :data:`MAX_MODELS` of them. Apps, users and keys are in the access log, not here:
their number is the clients' to choose.

The tokens and cost counted are the request's ``usage`` events' (its summary's), by the model each
names, whatever way the request ended: an answer, a partial one, a mid-stream error, a client that
went away, a cut by the drain or the send timeout. They sum to what the events and the ledger hold.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from hive_core.budget.reservation import Budget
from hive_core.period import Period
from hive_gateway.exposition import (
    BUDGET,
    CHUNKS,
    COST,
    IN_FLIGHT,
    LATENCY,
    REQUESTS,
    TOKENS,
    TTFT,
    Family,
    Histogram,
    Snapshot,
    label_text,
    render,
)
from hive_gateway.metric_files import WorkerFiles
from hive_gateway.observe import Billed, RequestSummary

__all__ = ["CHAT_ROUTE", "MAX_MODELS", "ROUTES", "BudgetRemaining", "Metrics"]

CHAT_ROUTE = "/v1/chat/completions"
#: the routes that get their own label value; any other path counts as ``other``
ROUTES = frozenset({CHAT_ROUTE, "/v1/models", "/healthz", "/metrics"})
#: distinct model labels kept; later ones count as ``other`` (a bound on the series a scrape returns)
MAX_MODELS = 500
DEFAULT_FLUSH_INTERVAL_S = 1.0
_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MODEL_ID = re.compile(r"[a-z0-9][a-z0-9._-]*/[A-Za-z0-9._:~-]{1,120}")
#: whether the request of the current task started, and as a stream (None: not started)
_STARTED: ContextVar[bool | None] = ContextVar("hive_gateway_metrics_started", default=None)


@lru_cache(maxsize=4096)
def _request_labels(path: str, status: int, error: str | None) -> str:
    route = path if path in ROUTES else "other"
    error_class = error if error is None or _CLASS_NAME.fullmatch(error) else "other"
    return label_text(route=route, status=str(status), error=error_class or "none")


@lru_cache(maxsize=64)
def _latency_labels(path: str, stream: bool) -> str:
    return label_text(route=path if path in ROUTES else "other", stream="true" if stream else "false")


@lru_cache(maxsize=MAX_MODELS + 1)
def _model_labels(model: str) -> tuple[str, str, str]:
    """The label texts of a model's prompt tokens, completion tokens and cost (built once per model)."""
    return label_text(model=model, kind="prompt"), label_text(model=model, kind="completion"), label_text(model=model)


_IN_FLIGHT_LABELS = {True: label_text(stream="true"), False: label_text(stream="false")}


class Metrics:
    """Counters, histograms and gauges of one worker; :meth:`render` sums every worker's.

    ``budget_remaining`` returns USD left per ``(scope, window)`` (a :class:`BudgetRemaining`);
    ``shared_dir`` is where the workers of one gateway share snapshots (None: this process alone).
    The request path calls :meth:`started` when a chat request gets going and :meth:`finished` once
    for every request, from the same task (aiohttp runs a request's middleware and handler in one):
    the request is in flight between the two. A context variable pairs them, so a request refused
    before it started (a 401, a bad body) never takes another one out of the gauge.
    Thread-safe: the event loop records, a background thread writes the snapshot file.
    """

    def __init__(self, budget_remaining: Callable[[], Mapping[tuple[str, str], float]] | None = None, *,
                 shared_dir: Path | None = None, flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> None:
        self.budget_remaining = budget_remaining
        self.files = None if shared_dir is None else WorkerFiles(shared_dir)
        self.flush_interval_s = flush_interval_s
        self._values: dict[str, dict[str, float]] = {f.name: {} for f in (REQUESTS, TOKENS, COST, CHUNKS, IN_FLIGHT)}
        self._histograms: dict[str, dict[str, Histogram]] = {LATENCY.name: {}, TTFT.name: {}}
        self._in_flight = {True: 0, False: 0}
        self._models: set[str] = set()
        self._lock = threading.Lock()  # the numbers: held for microseconds
        self._flush_lock = threading.Lock()  # one writer of our file at a time, newest last
        self._changes = 0
        self._flushed = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the Observer ----------------------------------------------------------------------------

    def started(self, *, stream: bool) -> None:
        """A chat request started (in this task)."""
        _STARTED.set(stream)
        with self._lock:
            self._in_flight[stream] += 1
            self._set_in_flight(stream)

    def finished(self, summary: RequestSummary) -> None:
        """A request ended: count it, its tokens, cost, chunks and timings."""
        stream = _STARTED.get()
        if stream is not None:
            _STARTED.set(None)
        with self._lock:
            self._changes += 1
            self._inc(REQUESTS.name, _request_labels(summary.path, summary.status, summary.error_class), 1)
            if stream is not None:
                self._in_flight[stream] -= 1
                self._set_in_flight(stream)
            if summary.billed is not None:
                for share in summary.billed:
                    self._bill(share)
            elif summary.prompt_tokens or summary.completion_tokens or summary.cost_usd:
                self._bill(summary)  # (a summary has the fields of one share: no tuple built per request)
            if summary.chunks:
                self._inc(CHUNKS.name, "", summary.chunks)
            self._observe(LATENCY, _latency_labels(summary.path, summary.stream), summary.latency_s)
            if summary.ttft_s is not None:
                self._observe(TTFT, "", summary.ttft_s)

    def _bill(self, billed: Billed | RequestSummary) -> None:
        """Count what a model was billed, under its label (none: not a model id)."""
        model = billed.model
        if model not in self._models:  # (a set lookup per request: a new model's checks run once)
            model = self._new_model(model)
            if model is None:
                return
        prompt, completion, cost = _model_labels(model)
        if billed.prompt_tokens:
            self._inc(TOKENS.name, prompt, billed.prompt_tokens)
        if billed.completion_tokens:
            self._inc(TOKENS.name, completion, billed.completion_tokens)
        if billed.cost_usd:
            self._inc(COST.name, cost, billed.cost_usd)

    def _new_model(self, model: str | None) -> str | None:
        """The label of a model not labelled yet: itself, ``other`` past :data:`MAX_MODELS`, None
        when it does not look like a model id."""
        if model is None or not _MODEL_ID.fullmatch(model):
            return None
        if len(self._models) >= MAX_MODELS:
            return "other"
        self._models.add(model)
        return model

    def _inc(self, name: str, labels: str, amount: float) -> None:
        series = self._values[name]
        series[labels] = series.get(labels, 0.0) + amount

    def _observe(self, family: Family, labels: str, value: float) -> None:
        series = self._histograms[family.name]
        hist = series.get(labels)
        if hist is None:
            hist = series[labels] = Histogram([0] * (len(family.buckets) + 1))
        hist.observe(value, family.buckets)

    def _set_in_flight(self, stream: bool) -> None:
        self._values[IN_FLIGHT.name][_IN_FLIGHT_LABELS[stream]] = self._in_flight[stream]
        self._changes += 1

    # -- reading ---------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """A copy of this worker's numbers."""
        with self._lock:
            return Snapshot({name: dict(series) for name, series in self._values.items()},
                            {name: {k: Histogram(list(h.counts), h.sum, h.count) for k, h in series.items()}
                             for name, series in self._histograms.items()})

    def render(self) -> str:
        """``GET /metrics``: every worker's numbers summed, and the budget left, in the text format.
        Blocking file and SQLite reads: call it off the event loop."""
        own = self.flush()
        total = own if self.files is None else self.files.merged(own)
        if self.budget_remaining is not None:
            total.values[BUDGET.name] = {label_text(scope=scope, window=window): usd
                                        for (scope, window), usd in self.budget_remaining().items()}
        return render(total)

    # -- this worker's snapshot file -------------------------------------------------------------

    def flush(self) -> Snapshot:
        """Write this worker's snapshot file if anything changed since the last write; return the snapshot."""
        with self._flush_lock:
            changes = self._changes
            snapshot = self.snapshot()
            if self.files is not None and changes != self._flushed:
                self.files.write(snapshot)
                self._flushed = changes
            return snapshot

    def start(self) -> None:
        """Fold the files of exited workers, then write ours every ``flush_interval_s`` while it changes."""
        if self.files is None or self._thread is not None:
            return
        self.files.retire_dead()
        self._thread = threading.Thread(target=self._flush_loop, name="hive-gateway-metrics", daemon=True)
        self._thread.start()

    def _flush_loop(self) -> None:
        """Write the snapshot every interval. A disk that refuses it (full, read-only) is one line on
        stderr per outage, never the thread's end: the numbers stay in memory and the next interval
        tries again (the final write at :meth:`close` reports its own failure)."""
        failing = False
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except OSError as exc:
                if not failing:
                    where = f" {self.files.path}" if self.files is not None else ""
                    print(f"warning: the gateway's metrics file{where} cannot be written ({exc.strerror or exc}): "
                          f"retried every {self.flush_interval_s:g} s; free disk space or fix the data directory",
                          file=sys.stderr, flush=True)
                failing = True
            else:
                failing = False

    def close(self) -> None:
        """Stop the flushing thread and write the final snapshot (call it on exit)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()


class BudgetRemaining:
    """USD left per ``(scope, window)`` for every limit of the budget config: the limit minus the
    ledger's settled spend in the window minus what is reserved in flight - what the next reservation
    is checked against. Cached for ``ttl_s``, so a scrape costs a few SQLite reads at most once a second."""

    def __init__(self, budget: Budget, *, ttl_s: float = 1.0) -> None:
        self.budget = budget
        self.ttl_s = ttl_s
        self._cached: dict[tuple[str, str], float] = {}
        self._at = -float("inf")
        self._lock = threading.Lock()

    def __call__(self) -> dict[tuple[str, str], float]:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl_s:
                self._cached = self._compute()
                self._at = time.monotonic()
            return dict(self._cached)

    def _compute(self) -> dict[tuple[str, str], float]:
        now = self.budget.clock()
        ledger = self.budget.ledger
        out: dict[tuple[str, str], float] = {}
        for scope, limit in self.budget.config.limits.items():
            caps = limit.caps()
            if not caps:
                continue
            reserved = ledger.reserved(scope)
            for window, cap in caps:
                out[(scope, window)] = cap - ledger.spend(scope, Period.budget(window, now, limit.reset_day)) - reserved
        return out
