"""Writing events: the append-only Parquet event log, compaction, verification and spill files.

Public surface (what ``jobs`` and the CLIs may use): :class:`EventLog`, :func:`write_atomic`,
:func:`compact`, :func:`verify`, and the spill files' :func:`import_spills`, :func:`pending_spills`
and :class:`SpillImport`. ``EventLog`` and the spill names are imported on first use (PEP 562): they
need the pydantic event classes, which a job that only writes or checks Parquet files must not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ingest.compact import compact
from ingest.files import write_atomic
from ingest.verify import verify

if TYPE_CHECKING:
    from ingest.log import EventLog
    from ingest.spill import SpillImport, import_spills, pending_spills

__all__ = ["EventLog", "SpillImport", "compact", "import_spills", "pending_spills", "verify", "write_atomic"]

_LAZY = {"EventLog": "ingest.log", "SpillImport": "ingest.spill", "import_spills": "ingest.spill",
         "pending_spills": "ingest.spill"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
