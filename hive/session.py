"""``hive.Session``: Hive as a library in one line, recording, budgets and the breaker on by default.

    import hive
    with hive.Session.from_env() as session:      # OPENROUTER_API_KEY, HIVE_DATA_DIR, HIVE_APP, ...
        result = session.chat("Say hi", model="openai/gpt-4o-mini", max_tokens=20)
        answer = session.ask("Why is the sky blue?")        # the selector picks a model and fallbacks
        session.store.lazy("usage").collect()               # what was recorded, for notebooks

It is :class:`hive_core.session.Session` (``chat``, ``stream``, ``ask``, and their async twins
through ``aio()``), plus the one thing ``hive_core`` may not do: open the data directory's event
log (``ingest``'s), so that no request goes unrecorded. Closing it closes the clients and the
budget's ledger, then the store, then the log, which writes what it buffered.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive.store import Store
from hive_core.session import Session as CoreSession

if TYPE_CHECKING:
    from hive_core.openrouter.retry import RetryPolicy
    from hive_core.settings import Settings

__all__ = ["Session"]


class Session(CoreSession):
    """A Session that records into ``settings.data_dir``'s event log, which it opens and closes.

    ``policy`` overrides the retry policy the settings describe.
    """

    def __init__(self, settings: Settings, *, policy: RetryPolicy | None = None) -> None:
        """Opens the event log; refuses a moved clock (``HIVE_AS_OF``) with a ConfigError."""
        from ingest import EventLog

        settings.require_real_clock()  # before anything opens: a Session sends requests
        self.log = EventLog(settings.data_dir, max_events=settings.flush_max_events,
                            max_age_s=settings.flush_max_age_s)
        super().__init__(settings, self.log, policy=policy)

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None, *, policy: RetryPolicy | None = None,
                 **settings: Any) -> Session:
        """A Session from the environment (``OPENROUTER_API_KEY``, ``HIVE_DATA_DIR``, ``HIVE_APP``,
        ... - every setting of the README's table), with ``data_dir`` and ``settings`` on top
        (``app="search"``, ``max_attempts=2``, ...)."""
        from hive_core.settings import Settings

        # a string stays a string: Path("s3://b/x") would collapse to "s3:/b/x" before Settings sees it
        return cls(Settings.from_env(data_dir=str(data_dir) if data_dir is not None else None, **settings),
                   policy=policy)

    @cached_property
    def store(self) -> Store:
        """The data directory's event views and rollup tables (:class:`hive.store.Store`); reads
        flush this Session's log first, so they include its own requests."""
        self._still_open()
        return Store(self.settings.data_dir, before_read=self.log.flush)

    def close(self) -> None:
        """Close the clients and the ledger, then the store, then the event log (writing what it
        buffered; events it cannot write are spilled and ``EventsSpilled`` is raised). Idempotent."""
        try:
            super().close()
        finally:
            store = self.__dict__.pop("store", None)
            try:
                if store is not None:
                    store.close()
            finally:
                self.log.close()
