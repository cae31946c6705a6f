"""The event log and its readers on a real S3-compatible server (moto, tests/plugins/s3.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import queries
from hive_core.settings import Settings
from hive_core.store.event_files import list_event_files
from ingest import EventLog
from tests.cases import api_call

pytest_plugins = ["tests.plugins.s3"]  # the S3 server fixtures (ask: tests/conftest.py lists it)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_event_log_writes_objects_that_sql_reads(s3_root: str, tmp_path: Path) -> None:
    root = Settings.from_env({}, data_dir=s3_root).data_dir
    with EventLog(root, max_events=10, writer="w1") as log:
        for i in range(25):
            log.record(api_call(i, ts=T0 + timedelta(minutes=i)))
    listing = list_event_files(root, "api_call")
    assert [p.name for p in listing.files] == ["w1-000001.parquet", "w1-000002.parquet", "w1-000003.parquet"]
    with queries.connect(root) as store:
        assert store.execute("SELECT count(*) FROM api_calls").fetchone() == (25,)
    assert not list(tmp_path.iterdir())
