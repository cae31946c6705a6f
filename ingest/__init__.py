"""Writing events: the append-only Parquet event log, compaction and verification.

Public surface (what ``jobs`` and the CLIs may use): :class:`EventLog`, :func:`write_atomic`,
:func:`compact`, :func:`verify`.
"""

from ingest.compact import compact
from ingest.files import write_atomic
from ingest.log import EventLog
from ingest.verify import verify

__all__ = ["EventLog", "compact", "verify", "write_atomic"]
