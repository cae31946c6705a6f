"""Writing events: the append-only Parquet event log, compaction and verification.

Public surface (what ``jobs`` and the CLIs may use): :class:`EventLog`, :func:`write_atomic`,
:func:`compact`, :func:`verify`. Each is imported on first use (PEP 562): a job that only writes
a Parquet file must not pay for building the pydantic event classes the log needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.compact import compact
    from ingest.files import write_atomic
    from ingest.log import EventLog
    from ingest.verify import verify

__all__ = ["EventLog", "compact", "verify", "write_atomic"]

_HOMES = {"EventLog": "ingest.log", "compact": "ingest.compact", "verify": "ingest.verify",
          "write_atomic": "ingest.files"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
