"""Writing events: the append-only Parquet event log, compaction and verification."""

from ingest.log import EventLog

__all__ = ["EventLog"]
