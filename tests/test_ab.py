"""A/B experiments: definitions, deterministic assignment, real calls through the client against the
emulator, the report's tests and verdict, and the CLI (``hive ab``, ``hive ask --experiment``,
``hive-jobs ab-report``) as subprocesses."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hive_core.ask import AskOptions
from hive_core.catalog.catalog import Catalog
from hive_core.errors import ConfigError, OpenRouterError, UnknownModel
from hive_core.experiments import (
    ExperimentExists,
    UnknownExperiment,
    ask_in_experiment,
    assign_variant,
    create_experiment,
    get_experiment,
    list_experiments,
    stop_experiment,
)
from hive_core.store.datadir import DataDir
from ingest.log import EventLog
from jobs.insights.ab import AbSample, ab_report, analyse, format_ab_report
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import emu_settings, fast_policy

MODEL_A = "openai/gpt-4o-mini"
MODEL_B = "anthropic/claude-3-haiku"


def test_experiments_are_created_listed_and_stopped(data_dir: Path) -> None:
    exp = create_experiment(data_dir, "e1", model_a=MODEL_A, model_b=MODEL_B, split=0.3, task="chat")
    assert (exp.status, exp.split, exp.task) == ("running", 0.3, "chat")
    with pytest.raises(ExperimentExists):
        create_experiment(data_dir, "e1", model_a=MODEL_A, model_b=MODEL_B)
    with pytest.raises(ConfigError, match="split"):
        create_experiment(data_dir, "e2", model_a=MODEL_A, model_b=MODEL_B, split=1.0)
    assert stop_experiment(data_dir, "e1").status == "stopped"
    assert [e.name for e in list_experiments(data_dir)] == ["e1"]
    assert get_experiment(data_dir, "e1").stopped_at is not None
    with pytest.raises(UnknownExperiment):
        get_experiment(data_dir, "nope")
    assert not list(data_dir.glob(".*tmp"))  # atomic writes leave no temporary files


def test_assignment_is_deterministic_and_follows_the_split(data_dir: Path) -> None:
    exp = create_experiment(data_dir, "split", model_a=MODEL_A, model_b=MODEL_B, split=0.2)
    keys = [f"req-{i}" for i in range(5000)]
    first = [assign_variant(exp, k) for k in keys]
    assert first == [assign_variant(exp, k) for k in keys]
    assert first.count("b") / len(keys) == pytest.approx(0.2, abs=0.02)


def _run(emu: Any, data_dir: Path, n: int) -> None:
    # A generous read timeout: a loaded test machine must not turn variant A's answers into failures.
    settings = emu_settings(emu, data_dir.parent, data_dir=data_dir, max_attempts=1, read_timeout_s=10)
    exp = get_experiment(data_dir, "faulty")
    from hive_core.openrouter import OpenRouterClient

    with EventLog(data_dir) as log, OpenRouterClient(settings, sink=log, policy=fast_policy(settings)) as client:
        for i in range(n):
            # A failure is recorded as the variant's api_call: that is what is measured.
            with contextlib.suppress(OpenRouterError):
                ask_in_experiment(client, log, exp, f"question {i}", AskOptions(stream=i % 2 == 0, max_tokens=8))


def test_ab_report_finds_variant_b_worse(emulator_factory: Any, data_dir: Path) -> None:
    emu = emulator_factory(faults=[{"model": MODEL_B, "kind": "500", "rate": 0.5}], seed=3)
    create_experiment(data_dir, "faulty", model_a=MODEL_A, model_b=MODEL_B)
    _run(emu, data_dir, 160)
    report = ab_report(data_dir, "faulty")
    a, b = report["variants"]["a"], report["variants"]["b"]
    assert a["requests"] + b["requests"] == 160 and min(a["requests"], b["requests"]) > 50
    assert a["success_rate"] == 1.0 and b["success_rate"] < 0.7
    success = report["tests"]["success"]
    assert success["significant"] and success["estimate"] < 0 and success["p_value"] < 0.001
    assert report["significant"] and report["winner"] == "a"
    assert MODEL_A in report["recommendation"]
    assert 0 < report["mde"]["success_rate"] < 0.3


def _synthetic(seed: int, n: int = 300) -> list[AbSample]:
    """Two identical variants: same success rate, latency, cost and quality distributions."""
    rng = np.random.default_rng(seed)
    out = []
    for variant in "ab":
        ok = rng.random(n) < 0.9
        lat, cost, quality = rng.lognormal(6, 0.4, n), rng.lognormal(-7, 0.3, n), rng.random(n)
        rated = rng.random(n) < 0.2
        out += [AbSample(variant, bool(ok[i]), float(lat[i]), float(cost[i]),
                         float(quality[i]) if rated[i] else None) for i in range(n)]
    return out


def test_no_difference_is_not_significant_at_the_stated_level_across_seeds() -> None:
    """200 seeds of identical variants: the report's verdict (Holm over 4 tests at 5 %) is a false
    positive at most about 5 % of the time (binomial(200, 0.05) stays below 20 with 99.7 %)."""
    false_positives = sum(analyse(_synthetic(seed))["significant"] for seed in range(200))
    assert false_positives <= 20


def test_cli_ab_create_ask_experiment_and_report(emulator_factory: Any, data_dir: Path) -> None:
    emu = emulator_factory(faults=[{"model": MODEL_B, "kind": "500", "rate": 1.0}], seed=5)
    env = hive_env(emu, data_dir)
    env["HIVE_MAX_ATTEMPTS"] = "1"
    created = run_cli("hive", ["ab", "create", "cli-exp", "--model-a", MODEL_A, "--model-b", MODEL_B], env)
    assert created.returncode == 0, created.stderr
    assert "cli-exp" in run_cli("hive", ["ab", "list"], env).stdout
    variants = []
    for i in range(6):
        asked = run_cli("hive", ["ask", f"hello {i}", "--experiment", "cli-exp", "--max-tokens", "5", "--json"], env)
        if asked.returncode == 0:
            variants.append(json.loads(asked.stdout)["variant"])
        else:
            assert "error:" in asked.stderr  # variant b always fails: one line, exit 1
            variants.append("b")
    out = run_cli("hive-jobs", ["ab-report", "cli-exp", "--json"], env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {"variants", "tests", "significant", "winner"} <= report.keys()
    assert report["variants"]["a"]["requests"] + report["variants"]["b"]["requests"] == 6
    assert report["variants"]["b"]["requests"] == variants.count("b")
    text = run_cli("hive-jobs", ["ab-report", "cli-exp"], env)
    assert "experiment cli-exp" in text.stdout
    assert run_cli("hive", ["ab", "stop", "cli-exp"], env).returncode == 0
    stopped = run_cli("hive", ["ask", "x", "--experiment", "cli-exp"], env)
    assert stopped.returncode == 1 and "stopped" in stopped.stderr
    missing = run_cli("hive-jobs", ["ab-report", "nope"], env)
    assert missing.returncode == 1 and "no experiment" in missing.stderr


def test_caller_faults_are_no_verdict_on_a_variant(data_dir: Path) -> None:
    """A request refused for the caller's key (or cancelled, or over budget) says nothing about the
    variant's model: it is left out of the A/B samples, as rankings and performance leave it out."""
    from hive_core.store.events import AbAssignment, ApiCall
    from tests.cases import T0

    create_experiment(data_dir, "keys", model_a=MODEL_A, model_b=MODEL_B)
    with EventLog(data_dir) as log:
        for i in range(40):
            variant, model = ("a", MODEL_A) if i % 2 else ("b", MODEL_B)
            status = "auth" if variant == "b" and i % 4 == 0 else "ok"  # half of b's requests: a bad key
            log.record(AbAssignment(ts=T0, request_id=f"q{i}", experiment="keys", variant=variant, model=model))
            log.record(ApiCall(ts=T0, request_id=f"q{i}", attempt=1, model=model, status=status,
                               http_status=401 if status == "auth" else 200, latency_ms=100.0 + i))
    report = ab_report(data_dir, "keys")
    a, b = report["variants"]["a"], report["variants"]["b"]
    assert (a["requests"], b["requests"]) == (20, 10)
    assert a["success_rate"] == b["success_rate"] == 1.0


