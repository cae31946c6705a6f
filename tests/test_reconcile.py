"""``hive-jobs reconcile``: cancelled streams get their billed cost from /generation, once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hive_core.openrouter import OpenRouterClient
from ingest.log import EventLog
from jobs.reconcile import find_unbilled, reconcile
from tests.test_ask import events, hive_env, run_cli
from tests.test_client import MODEL, emu_settings


def cancelled_stream(emu: Any, settings: Any) -> str:
    """Stream, cancel after three pieces; returns the generation id (usage recorded as unknown)."""
    with EventLog(settings.data_dir) as log, OpenRouterClient(settings, sink=log) as client:
        handle = client.stream("A long story", model=MODEL, max_tokens=2000)
        for i, _ in enumerate(handle):
            if i == 2:
                handle.cancel()
    assert handle.result is not None and handle.result.generation_id
    return handle.result.generation_id


def reconcile_until_done(settings: Any, client: OpenRouterClient) -> Any:
    deadline = time.monotonic() + 10
    while True:  # the /generation record may lag the cancel by a moment
        with EventLog(settings.data_dir) as log:
            report = reconcile(settings.data_dir, client, log)
        if report.corrected or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def test_reconcile(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(latency_scale=0.2)
    settings = emu_settings(emu, tmp_path, read_timeout_s=5.0)
    generation_id = cancelled_stream(emu, settings)
    (unbilled,) = find_unbilled(settings.data_dir)
    assert unbilled.outcome == "cancelled" and unbilled.cost_source == "unknown"
    with OpenRouterClient(settings) as client:
        report = reconcile_until_done(settings, client)
        assert report.corrected == 1 and report.failed == []
        rows = events(settings.data_dir, "usage", "event_id, cost_source, cost_usd, supersedes, generation_id, "
                                                  "request_id, completion_tokens, ts")
        old, new = sorted(rows, key=lambda r: r[3] is not None)  # the correction supersedes the original
        assert new[7] == old[7], "the correction is dated like the original: same day, same rollup"
        assert (old[1], new[1]) == ("unknown", "billed") and new[3] == old[0]
        assert new[2] > 0 and new[4] == old[4] == generation_id and new[5] == old[5] and new[6] > 0
        with EventLog(settings.data_dir) as log:  # idempotent: nothing left to correct
            again = reconcile(settings.data_dir, client, log)
    assert (again.checked, again.corrected) == (0, 0) and find_unbilled(settings.data_dir) == []
    assert len(events(settings.data_dir, "usage", "event_id")) == 2


def test_reconcile_cli(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(latency_scale=0.2)
    settings = emu_settings(emu, tmp_path, read_timeout_s=5.0)
    cancelled_stream(emu, settings)
    time.sleep(0.3)
    env = hive_env(emu, settings.data_dir)
    first = json.loads(run_cli("hive-jobs", ["reconcile", "--json"], env).stdout)
    second = json.loads(run_cli("hive-jobs", ["reconcile", "--json"], env).stdout)
    assert first["corrected"] + len(first["pending"]) == 1 and first["failed"] == []
    if first["corrected"]:
        assert second == {"checked": 0, "corrected": 0, "pending": [], "failed": [], "corrected_usd": 0.0}
