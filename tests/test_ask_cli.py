"""``hive ask`` as a person uses it: the prompt from stdin or a file, --system, --temperature,
--json-schema, model names resolved (or refused) before sending, the request id, and a stream that
fails mid-way. Real processes against the emulator serving the real catalog."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from hive_cli.hive.ask import body_params
from hive_core.store.datadir import DataDir
from tests.plugins.cli import BIN, TIMEOUT_S, hive_env, run_cli
from tests.plugins.emulator import MODEL
from tests.plugins.store import events

OTHER = "anthropic/claude-3-haiku"


def hive_ask(args: list[str], env: dict[str, str], *, stdin: bytes = b"",
             merged: bool = False) -> subprocess.CompletedProcess[bytes]:
    """``hive ask ARGS`` with ``stdin`` on its standard input (``merged``: stderr into stdout, as a
    terminal shows them)."""
    return subprocess.run([str(BIN / "hive"), "ask", *args], env=env, input=stdin, capture_output=not merged,
                          stdout=subprocess.PIPE if merged else None,
                          stderr=subprocess.STDOUT if merged else None, timeout=TIMEOUT_S)


@pytest.fixture
def synced(emulator: Any, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A data directory with the synced catalog, and the environment that uses it."""
    data = tmp_path / "data"
    env = hive_env(emulator, data)
    assert run_cli("hive", ["models", "sync"], env).returncode == 0
    return data, env


def test_prompt_of_several_mb_from_stdin(synced: tuple[Path, dict[str, str]]) -> None:
    """A 4 MB prompt through stdin (far beyond what argv takes) arrives whole: the emulator counts
    its ~1M tokens; a short name picks the 10M-context model."""
    data, env = synced
    rng = random.Random(7)
    prompt = " ".join(rng.choice(["cost", "model", "latency", "budget", "team"]) for _ in range(700_000)).encode()
    assert len(prompt) > 4_000_000
    done = hive_ask(["-", "--model", "llama-4-scout", "--max-tokens", "8"], env, stdin=prompt)
    assert done.returncode == 0, done.stderr
    ((model, tokens),) = events(data, "usage", "model, prompt_tokens")
    assert model == "meta-llama/llama-4-scout" and tokens >= 700_000


