"""What one gateway worker's requests share, opened at start-up and closed at shutdown.

One event log (``ingest.EventLog``: buffered, flushed by age, by count - :func:`flush_events` - and
at close), one
:class:`~hive_core.session.Session` over it (budget, breaker, selector, catalog prices: exactly the
parts ``hive ask`` uses), one :class:`~hive_core.openrouter.core.ClientCore` recording into the
Session's settling sink (so each usage event settles its reservation), one upstream pool, and the
virtual keys (``hive_core.keys``) unless the gateway runs with ``--no-auth``; the watch that cuts
off a client that stops reading (:mod:`hive_gateway.sending`); and the lane through which the loop
writes the ledger and the keys' counters without ever waiting for another process's lock
(:mod:`hive_gateway.lane`).

Closing order matters: the upstream pool first (nothing more can arrive), then the lane (what its
threads still do ends), then the Session (the ledger), then the log, whose close writes every
buffered event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from hive_core.openrouter.core import ClientCore
from hive_core.session import Session
from hive_core.settings import SETTINGS
from hive_gateway.errors import TooManyRequests, Unauthorized
from hive_gateway.lane import Lane
from hive_gateway.routing import load_catalog_document, models_document
from hive_gateway.sending import SendWatch
from hive_gateway.trouble import Trouble
from ingest import EventLog

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from hive_core.keys import KeyStore, RateLimiter, VirtualKey
    from hive_core.settings import Settings
    from hive_gateway.config import GatewayConfig
    from hive_gateway.lane import Holdable
    from hive_gateway.observe import Observer
    from hive_gateway.upstream import Upstream

__all__ = ["REFRESH_S", "WORKER_FLUSH_EVENTS", "Gateway", "flush_events"]

#: events a worker's log buffers before it flushes, unless HIVE_FLUSH_EVENTS says otherwise. The
#: library's default (50,000) is for a process that records its own calls; a worker at full speed
#: records ~4,400 events/s, so its buffer then held the whole 5 s of HIVE_FLUSH_AGE, ~22,000 events
#: as Python objects. Measured, one worker's resident memory under sustained load (48-72 runs of
#: 1,500 requests or 400 streams at concurrency 32) settled at 102-104 MB with 50,000, 97-99.5 MB
#: with 10,000 and 94.4-95.4 MB with 5,000: a Parquet file every ~1.1 s at that speed instead of 5 s
#: (below ~1,000 events/s the age flushes first, as before), and no CPU per request measurably added
#: (alternated runs beside the floor, median 2.41x it with 5,000, 2.61x with 50,000, both within the
#: runs' spread).
WORKER_FLUSH_EVENTS = 5_000
#: how often a worker looks for a catalog, ranking table or ``config.json`` (fallbacks) written since
#: it loaded its own (three ``stat`` calls; :meth:`Gateway._refresh_every`)
REFRESH_S = 2.0


def flush_events(settings: Settings) -> int:
    """How many events a worker's log buffers: HIVE_FLUSH_EVENTS when it is set to anything but its
    default, else :data:`WORKER_FLUSH_EVENTS`."""
    if settings.flush_max_events != SETTINGS["flush_max_events"].default:
        return settings.flush_max_events
    return WORKER_FLUSH_EVENTS


class Gateway:
    """The shared parts of one worker; :meth:`start` in the event loop, :meth:`close` at shutdown."""

    def __init__(self, config: GatewayConfig, observer: Observer) -> None:
        settings = config.settings
        self.config = config
        self.settings = settings
        self.observer = observer
        self.secret = settings.require_api_key()
        self.trouble = Trouble(sys.stderr, self.secret)  # the ledger's failures while serving: the operator's lines
        self.log = EventLog(settings.data_dir, max_events=flush_events(settings), max_age_s=settings.flush_max_age_s)
        self.session = Session(settings, self.log)
        self.core = ClientCore(settings, sink=self.session.recorder, prices=self.session.prices, policy=None)
        self.keys: KeyStore | None = None
        self.limiter: RateLimiter | None = None
        if not config.no_auth:
            from hive_core.keys import KeyStore, RateLimiter

            self.keys, self.limiter = KeyStore(settings.datadir), RateLimiter(settings.datadir)
        #: the stores each write holds (:mod:`hive_gateway.lane`): the ledger's for a reservation or a
        #: settlement, the counters' for a key's request
        self.ledger: tuple[Holdable, ...] = (self.session.budget.ledger,)
        self.counters: tuple[Holdable, ...] = () if self.limiter is None else (self.limiter,)
        self.lane = Lane(self.trouble)
        self.models_body = self._models_body()
        self.upstream: Upstream | None = None
        #: the responses being written: a client is cut off once a write makes no progress for
        #: ``--send-timeout``
        self.sends = SendWatch(config.send_timeout_s)
        self._sweeper: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    def _models_body(self) -> bytes:
        """``GET /v1/models``'s answer, from the synced catalog file as it is now."""
        catalog_file = self.settings.datadir.catalog_file
        catalog = load_catalog_document(catalog_file.read_bytes() if catalog_file.exists() else None)
        return json.dumps(models_document(catalog, int(time.time()))).encode()

    async def start(self) -> None:
        """Open the upstream pool (it belongs to the running loop), start watching the sends and
        looking for a new catalog or ranking table."""
        from hive_gateway.upstream import Upstream

        self.upstream = Upstream(self.settings, self.core, self.trouble)
        self.lane.start([*self.ledger, *self.counters])
        self._sweeper = asyncio.create_task(self.sends.run(self.trouble))
        self._refresher = asyncio.create_task(self._refresh_every(REFRESH_S))

    async def _refresh_every(self, interval: float) -> None:
        """Every ``interval``: what ``hive models sync`` and ``hive-jobs rankings`` wrote since, taken
        in (:meth:`~hive_core.session.Session.refresh`, in a thread: parsing a catalog takes ~0.1 s),
        so a worker that runs for weeks routes on today's catalog and measurements. What fails is
        the operator's line; the worker goes on with what it had."""
        while True:
            await asyncio.sleep(interval)
            try:
                prices = self.session.prices
                if await asyncio.to_thread(self.session.refresh) and self.session.prices is not prices:
                    self.core.tracker.prices = self.session.prices
                    self.models_body = await asyncio.to_thread(self._models_body)
            except Exception as error:
                self.trouble(error)

    async def close(self) -> None:
        """Close the pool, wait for the lane, close the Session and the key stores, then the log
        (every event written)."""
        try:
            for task in (self._sweeper, self._refresher):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if self.upstream is not None:
                await self.upstream.close()
        finally:
            try:
                await self.lane.close()
            finally:
                self._close_stores()

    def _close_stores(self) -> None:
        try:
            self.session.close()
            for store in (self.keys, self.limiter):
                if store is not None:
                    store.close()
        finally:
            self.log.close()

    async def authenticate(self, headers: Mapping[str, str]) -> VirtualKey | None:
        """The request's virtual key (``None`` with ``--no-auth``), its requests per minute counted
        (through the lane: another process counting at the same instant never stalls the loop);
        :class:`Unauthorized` or :class:`TooManyRequests` otherwise."""
        if self.keys is None or self.limiter is None:
            return None
        scheme, _, secret = headers.get("authorization", "").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise Unauthorized("no API key: send the gateway's virtual key as 'Authorization: Bearer hk-...'")
        now = self.settings.now()
        key = self.keys.verify(secret, now=now)
        if key is None:
            raise Unauthorized("invalid or revoked API key")
        wait = await self.lane.run(self.counters, self._count, key, now)
        if wait is not None:
            raise TooManyRequests(f"key {key.key_id} is over its {key.rpm} requests per minute; retry in "
                                  f"{wait:.1f} s", retry_after=wait)
        return key

    def _count(self, key: VirtualKey, now: datetime) -> float | None:
        assert self.limiter is not None
        return self.limiter.acquire(key, now=now)

    def models_for(self, key: VirtualKey | None) -> bytes:
        """``GET /v1/models`` for this key: the whole list, or the models it may use (and the aliases)."""
        if key is None or not key.models:
            return self.models_body
        from hive_gateway.routing import ALIASES

        doc: dict[str, Any] = json.loads(self.models_body)
        doc["data"] = [m for m in doc["data"] if m["id"] in ALIASES or key.allows_model(m["id"])]
        return json.dumps(doc).encode()
