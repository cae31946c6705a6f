"""The loop the design exists for: real calls against the emulator with faults on one model, a
rollup, and ``hive models recommend --allow A,B`` demotes the failing model; move the fault, make
more calls, roll up again, and the other model is demoted instead."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hive_core.errors import OpenRouterError
from hive_core.openrouter import OpenRouterClient
from hive_core.openrouter.retry import RetryPolicy
from hive_core.settings import Settings
from ingest import EventLog
from tests.plugins.cli import run_hive, run_jobs

#: B is what the catalog priors alone recommend (asserted below), so demoting it takes measurements
A, B = "openai/gpt-4o-mini", "mistralai/mistral-small-3.2-24b-instruct"


def calls(settings: Settings, n: int) -> None:
    """``n`` chat requests to each model, as an application would make them (failures recorded)."""
    policy = RetryPolicy.from_settings(settings, base_s=0.01)
    with EventLog(settings.data_dir) as log, OpenRouterClient(settings, sink=log, policy=policy) as client:
        for i in range(n):
            for model in (A, B):
                with contextlib.suppress(OpenRouterError):  # failures are recorded; that is the point
                    client.chat(f"say hi {i}", model=model, max_tokens=8, task_category="chat")


def recommend(settings: Settings, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run_hive(["--data-dir", str(settings.data_dir), "models", "recommend", "--task", "chat",
                               "--allow", f"{A},{B}", "--strategy", "balanced", "--json"], capsys)
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_failing_model_is_demoted_and_recovers(emulator_factory: Any, tmp_path: Path, catalog_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    emu = emulator_factory(faults=[f"{B}:502:1.0"], seed=3)
    settings = Settings(api_key=emu.api_key, base_url=emu.base_url, data_dir=tmp_path / "data",
                        max_attempts=2, retry_max_wait_s=0.01, read_timeout_s=5)
    settings.datadir.catalog_file.parent.mkdir(parents=True)
    shutil.copy(catalog_path, settings.datadir.catalog_file)

    assert recommend(settings, capsys)["primary"] == B  # priors only: nothing measured yet

    calls(settings, 25)
    code, out, _ = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
    assert code == 0 and "rankings:" in out
    first = recommend(settings, capsys)
    assert first["primary"] == A, first  # B fails every call: demoted

    emu.set_faults([f"{A}:502:1.0"])
    calls(settings, 60)  # more evidence than before: A now fails, B recovered
    code, out, _ = run_jobs(["--data-dir", str(settings.data_dir), "rollup", "--daily"], capsys)
    assert code == 0
    second = recommend(settings, capsys)
    assert second["primary"] == B, second

    code, out, _ = run_hive(["--data-dir", str(settings.data_dir), "models", "performance", "--period", "today",
                             "--json"], capsys)
    rows = {r["model"]: r for r in json.loads(out)}
    assert rows[B]["success_rate"] > rows[A]["success_rate"]
