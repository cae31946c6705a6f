"""The catalog on first use: fetched when missing, refreshed when older than a day, the last copy offline.

Why: the catalog is what ``recommend``, budget estimates and ``ask`` without ``--model`` stand on,
and a new user does not know ``hive models sync`` exists. ``GET /models`` is public, so nothing
(no API key) stands between a fresh data directory and a working one.

:func:`ensure_catalog` decides, with the library's clock (``now``, e.g. ``Settings.clock``):

==========================================  =====================================================
the data directory holds                    what happens
==========================================  =====================================================
no catalog (or one that does not parse)     fetched; ``notice("fetched the model catalog ...")``.
                                            Offline: :class:`~hive_core.errors.CatalogMissing`
                                            whose one line says what to do.
a catalog Hive fetched less than a day ago  used as it is (no request).
one fetched a day ago or more               refreshed; ``notice("refreshed ...")``. Offline or
                                            refused: the last copy is used and ``notice`` says
                                            ``warning: ... using the copy fetched <when>``.
a catalog Hive did not fetch                used as it is: a copy placed by hand is the user's
(no fetch time inside: copied in by hand)   choice; ``hive models sync`` replaces it.
==========================================  =====================================================

The fetch time is written *inside* the catalog file, as the root key
:data:`~hive_core.catalog.catalog.FETCHED_AT_KEY` (an ISO instant read from ``now``), so the age is
measured on one clock - never a file mtime against a moved clock. A time in the future (the clock
was moved back since) counts as fresh.

The request is one plain ``httpx`` GET (no ``Authorization`` header, the settings' timeouts, no
retries: a stale catalog is still usable, and a missing one is one command away). Its failures are
the client's typed errors (:func:`hive_core.openrouter.errors.translate_transport_error`,
:func:`~hive_core.openrouter.errors.api_error`); ``httpx`` is imported only when a fetch happens.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hive_core.catalog.catalog import FETCHED_AT_KEY, Catalog, load_catalog
from hive_core.errors import CatalogError, CatalogMissing, MalformedResponse, OpenRouterError

if TYPE_CHECKING:
    from hive_core.clock import Clock
    from hive_core.settings import Settings

__all__ = ["MAX_AGE", "Notice", "age_text", "ensure_catalog", "fetch_document", "sync_catalog"]

#: a catalog fetched longer ago than this is refreshed on its next use
MAX_AGE = timedelta(days=1)

#: where one-line notices go (the CLIs: stderr)
Notice = Callable[[str], object]


def fetch_document(settings: Settings) -> dict[str, Any]:
    """``GET {base_url}/models`` as served; raises the client's typed :class:`OpenRouterError`s."""
    import httpx

    from hive_core.openrouter.errors import api_error, translate_transport_error
    from hive_core.openrouter.protocol import parse_json

    timeout = httpx.Timeout(connect=settings.connect_timeout_s, read=settings.read_timeout_s,
                            write=settings.read_timeout_s, pool=settings.connect_timeout_s)
    try:
        response = httpx.get(f"{settings.base_url}/models", timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise translate_transport_error(exc) from exc
    if response.status_code >= 400:
        raise api_error(response.status_code, response.headers, response.content)
    document = parse_json(response.content, "the model list")
    if not isinstance(document.get("data"), list):
        raise MalformedResponse("the model list has no data array")
    return document


def sync_catalog(settings: Settings, *, now: Clock) -> Catalog:
    """Fetch ``/models``, stamp it with ``now()`` and write it as the data directory's catalog
    (atomically: a reader sees the old file or the new one); returns the parsed catalog.

    A document that does not parse is not written (:class:`CatalogError`): the last copy stays.
    """
    from hive_core.catalog.catalog import parse_catalog
    from hive_core.store.atomic import write_json_atomic

    document = {**fetch_document(settings), FETCHED_AT_KEY: now().isoformat()}
    parse_catalog(document)  # refuse a document we could not use before it replaces a good one
    datadir = settings.datadir
    write_json_atomic(datadir.catalog_file, document, indent=None, sort_keys=False)
    return load_catalog(datadir.catalog_file, cache_dir=datadir.cache)


def age_text(age: timedelta) -> str:
    """``3 h``, ``2 days``: how old a copy is, for the one-line notices."""
    hours = max(age.total_seconds(), 0.0) / 3600
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.0f} days"


def ensure_catalog(settings: Settings, *, now: Clock | None = None, notice: Notice) -> Catalog:
    """The data directory's catalog, fetched or refreshed first when needed (see the module
    docstring); ``now`` defaults to ``settings.clock``. Raises :class:`CatalogMissing` when there is
    no usable copy and none can be fetched, and :class:`CatalogError` when the copy on disk does not
    parse and no new one can be fetched."""
    clock = now or settings.clock
    datadir = settings.datadir
    last: Catalog | None = None
    broken: CatalogError | None = None
    try:
        last = load_catalog(datadir.catalog_file, cache_dir=datadir.cache)
    except CatalogMissing:
        pass
    except CatalogError as exc:
        broken = exc
    instant: datetime = clock()
    if last is not None and (last.fetched_at is None or instant - last.fetched_at < MAX_AGE):
        return last
    try:
        fresh = sync_catalog(settings, now=clock)
    except (OpenRouterError, CatalogError, OSError) as exc:  # OSError: a read-only or full data directory
        if last is not None and last.fetched_at is not None:
            notice(f"warning: could not refresh the model catalog ({exc}); using the copy fetched "
                   f"{age_text(instant - last.fetched_at)} ago")
            return last
        if broken is not None:
            raise CatalogError(f"{broken}; fetching a new one failed too ({exc})") from exc
        raise CatalogMissing(f"{datadir.catalog_file} and fetching it failed ({exc})") from exc
    if last is None or last.fetched_at is None:  # a stale copy has its fetch time: None narrows the type
        notice(f"fetched the model catalog ({len(fresh)} models) into {datadir.catalog_file}")
    else:
        notice(f"refreshed the model catalog ({len(fresh)} models; the last copy was "
               f"{age_text(instant - last.fetched_at)} old)")
    return fresh
