"""The fallbacks an operator names for a model (``hive fallbacks``, the ``fallbacks`` section of
``config.json``): kept beside the budget, walked by ``hive ask --model`` and by the gateway when a
request names no fallbacks of its own, taken in by a running gateway, checked by ``--check``."""

from __future__ import annotations

import json
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hive_core.budget.admin import set_budget
from hive_core.errors import ConfigError
from hive_core.fallbacks import load_fallbacks, set_fallbacks, unset_fallbacks
from hive_core.store.datadir import DataDir
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL
from tests.plugins.store import events

if TYPE_CHECKING:
    from hive_emulator import Emulator
    from tests.plugins.gateway import GatewayProcess

OTHER = "mistralai/mistral-nemo"
THIRD = "anthropic/claude-3-haiku"
HI = [{"role": "user", "content": "hi"}]


def _config(data_dir: Path) -> Path:
    path = DataDir(data_dir).config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _synced(data_dir: Path, catalog_path: Path) -> Path:
    target = DataDir(data_dir).catalog_file
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(catalog_path, target)
    return data_dir


def test_set_fallbacks(tmp_path: Path) -> None:
    """Set, read and unset, in order and without repeats; the budget's section is left as it was
    (one file, one lock), and the file stays private."""
    config = _config(tmp_path / "data")
    set_budget(config, daily="5")
    assert set_fallbacks(config, MODEL, [OTHER, THIRD, OTHER]) == {MODEL: (OTHER, THIRD)}
    set_fallbacks(config, OTHER, [MODEL])
    assert load_fallbacks(config) == {MODEL: (OTHER, THIRD), OTHER: (MODEL,)}
    assert json.loads(config.read_text())["budget"]["limits"]["global"]["daily_usd"] == 5
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match=f"{MODEL} cannot be its own fallback"):
        set_fallbacks(config, MODEL, [OTHER, MODEL])
    assert unset_fallbacks(config, MODEL) == {OTHER: (MODEL,)}
    assert load_fallbacks(config) == {OTHER: (MODEL,)}


def test_set_fallbacks_cli(emulator: Emulator, tmp_path: Path, catalog_path: Path) -> None:
    """Short names resolve against the catalog; a typo is refused when it is set, with what was
    meant, not found later by a request."""
    env = hive_env(emulator, _synced(tmp_path / "data", catalog_path))
    done = run_cli("hive", ["fallbacks", "set", "gpt-4o-mini", OTHER, THIRD], env)
    assert (done.returncode, done.stdout) == (0, f"{MODEL}: {OTHER} -> {THIRD}\n"), done.stderr
    shown = run_cli("hive", ["fallbacks", "show", "--json"], env)
    assert json.loads(shown.stdout) == {MODEL: [OTHER, THIRD]}
    typo = run_cli("hive", ["fallbacks", "set", MODEL, "mistralai/mistral-nemoo"], env)
    assert typo.returncode == 2 and "did you mean mistralai/mistral-nemo" in typo.stderr
    assert "Traceback" not in typo.stderr
    assert run_cli("hive", ["fallbacks", "unset", MODEL], env).stdout == f"{MODEL}: no fallbacks\n"
    again = run_cli("hive", ["fallbacks", "unset", MODEL], env)  # idempotent, but a typo would show
    assert again.returncode == 0 and "(it had none: `hive fallbacks show` lists those that do)" in again.stdout
    assert run_cli("hive", ["fallbacks", "show"], env).stdout.startswith("no fallbacks set")


@pytest.mark.parametrize("section", [["x"], {MODEL: OTHER}, {MODEL: []}, {MODEL: [MODEL]}])
def test_a_bad_section_is_one_line_naming_the_file(emulator: Emulator, tmp_path: Path, section: Any) -> None:
    data = tmp_path / "data"
    config = _config(data)
    config.write_text(json.dumps({"fallbacks": section}))
    with pytest.raises(ConfigError, match=f"in {config}: fix it there, or with `hive fallbacks set`"):
        load_fallbacks(config)
    done = run_cli("hive", ["fallbacks", "show"], hive_env(emulator, data))
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1 and str(config) in done.stderr
    assert "Traceback" not in done.stderr


