"""Savings suggestions over a deterministic history written with EventLog: a cheaper model that is as
good is named with the right saving; one that is worse (success or quality) is not."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hive_core.period import Period
from hive_core.settings import Settings
from hive_core.store.events import ApiCall, QualityRating, StreamOutcome, Usage
from ingest.log import EventLog
from jobs.insights.suggest import suggest
from tests.plugins.cli import run_cli

UNTIL = date(2026, 5, 30)
SINCE = UNTIL - timedelta(days=29)
EXPENSIVE, CHEAP = "openai/gpt-4o", "openai/gpt-4o-mini"
PRICE = {EXPENSIVE: 0.01, CHEAP: 0.002}
N = 1500  # requests per (task, model): enough to show non-inferiority within 2 points


def _long(i: int) -> int:
    """Completion tokens of an uncapped request: long, and a different length each time."""
    return 1000 + (i * 37) % 3000


def _write(log: EventLog, task: str, model: str, fail_every: int, quality: float | None, *, retries: int = 0,
           late_cancels: int = 0, uncapped_every: int = 0) -> None:
    for i in range(N):
        uncapped = bool(uncapped_every) and i % uncapped_every == 1
        ts = datetime(SINCE.year, SINCE.month, SINCE.day, tzinfo=UTC) + timedelta(minutes=i * 28.8)
        rid = f"{task}-{model}-{i}"
        ok = i % fail_every != 0
        attempt = 1
        if i < retries:  # one failed attempt before the answer
            log.record(ApiCall(request_id=rid, ts=ts, attempt=1, model=model, task_category=task,
                               status="rate_limited", http_status=429, latency_ms=50,
                               max_tokens=None if uncapped else 256))
            attempt = 2
        log.record(ApiCall(request_id=rid, ts=ts, attempt=attempt, model=model, task_category=task,
                           status="ok" if ok else "server_error", http_status=200 if ok else 502,
                           latency_ms=800 if model == EXPENSIVE else 600, streamed=i < late_cancels,
                           max_tokens=None if uncapped else 256))
        if ok:
            log.record(Usage(request_id=rid, ts=ts, model=model, task_category=task, prompt_tokens=100,
                             completion_tokens=_long(i) if uncapped else 200, cost_usd=PRICE[model],
                             cost_source="billed"))
        if i < late_cancels:
            log.record(StreamOutcome(request_id=rid, ts=ts, model=model, task_category=task,
                                     outcome="cancelled", completion_tokens=190))
        elif i < 2 * late_cancels:
            log.record(StreamOutcome(request_id=rid, ts=ts, model=model, task_category=task,
                                     outcome="completed", completion_tokens=200))
        if quality is not None and i % 25 == 0:  # 60 ratings, scores alternating around the mean
            score = min(1.0, max(0.0, quality + (0.1 if i % 50 == 0 else -0.1)))
            log.record(QualityRating(request_id=rid, ts=ts, score=score, model=model))


@pytest.fixture
def history(data_dir: Path) -> Path:
    with EventLog(data_dir) as log:
        # summarization: the cheap model is as good (3% failures each, same ratings) -> suggested
        _write(log, "summarization", EXPENSIVE, 33, 0.8)
        _write(log, "summarization", CHEAP, 33, 0.8, late_cancels=40)
        # code-generation: the cheap model fails 10% -> not suggested
        _write(log, "code-generation", EXPENSIVE, 33, None, uncapped_every=10)
        _write(log, "code-generation", CHEAP, 10, None)
        # reasoning: same success, clearly worse ratings -> not suggested
        _write(log, "reasoning", EXPENSIVE, 33, 0.85)
        _write(log, "reasoning", CHEAP, 33, 0.5, retries=300)
    return data_dir


def test_suggest(history: Path) -> None:
    report = suggest(Settings(data_dir=history), Period.of_days(SINCE, UNTIL))
    switches = [s for s in report["suggestions"] if s["kind"] == "switch-model"]
    assert [(s["task_category"], s["model"], s["suggested_model"]) for s in switches] == [
        ("summarization", EXPENSIVE, CHEAP)]
    answers = N - len(range(0, N, 33))
    true_saving = answers * (PRICE[EXPENSIVE] - PRICE[CHEAP])  # a 30-day period: the month itself
    assert switches[0]["monthly_saving_usd"] == pytest.approx(true_saving, rel=0.05)
    evidence = switches[0]["evidence"]
    assert evidence["samples"][0] >= N and evidence["success_test"]["significant"]
    assert evidence["quality_test"]["significant"]
    assert evidence["success_ci"][1][0] < evidence["success_rate"][1] < evidence["success_ci"][1][1]
    assert CHEAP in switches[0]["action"]
    kinds = {s["kind"] for s in report["suggestions"]}
    assert {"retries", "late-cancels", "uncapped"} <= kinds


def test_suggest_uncapped_requests(history: Path) -> None:
    import numpy as np

    report = suggest(Settings(data_dir=history), Period.of_days(SINCE, UNTIL))
    uncapped = [s for s in report["suggestions"] if s["kind"] == "uncapped"]
    assert [(s["task_category"], s["model"]) for s in uncapped] == [("code-generation", EXPENSIVE)]
    answered = [i for i in range(N) if i % 10 == 1 and i % 33 != 0]
    p99 = float(np.quantile([_long(i) for i in answered], 0.99))
    evidence = uncapped[0]["evidence"]
    assert evidence["uncapped"] == len(range(1, N, 10)) and evidence["p99_completion_tokens"] == pytest.approx(p99)
    assert f"max_tokens={int(np.ceil(p99))}" in uncapped[0]["action"] and uncapped[0]["monthly_saving_usd"] > 0


def test_suggest_cli(history: Path) -> None:
    env = {"HIVE_DATA_DIR": str(history), "PATH": "/usr/bin:/bin"}
    period = f"{SINCE}..{UNTIL}"
    out = run_cli("hive", ["analytics", "suggest", "--period", period, "--json"], env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [s["suggested_model"] for s in report["suggestions"] if s["kind"] == "switch-model"] == [CHEAP]
    text = run_cli("hive", ["analytics", "suggest", "--period", period], env)
    assert text.returncode == 0 and f"route summarization requests from {EXPENSIVE} to {CHEAP}" in text.stdout


def test_suggest_on_a_simulated_month(tmp_path: Path) -> None:
    """The demo month, smaller (2,000 calls a day, the demo's seed): at most 10 suggestions, one per
    (task, model) slice, none replacing a model by one of unmeasured quality, experiment names
    unique, and every printed `hive ab create` command succeeds when run."""
    env = {"HIVE_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    for args in (["simulate", "--days", "30", "--calls-per-day", "2000", "--seed", "7"], ["rollup"]):
        done = run_cli("hive-jobs", args, env, timeout=300)
        assert done.returncode == 0, done.stderr
    out = run_cli("hive", ["analytics", "suggest", "--json"], env)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)["suggestions"]
    assert 0 < len(found) <= 10
    slices = [(s.get("task_category"), s["model"]) for s in found if s.get("monthly_saving_usd")]
    assert len(slices) == len(set(slices))  # no saving counted twice
    for s in found:
        if s["kind"] == "switch-model":
            assert all(q is not None and q["n_eff"] >= 20 for q in s["evidence"]["quality"])
    experiments = [s for s in found if s["kind"] == "experiment"]
    assert experiments and len({s["experiment"] for s in experiments}) == len(experiments)
    for s in experiments:
        created = run_cli("hive", s["command"].split()[1:], env)
        assert created.returncode == 0, (s["command"], created.stderr)
    again = json.loads(run_cli("hive", ["analytics", "suggest", "--json"], env).stdout)["suggestions"]
    taken = {s["experiment"] for s in experiments}
    assert not taken & {s["experiment"] for s in again if s["kind"] == "experiment"}  # names never reused
