"""``hive-jobs eval``: rubrics and the judge prompt, then the judge loop end to end against the
emulator (whose judge scores an answer from its model's configured quality): ratings recorded with
``rater=judge:<model>``, the judge's requests budgeted and recorded as ``judge``, rankings changed,
and a model whose answers score low loses quality-first selection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import queries
from hive_core.selection.complexity import TASK_TYPES
from hive_core.session import Session
from hive_core.settings import Settings
from hive_emulator.judge import JUDGE_MARKER as EMULATOR_MARKER
from ingest import EventLog
from jobs.eval.judge import evaluate
from jobs.eval.rubrics import JUDGE_MARKER, RUBRICS, judge_messages, parse_score
from jobs.eval.samples import benchmark_samples, stored_samples
from tests.plugins.cli import run_hive, run_jobs
from tests.plugins.emulator import emu_settings, fast_policy

A, B = "openai/gpt-4o-mini", "mistralai/mistral-small-3.2-24b-instruct"
JUDGE = "openai/gpt-4.1-mini"


def test_every_task_category_has_a_rubric() -> None:
    assert set(RUBRICS) == set(TASK_TYPES)
    assert JUDGE_MARKER == EMULATOR_MARKER  # the emulator recognises Hive's judge prompts by it


def test_judge_prompt_is_blind_and_scores_parse() -> None:
    system, user = judge_messages("code-generation", "write reverse()", f"def reverse(): ... by {A}")
    assert system["content"].startswith(JUDGE_MARKER) and "SCORE: N" in system["content"]
    assert "runs as written" in user["content"] and "Task category: code-generation" in user["content"]
    assert "Task category: chat" in judge_messages(None, "hi", "hello")[1]["content"]
    assert parse_score("SCORE: 7\nREASON: fine") == 0.7
    assert parse_score("score:10") == 1.0 and parse_score("SCORE: 14") == 1.0
    assert parse_score("I think it is good") is None


def _settings(emu: Any, tmp_path: Path, catalog_path: Path, monkeypatch: pytest.MonkeyPatch | None = None,
              **extra: Any) -> Settings:
    """Settings on ``emu`` with the real catalog synced; with ``monkeypatch``, the in-process CLIs'
    environment points at the emulator too."""
    settings = emu_settings(emu, tmp_path, read_timeout_s=10, **extra)
    if monkeypatch is not None:
        for name, value in {"OPENROUTER_API_KEY": emu.api_key, "OPENROUTER_BASE_URL": emu.base_url,
                            "HIVE_READ_TIMEOUT": "10", "HIVE_RETRY_MAX_WAIT": "0.05"}.items():
            monkeypatch.setenv(name, value)
    settings.datadir.catalog_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(catalog_path, settings.datadir.catalog_file)
    return settings


def _ratings(settings: Settings) -> list[tuple[str, str, float, str]]:
    with queries.connect(settings.data_dir) as store:
        sql = "select request_id, model, score, rater from quality_ratings order by ts"
        return [tuple(r) for r in store.con.execute(sql).fetchall()]


def test_benchmark_answers_are_graded_from_their_models_quality(emulator_factory: Any, tmp_path: Path,
                                                                catalog_path: Path) -> None:
    emu = emulator_factory(seed=4, quality={A: 0.9, B: 0.2})
    settings = _settings(emu, tmp_path, catalog_path)
    with EventLog(settings.data_dir) as log, Session(settings, log, policy=fast_policy(settings)) as session:
        samples, failed = benchmark_samples(session, ["gpt-4o-mini", B], max_tokens=64)
        report = evaluate(session, log, samples, judge="gpt-4.1-mini")
    assert failed == 0 and report.graded == len(samples) == 16
    means = report.as_dict()["models"]
    assert means[A]["mean"] >= 0.8 and means[B]["mean"] <= 0.3
    rows = _ratings(settings)
    assert {r[3] for r in rows} == {f"judge:{JUDGE}"} and len(rows) == 16
    with queries.connect(settings.data_dir) as store:
        judged = store.con.execute("select count(*), count(cost_usd) from api_calls join usage using (request_id) "
                                   "where api_calls.request_type = 'judge'").fetchall()[0]
        tasks = {r[0] for r in store.con.execute("select distinct task_category from api_calls "
                                                 "where request_type = 'benchmark'").fetchall()}
    assert judged == (16, 16)  # every judgement billed and recorded like any request
    assert "code-generation" in tasks and "math" in tasks
    assert report.judge_cost_usd > 0


def _recommend(settings: Settings, capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run_hive(["--data-dir", str(settings.data_dir), "models", "recommend", "--task", "chat",
                               "--allow", f"{A},{B}", "--strategy", "quality-first", "--json"], capsys)
    assert code == 0, err
    return str(json.loads(out)["primary"])


def _chat_traffic(settings: Settings, n: int) -> None:
    """``n`` chat requests to each model with their text stored, as ``hive ask`` stores it."""
    from hive_core.ask import AskOptions
    from hive_core.store.content import ContentStore

    content = ContentStore(settings.data_dir, clock=settings.clock)
    with EventLog(settings.data_dir) as log, Session(settings, log, policy=fast_policy(settings)) as session:
        for i in range(n):
            for model in (A, B):
                prompt = f"how do I say hello in language {i}?"
                answer = session.ask(prompt, [model], AskOptions(max_tokens=24, task_category="chat"))
                content.append(answer.result.request_id, model, prompt, answer.result.text)


def test_low_scoring_model_loses_quality_first(emulator_factory: Any, tmp_path: Path, catalog_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    emu = emulator_factory(seed=5)
    settings = _settings(emu, tmp_path, catalog_path, monkeypatch)
    env = ["--data-dir", str(settings.data_dir)]
    first = _recommend(settings, capsys)  # priors only
    other = B if first == A else A
    emu.set_quality({first: 0.1, other: 0.9})
    _chat_traffic(settings, 20)
    code, out, err = run_jobs([*env, "rankings"], capsys)
    assert code == 0, err
    assert _recommend(settings, capsys) == first  # measured success alone: both answer every request
    code, out, err = run_jobs([*env, "eval", "--sample", "100", "--json"], capsys)
    assert code == 0, err
    graded = json.loads(out)
    assert graded["graded"] == 40
    assert graded["models"][first]["mean"] < 0.3 < 0.8 < graded["models"][other]["mean"]
    code, out, _ = run_hive([*env, "models", "performance", "--period", "today", "--json"], capsys)
    quality = {r["model"]: r["quality"] for r in json.loads(out)}
    assert quality[first] < 0.3 and quality[other] > 0.8
    assert _recommend(settings, capsys) == other  # eval refreshed the rankings: the low scorer lost


def test_stored_answers_are_graded_once(emulator_factory: Any, tmp_path: Path, catalog_path: Path,
                                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    emu = emulator_factory(seed=6, quality={A: 0.3})
    settings = _settings(emu, tmp_path, catalog_path, monkeypatch)
    monkeypatch.setenv("HIVE_STORE_CONTENT", "true")
    env = ["--data-dir", str(settings.data_dir)]
    for i in range(3):
        code, _, err = run_hive([*env, "ask", f"question {i}", "--model", A, "--max-tokens", "16", "--task", "chat"],
                                capsys)
        assert code == 0, err
    code, out, err = run_jobs([*env, "eval", "--judge", JUDGE], capsys)
    assert code == 0, err
    assert "graded 3 answer(s)" in out and "rankings refreshed" in out
    rows = _ratings(settings)
    assert len(rows) == 3 and all(r[1] == A and r[2] <= 0.4 for r in rows)
    assert stored_samples(settings, settings.now().date(), settings.now().date(),
                          rater=f"judge:{JUDGE}", limit=10) == []  # graded: not picked again
    code, out, _ = run_jobs([*env, "eval"], capsys)
    assert code == 0 and "nothing to grade" in out