def _experiment(goal: str, guardrails: tuple[str, ...] = ("success",)) -> Any:
    from hive_core.experiments import Experiment

    return Experiment("goal", MODEL_A, MODEL_B, goal=goal, guardrails=guardrails)


def _failing_b(n: int = 100, b_fails: int = 32) -> list[AbSample]:
    """A answers every request at $0.002; B fails ``b_fails`` of ``n`` and costs $0.001."""
    a = [AbSample("a", True, 800.0 + i, 0.002 + i * 1e-6) for i in range(n)]
    b = [AbSample("b", i >= b_fails, 800.0 + i, 0.001 + i * 1e-6 if i >= b_fails else None) for i in range(n)]
    return a + b


def test_goal_success_names_the_variant_that_does_not_fail() -> None:
    report = analyse(_failing_b(), experiment=_experiment("success"))
    assert report["winner"] == "a" and report["verdict"]["state"] == "winner"
    assert MODEL_A in report["recommendation"] and "trade-off" not in report["recommendation"]


def test_cheaper_variant_is_rejected_by_the_success_guardrail() -> None:
    report = analyse(_failing_b(), experiment=_experiment("cost"))
    assert report["tests"]["cost"]["significant"] and report["tests"]["cost"]["estimate"] < 0  # B is cheaper
    assert report["winner"] is None and report["verdict"]["state"] == "rejected"
    assert "rejected by the success guardrail" in report["recommendation"]
    without = analyse(_failing_b(), experiment=_experiment("cost", guardrails=()))
    assert without["winner"] == "b"  # no guardrail: the cheaper one wins on cost