def test_prompt_from_a_file(synced: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _data, env = synced
    (tmp_path / "prompt.txt").write_text("Say hi, politely\n")
    by_arg = hive_ask(["Say hi, politely\n", "-m", MODEL, "--max-tokens", "5", "--json"], env)
    by_file = hive_ask(["--file", str(tmp_path / "prompt.txt"), "-m", MODEL, "--max-tokens", "5", "--json"], env)
    by_dash = hive_ask(["--file", "-", "-m", MODEL, "--max-tokens", "5", "--json"], env, stdin=b"Say hi, politely\n")
    docs = [json.loads(done.stdout) for done in (by_arg, by_file, by_dash)]
    assert len({(d["prompt_tokens"], d["text"]) for d in docs}) == 1  # the same prompt, the same answer


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["", "-m", MODEL], b"", "the prompt is empty: nothing was sent"),
    ([" \n\t", "-m", MODEL], b"", "the prompt is empty: nothing was sent"),
    (["-", "-m", MODEL], b"  \n\n", "the prompt is empty: nothing was sent"),
    (["--file", "empty.txt", "-m", MODEL], b"", "the prompt is empty: nothing was sent"),
    (["-m", MODEL], b"", "no prompt: give PROMPT, - to read it from stdin, or --file FILE"),
    (["hi", "--file", "empty.txt", "-m", MODEL], b"", "give the prompt as PROMPT or --file, not both"),
    (["--file", "missing.txt", "-m", MODEL], b"", "Invalid value for '--file': cannot read missing.txt"),
    (["-", "-m", MODEL], b"\xff\xfe hi", "the prompt in stdin is not UTF-8 text"),
    (["hi", "-m", MODEL, "--temperature", "2.5"], b"", "Invalid value for '--temperature'"),
    (["hi", "-m", MODEL, "--json-schema", "missing.json"], b"", "Invalid value for '--json-schema': cannot read missing.json"),
    (["hi", "-m", MODEL, "--json-schema", "list.json"], b"", "Invalid value for '--json-schema': list.json is JSON but not"),
    (["hi", "-m", MODEL, "--json-schema", "empty.txt"], b"", "Invalid value for '--json-schema': empty.txt is not JSON"),
])
def test_bad_input_is_refused_before_sending(emulator: Any, tmp_path: Path, args: list[str], stdin: bytes,
                                             message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty prompt, a missing one, an unreadable file, a bad value: one line, exit 2, nothing sent."""
    data = tmp_path / "data"
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "list.json").write_text("[1, 2]")
    monkeypatch.chdir(tmp_path)
    done = hive_ask(args, hive_env(emulator, data), stdin=stdin)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith(f"error: {message}") and line.endswith("(see `hive ask --help`)"), line
    assert done.stdout == b""
    assert events(data, "api_call", "status") == []


@pytest.mark.parametrize(("command", "name", "message"), [
    (["ask", "hi", "--model"], "fake-model", "error: Invalid value for '--model': unknown model 'fake-model': "
                                             "no close match in the catalog: see `hive models list`"),
    (["ask", "hi", "--model", MODEL, "--fallback"], "claude-3-haikku",
     "error: Invalid value for '--fallback': unknown model 'claude-3-haikku': did you mean anthropic/claude-3-haiku"),
    (["models", "test"], "claude-3-opus", "error: Invalid value for 'MODEL': unknown model 'claude-3-opus': "
                                         "did you mean anthropic/claude-opus-4, "),
    (["models", "test"], "openai/gpt-4o-mni", "error: Invalid value for 'MODEL': unknown model 'openai/gpt-4o-mni': "
                                             "did you mean openai/gpt-4o-mini, "),
])
def test_unknown_model_names_are_refused_before_sending(synced: tuple[Path, dict[str, str]], command: list[str],
                                                        name: str, message: str) -> None:
    """A typo gets "did you mean", one line, exit 2 - never a 400 recorded under the typo (which
    then showed up as a "model" in the performance table and the reports)."""
    data, env = synced
    done = run_cli("hive", [*command, name], env)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(message), line
    assert events(data, "api_call", "model") == []


def test_short_names_resolve(synced: tuple[Path, dict[str, str]]) -> None:
    """gpt-4o-mini is openai/gpt-4o-mini for ask, its fallbacks and models test: sent and recorded by full id."""
    data, env = synced
    done = run_cli("hive", ["ask", "hi", "-m", "gpt-4o-mini", "--fallback", "claude-3-haiku", "--max-tokens", "5",
                            "--json"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"] == MODEL
    assert run_cli("hive", ["models", "test", "gpt-4o-mini"], env).returncode == 0
    assert events(data, "api_call", "model, request_type") == [(MODEL, "chat"), (MODEL, "test")]


def test_an_ambiguous_short_name_lists_the_candidates(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    data = tmp_path / "data"
    document = json.loads(catalog_path.read_bytes())
    (mini,) = [m for m in document["data"] if m["id"] == MODEL]
    document["data"].append({**mini, "id": "azure/gpt-4o-mini"})
    DataDir(data).catalog_file.parent.mkdir(parents=True)
    DataDir(data).catalog_file.write_text(json.dumps(document))
    done = run_cli("hive", ["ask", "hi", "-m", "gpt-4o-mini"], hive_env(emulator, data))
    assert done.returncode == 2, done.stderr
    assert "model 'gpt-4o-mini' is ambiguous, give the full id: azure/gpt-4o-mini, openai/gpt-4o-mini" in done.stderr


def test_first_use_fetches_the_catalog_and_offline_short_names_say_how_to_sync(emulator: Any, tmp_path: Path) -> None:
    """A fresh data directory: the catalog is fetched on first use (one notice), so a short name
    resolves. With no copy and OpenRouter unreachable, a short name is not guessed."""
    data = tmp_path / "data"
    env = hive_env(emulator, data)
    done = run_cli("hive", ["ask", "hi", "-m", "gpt-4o-mini", "--max-tokens", "5"], env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("fetched the model catalog (") and "openai/gpt-4o-mini" in done.stderr
    again = run_cli("hive", ["ask", "hi", "-m", "gpt-4o-mini", "--max-tokens", "5"], env)
    assert again.returncode == 0 and "fetched the model catalog" not in again.stderr
    offline = {**hive_env(emulator, tmp_path / "other"), "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1"}
    done = run_cli("hive", ["ask", "hi", "-m", "gpt-4o-mini"], offline)
    assert done.returncode == 2 and "run `hive models sync`, or give the full id" in done.stderr, done.stderr
    assert run_cli("hive", ["models", "test", "gpt-4o-mini"], offline).returncode == 2


def test_request_id_on_stderr_unless_quiet(synced: tuple[Path, dict[str, str]]) -> None:
    """The request id `hive rate` takes is the last line on stderr (stdout stays the answer alone);
    --quiet prints only the answer; --json carries it in the document."""
    data, env = synced
    done = run_cli("hive", ["ask", "hi", "-m", MODEL, "--max-tokens", "5"], env)
    last = done.stderr.splitlines()[-1]
    assert last.startswith("request id: ") and "request id" not in done.stdout
    quiet = run_cli("hive", ["ask", "hi", "-m", MODEL, "--max-tokens", "5", "--quiet"], env)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.strip()
    as_json = run_cli("hive", ["ask", "hi", "-m", MODEL, "--max-tokens", "5", "--json"], env)
    assert "request id" not in as_json.stderr
    ids = [rid for (rid,) in events(data, "usage", "request_id")]
    assert ids[0] == last.removeprefix("request id: ") and ids[2] == json.loads(as_json.stdout)["request_id"]
    rated = run_cli("hive", ["rate", ids[0], "--good"], env)
    assert rated.returncode == 0 and MODEL in rated.stdout, rated.stderr


class City(BaseModel):
    """The schema of test_json_schema's answer."""

    model_config = ConfigDict(extra="forbid", title="City facts")
    city: str
    population: int = Field(ge=0)
    tags: list[str] = Field(min_length=1)


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_json_schema(synced: tuple[Path, dict[str, str]], tmp_path: Path, stream: str) -> None:
    """--json-schema FILE sends response_format json_schema: the answer validates against it."""
    _data, env = synced
    schema = tmp_path / "city.json"
    schema.write_text(json.dumps(City.model_json_schema()))
    done = run_cli("hive", ["ask", "Describe Paris", "-m", MODEL, "--json-schema", str(schema), stream], env)
    assert done.returncode == 0, done.stderr
    City.model_validate_json(done.stdout)
    prose = run_cli("hive", ["ask", "Describe Paris", "-m", MODEL, stream], env)
    with pytest.raises(ValueError):
        City.model_validate_json(prose.stdout)


def test_json_schema_to_a_model_without_response_format_warns(synced: tuple[Path, dict[str, str]],
                                                              tmp_path: Path) -> None:
    """OpenRouter drops what a model does not support: the answer would silently be prose."""
    _data, env = synced
    schema = tmp_path / "city.json"
    schema.write_text(json.dumps(City.model_json_schema()))
    done = run_cli("hive", ["ask", "Describe Paris", "-m", OTHER, "--json-schema", str(schema)], env)
    assert done.returncode == 0
    assert f"warning: {OTHER} does not support response_format" in done.stderr


def test_body_params() -> None:
    """--temperature and --json-schema as the body's fields: a bare schema is named after its title
    and strict; OpenAI's whole json_schema object is sent as it is."""
    schema = City.model_json_schema()
    assert body_params(None, None) == {}
    assert body_params(0.2, schema) == {"temperature": 0.2, "response_format": {
        "type": "json_schema", "json_schema": {"name": "City_facts", "strict": True, "schema": schema}}}
    spec = {"name": "city", "schema": schema}
    assert body_params(None, spec)["response_format"] == {"type": "json_schema", "json_schema": spec}
    assert body_params(None, {"type": "object"})["response_format"]["json_schema"]["name"] == "answer"


def test_system_message_is_sent(synced: tuple[Path, dict[str, str]]) -> None:
    """--system goes before the prompt: the emulator counts its tokens."""
    data, env = synced
    for extra in ([], ["--system", "You answer in one short, careful sentence, in French."]):
        assert run_cli("hive", ["ask", "hi", "-m", MODEL, "--max-tokens", "5", *extra], env).returncode == 0
    (without,), (with_system,) = events(data, "usage", "prompt_tokens")
    assert with_system > without + 5


def test_a_mid_stream_error_falls_back_on_its_own_line(emulator_factory: Any, tmp_path: Path) -> None:
    """The stream fails after some text: the partial answer's line is ended, the fallback notice is a
    line of its own, the next model answers (as --no-stream does); both attempts are recorded."""
    emu = emulator_factory(faults=[f"{MODEL}:midstream-error:1"])
    data = tmp_path / "data"
    env = hive_env(emu, data)
    assert run_cli("hive", ["models", "sync"], env).returncode == 0  # no first-use notice in the output
    done = hive_ask(["Say hi", "-m", MODEL, "--fallback", OTHER, "--max-tokens", "20"], env, merged=True)
    assert done.returncode == 0, done.stdout
    partial, notice, answer, *_ = done.stdout.decode().splitlines()  # as a terminal shows stdout and stderr
    assert partial.strip() and answer.strip()
    assert notice == f"{MODEL} failed (server_error): trying {OTHER}"
    assert events(data, "api_call", "model, status, fallback_index") == [(MODEL, "server_error", 0), (OTHER, "ok", 1)]
    assert events(data, "stream_outcome", "outcome") == [("errored",), ("completed",)]
    alone = hive_ask(["Say hi", "-m", MODEL, "--no-fallback", "--max-tokens", "20"], env, merged=True)
    assert alone.returncode == 1
    partial, error = alone.stdout.decode().splitlines()
    assert partial.strip() and error == "error: stream failed mid-way (502): Provider returned error"
