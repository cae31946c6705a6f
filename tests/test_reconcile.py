"""``hive-jobs reconcile``: cancelled streams get their billed cost from /generation, once."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hive_core.errors import NotFound
from hive_core.openrouter import OpenRouterClient
from hive_core.store.events import Usage
from ingest.log import EventLog
from jobs.budget.reconcile import find_unbilled, reconcile
from tests.plugins.cli import BIN, hive_env, run_cli
from tests.plugins.emulator import MODEL, emu_settings
from tests.plugins.processes import stopped
from tests.plugins.store import events


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
    assert again.as_dict() == {"checked": 0, "corrected": 0, "pending": [], "failed": [], "corrected_usd": 0.0}
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
    assert sorted(first) == ["checked", "corrected", "corrected_usd", "failed", "pending"]
    if first["corrected"]:
        assert second == {"checked": 0, "corrected": 0, "pending": [], "failed": [], "corrected_usd": 0.0}


def wait_until_billed(settings: Any, generation_ids: list[str]) -> None:
    """Until /generation knows every id (its record may lag the cancel by a moment)."""
    deadline = time.monotonic() + 10
    with OpenRouterClient(settings) as client:
        for generation_id in generation_ids:
            while True:
                try:
                    client.get_generation(generation_id)
                    break
                except NotFound:
                    assert time.monotonic() < deadline, f"/generation never knew {generation_id}"
                    time.sleep(0.05)


@pytest.mark.slow
def test_two_reconciles_at_once_correct_each_event_once(emulator_factory: Any, tmp_path: Path) -> None:
    """Two ``hive-jobs reconcile`` processes started together, three rounds of three cancelled
    streams: every usage event gets exactly one correction on disk (they used to get one each)."""
    emu = emulator_factory(latency_scale=0.2)
    settings = emu_settings(emu, tmp_path, read_timeout_s=5.0)
    env = hive_env(emu, settings.data_dir)
    rounds, streams = 3, 3
    for _ in range(rounds):
        wait_until_billed(settings, [cancelled_stream(emu, settings) for _ in range(streams)])
        procs = [subprocess.Popen([str(BIN / "hive-jobs"), "reconcile", "--json"], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        with stopped(procs):
            outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert sum(json.loads(out)["corrected"] for out, _ in outputs) == streams
    corrected = Counter(row[0] for row in events(settings.data_dir, "usage", "supersedes") if row[0])
    assert len(corrected) == rounds * streams and set(corrected.values()) == {1}
    assert find_unbilled(settings.data_dir) == []


def test_a_second_correction_of_one_event_counts_nothing(data_dir: Path) -> None:
    """Two corrections of one usage event (two reconciles that raced, or a foreign writer): every
    reader of the ``usage`` view - analytics, rollups, budgets - counts the one with the lowest
    event_id, once."""
    from jobs.budget.spend import read_spend
    from queries import connect

    original = Usage(request_id="r1", model=MODEL, cost_usd=0.001, cost_source="estimated", generation_id="gen-1")
    other = Usage(request_id="r2", model=MODEL, cost_usd=0.5, cost_source="billed")
    fixes = [Usage(ts=original.ts, request_id="r1", model=MODEL, cost_usd=0.02 + i / 100, cost_source="billed",
                   generation_id="gen-1", supersedes=original.event_id) for i in range(3)]
    with EventLog(data_dir) as log:
        log.record_many([original, other, *reversed(fixes)])
    with connect(data_dir) as store:
        rows = store.con.execute("SELECT request_id, event_id, cost_usd FROM usage ORDER BY request_id").fetchall()
    first = min(fixes, key=lambda e: e.event_id)
    assert rows == [("r1", first.event_id, first.cost_usd), ("r2", other.event_id, 0.5)]
    assert sum(read_spend(data_dir).daily("global").values()) == pytest.approx(first.cost_usd + 0.5)


def test_a_byok_correction_keeps_the_providers_price() -> None:
    """A cut BYOK stream's correction: cost_usd is OpenRouter's fee (``total_cost``), the provider's
    bill on the user's key comes from ``upstream_inference_cost`` (else cost analytics would call
    the all-in figure a floor for ever)."""
    from datetime import UTC, datetime

    from jobs.budget.reconcile import Unbilled, corrected_usage

    old = Unbilled(event_id="e1", request_id="r1", generation_id="gen-1", model=MODEL, provider=None,
                   request_type="chat", task_category=None, app=None, user=None, tags=[], cost_source="estimated",
                   outcome="cancelled", ts=datetime(2026, 11, 20, tzinfo=UTC), key_id="k1")
    generation = {"total_cost": 0.00002, "is_byok": True, "upstream_inference_cost": 0.0004,
                  "native_tokens_prompt": 120, "native_tokens_completion": 30, "native_tokens_completion_images": 0}
    fixed = corrected_usage(old, generation)
    assert fixed is not None
    assert (fixed.cost_usd, fixed.is_byok, fixed.upstream_cost_usd) == (0.00002, True, 0.0004)
    assert (fixed.prompt_tokens, fixed.completion_tokens, fixed.supersedes) == (120, 30, "e1")
    assert fixed.key_id == "k1"  # the correction counts against the same gateway key
    unreported = corrected_usage(old, {**generation, "upstream_inference_cost": None})
    assert unreported is not None and unreported.upstream_cost_usd is None