def test_tiny_samples_say_not_enough_data() -> None:
    samples = [AbSample("a", True, 900.0, 0.001), *(AbSample("b", True, 700.0 + i, 0.001) for i in range(3))]
    report = analyse(samples, experiment=_experiment("success"))
    found = report["verdict"]
    assert found["state"] == "not-enough-data" and report["winner"] is None and not report["tests"]
    assert f"need about {found['needed_per_variant']:,} per variant" in found["message"]
    assert found["needed_per_variant"] >= 20 and report["mde"] is None
    text = format_ab_report({**report, "experiment": "goal", "status": "running"})
    assert "not enough data (need about" in text
    assert "CI [" not in text and "minimum detectable" not in text


def test_model_names_resolve_against_the_catalog(data_dir: Path, catalog: Catalog) -> None:
    exp = create_experiment(data_dir, "short", model_a="gpt-4o-mini", model_b="claude-3-haiku", catalog=catalog)
    assert (exp.model_a, exp.model_b) == (MODEL_A, MODEL_B)
    with pytest.raises(UnknownModel, match="did you mean"):
        create_experiment(data_dir, "typo", model_a="gpt-4o-minii", model_b=MODEL_B, catalog=catalog)
    assert [e.name for e in list_experiments(data_dir)] == ["short"]  # nothing stored for the typo
    with pytest.raises(ConfigError, match="unknown goal"):
        create_experiment(data_dir, "g", model_a=MODEL_A, model_b=MODEL_B, goal="speed")


def test_experiments_written_before_goals_read_with_the_defaults(data_dir: Path) -> None:
    path = DataDir(data_dir).experiments_file
    path.write_text(json.dumps({"experiments": [{"name": "old", "model_a": MODEL_A, "model_b": MODEL_B}]}))
    exp = get_experiment(data_dir, "old")
    assert (exp.goal, exp.guardrails) == ("success", ("success",))


def test_typos_never_become_models(emulator: Any, data_dir: Path, catalog_path: Path) -> None:
    """`hive ab create` and `hive ask --primary-model` refuse a typo (exit 2, did you mean) before
    anything is stored or sent; a short name resolves to its id."""
    import shutil

    env = hive_env(emulator, data_dir)
    DataDir(data_dir).catalog_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(catalog_path, DataDir(data_dir).catalog_file)
    typo = run_cli("hive", ["ab", "create", "t", "--model-a", "gpt-4o-minii", "--model-b", MODEL_B], env)
    assert typo.returncode == 2 and "did you mean" in typo.stderr and MODEL_A in typo.stderr
    assert not DataDir(data_dir).experiments_file.exists()
    made = run_cli("hive", ["ab", "create", "t", "--model-a", "gpt-4o-mini", "--model-b", MODEL_B,
                            "--goal", "cost", "--guardrail", "success", "--guardrail", "latency"], env)
    assert made.returncode == 0, made.stderr
    exp = get_experiment(data_dir, "t")
    assert (exp.model_a, exp.goal, exp.guardrails) == (MODEL_A, "cost", ("success", "latency"))
    before = emulator.stats()["total"]
    asked = run_cli("hive", ["ask", "hi", "--primary-model", "gpt-4o-minii", "--max-tokens", "5"], env)
    assert asked.returncode == 2 and "did you mean" in asked.stderr
    assert emulator.stats()["total"] == before  # nothing sent
    assert not list(DataDir(data_dir).root.glob("events/api_call/**/*.parquet"))