def test_hive_ask_walks_the_fallbacks_named_for_its_model(
        emulator_factory: Callable[..., Emulator], tmp_path: Path, catalog_path: Path) -> None:
    """``hive ask --model`` walks them when its model fails; its own ``--fallback`` replaces them,
    ``--no-fallback`` goes without."""
    emulator = emulator_factory(faults=[f"{MODEL}:502"])
    data = _synced(tmp_path / "data", catalog_path)
    env = hive_env(emulator, data)
    assert run_cli("hive", ["fallbacks", "set", MODEL, OTHER], env).returncode == 0
    asked = run_cli("hive", ["ask", "--model", MODEL, "--max-tokens", "5", "--no-stream", "hi"], env)
    assert asked.returncode == 0 and f"answered by fallback 1: {OTHER}" in asked.stderr, asked.stderr
    own = run_cli("hive", ["ask", "--model", MODEL, "--fallback", THIRD, "--max-tokens", "5", "--no-stream", "hi"], env)
    assert own.returncode == 0 and f"answered by fallback 1: {THIRD}" in own.stderr, own.stderr
    alone = run_cli("hive", ["ask", "--model", MODEL, "--no-fallback", "--max-tokens", "5", "hi"], env)
    assert alone.returncode != 0
    assert [row[0] for row in events(data, "usage", "model")] == [OTHER, THIRD]


def test_the_gateway_walks_them_for_a_request_that_names_none_and_takes_in_a_change(
        emulator_factory: Callable[..., Emulator], gateway_factory: Callable[..., GatewayProcess],
        tmp_path: Path) -> None:
    """Set while the gateway runs: within seconds a request for the model that fails is answered by
    its fallback (``fallback_index`` 1); a request with its own ``models`` walks those instead."""
    from hive_gateway.state import REFRESH_S

    emulator = emulator_factory(faults=[f"{MODEL}:502"])
    gateway = gateway_factory(emulator, "--no-auth")
    url = f"{gateway.base_url}/v1/chat/completions"
    body: dict[str, Any] = {"model": MODEL, "messages": HI, "max_tokens": 5}
    assert httpx.post(url, json=body, timeout=30).status_code == 502
    assert run_cli("hive", ["fallbacks", "set", MODEL, OTHER], hive_env(emulator, gateway.data_dir)).returncode == 0
    deadline = time.monotonic() + REFRESH_S * 5
    while (answer := httpx.post(url, json=body, timeout=30)).status_code == 502 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer.status_code == 200 and answer.json()["model"] == OTHER, answer.text
    own = httpx.post(url, json={**body, "models": [THIRD]}, timeout=30)
    assert own.status_code == 200 and own.json()["model"] == THIRD
    assert gateway.stop() == 0
    served = {(r[0], r[1]) for r in events(gateway.data_dir, "api_call", "model, fallback_index") if r[0] != MODEL}
    assert served == {(OTHER, 1), (THIRD, 1)}


def test_the_gateway_walks_only_those_a_requests_key_may_use(
        emulator_factory: Callable[..., Emulator], gateway_factory: Callable[..., GatewayProcess],
        tmp_path: Path) -> None:
    """A key limited to some models skips the operator's fallbacks it may not use: its request is
    answered by the next one it may, and the one it may not is never sent."""
    emulator = emulator_factory(faults=[f"{MODEL}:502"])
    data = tmp_path / "data"
    env = hive_env(emulator, data)
    assert run_cli("hive", ["fallbacks", "set", MODEL, OTHER, THIRD], env).returncode == 0
    made = run_cli("hive", ["keys", "create", "--json", "--app", "a", "--models", f"{MODEL},{THIRD}"], env)
    assert made.returncode == 0, made.stderr
    gateway = gateway_factory(emulator, data_dir=data)
    answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", timeout=30,
                        headers={"Authorization": f"Bearer {json.loads(made.stdout)['secret']}"},
                        json={"model": MODEL, "messages": HI, "max_tokens": 5})
    assert answer.status_code == 200 and answer.json()["model"] == THIRD, answer.text
    assert gateway.stop() == 0
    assert set(events(data, "api_call", "model, fallback_index")) == {(MODEL, 0), (THIRD, 1)}  # never OTHER


def test_check_names_a_fallback_the_catalog_does_not_list(emulator: Emulator, tmp_path: Path,
                                                         catalog_path: Path) -> None:
    data = _synced(tmp_path / "data", catalog_path)
    _config(data).write_text(json.dumps({"fallbacks": {MODEL: [OTHER, "acme/retired-model"]}}))
    done = run_cli("hive", ["gateway", "--check", "--no-auth", "--port", "0"], hive_env(emulator, data))
    assert done.returncode == 1
    assert [line for line in done.stdout.splitlines() if "fallbacks" in line] == [
        f"the fallbacks of {MODEL} name acme/retired-model, which the catalog does not list (requests leave it "
        f"out): `hive fallbacks set {MODEL} ...` again"]
