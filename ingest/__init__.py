"""Writing events: the append-only Parquet event log, compaction and verification.

Public surface (what ``jobs`` and the CLIs may use): :class:`EventLog`, :func:`write_atomic`,
:func:`compact`, :func:`verify`. ``EventLog`` is imported on first use (PEP 562): it needs the
pydantic event classes, which a job that only writes or checks Parquet files must not pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingest.compact import compact
from ingest.files import write_atomic
from ingest.verify import verify

if TYPE_CHECKING:
    from ingest.log import EventLog

__all__ = ["EventLog", "compact", "verify", "write_atomic"]


def __getattr__(name: str) -> Any:
    if name == "EventLog":
        from ingest.log import EventLog

        return EventLog
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
