"""Who a gateway request is for and where it goes, over real HTTP (issue 14): a real ``hive gateway``
in front of the emulator, virtual keys made with ``hive keys create``.

* a key's model allow-list: another model is a 403, ``GET /v1/models`` lists what the key may use,
  and ``hive/auto`` chooses and falls back only among the key's models;
* labels: a key's app wins over ``X-Hive-App`` (events and the app's budget), the user comes from the
  key, else ``X-Hive-User``, else the body's ``user``; ``X-Hive-Tags`` edge cases;
* ``--no-auth`` says so loudly at start-up, and only then;
* ``hive/auto`` and its strategies: the ``selection`` event, the answering model, the tools the
  request needs against the catalog, and the fallback chain walked on a fault.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hive_core.budget import Ledger
from hive_core.store.datadir import DataDir
from hive_emulator import Emulator
from hive_gateway.inbound import MAX_LABEL
from hive_gateway.routing import ALIASES
from hive_gateway.server import NO_AUTH_WARNING
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL, NO_TOOLS_MODEL
from tests.plugins.sdk_cases import QUESTION, TOOLS, MathAnswer
from tests.plugins.store import events

if TYPE_CHECKING:
    from tests.plugins.gateway import GatewayProcess

Start = Callable[..., "GatewayProcess"]

#: a second cheap model of the real catalog (another provider than MODEL)
OTHER = "mistralai/mistral-nemo"
#: a model of the real catalog that the limited keys below may not use
FORBIDDEN = "google/gemini-2.5-flash"
HI = [{"role": "user", "content": "hi"}]
SELECTION = "request_id, strategy, model, fallbacks"


# -- helpers ---------------------------------------------------------------------------------------


def _create_key(env: dict[str, str], *args: str) -> tuple[str, str]:
    """``hive keys create --json ARGS``: (secret, key id)."""
    made = run_cli("hive", ["keys", "create", "--json", *args], env)
    assert made.returncode == 0, made.stderr
    document = json.loads(made.stdout)
    return document["secret"], document["key"]["key_id"]


def _chat(gateway: GatewayProcess, body: dict[str, Any], secret: str | None = None,
          headers: dict[str, str] | None = None) -> httpx.Response:
    """``POST /v1/chat/completions`` with ``body`` (``max_tokens`` 5 unless given), the key and ``headers``."""
    sent = {**(headers or {}), **({"Authorization": f"Bearer {secret}"} if secret else {})}
    return httpx.post(f"{gateway.base_url}/v1/chat/completions", json={"max_tokens": 5, **body}, headers=sent,
                      timeout=30)


def _of(rows: list[tuple[Any, ...]], request_id: str) -> list[tuple[Any, ...]]:
    """The rows (``request_id`` first) of one request, without their request id."""
    return [row[1:] for row in rows if row[0] == request_id]


def _assert_openai_error(answer: httpx.Response, status: int, error_type: str, code: str,
                         *, chat: bool = True) -> dict[str, Any]:
    """``answer`` is OpenAI's error shape with this status, type and code (and, answering a ``chat``
    request, Hive's request id); its ``error`` object."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) == {"message", "type", "code"} and error["message"]
    assert (error["type"], error["code"]) == (error_type, code)
    assert answer.headers.get("x-hive-request-id") or not chat
    return error


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The data directory of the gateway under test."""
    return tmp_path / "data"


@pytest.fixture
def supported(catalog_path: Path) -> dict[str, frozenset[str]]:
    """Every model of the catalog snapshot -> its ``supported_parameters``."""
    models = json.loads(catalog_path.read_text())["data"]
    return {model["id"]: frozenset(model.get("supported_parameters") or ()) for model in models}


# -- 1. a key's model allow-list -------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_outside_the_keys_list_is_a_403_before_anything_is_sent(
        gateway_factory: Start, emulator: Emulator, data: Path, stream: bool) -> None:
    """A key made with ``--models A,B`` gets an OpenAI-shaped 403 ``model_not_allowed`` for another
    model, asked directly or as one of the request's ``models`` fallbacks, streamed or not (before
    any byte: JSON, not SSE); nothing reaches OpenRouter or the event log; its own models answer."""
    gateway = gateway_factory(emulator, data_dir=data)
    secret, key_id = _create_key(hive_env(emulator, data), "--app", "a", "--models", f"{MODEL},{OTHER}")
    for body in ({"model": FORBIDDEN}, {"model": MODEL, "models": [FORBIDDEN]}):
        refused = _chat(gateway, {**body, "messages": HI, "stream": stream}, secret)
        error = _assert_openai_error(refused, 403, "permission_error", "model_not_allowed")
        assert FORBIDDEN in error["message"] and key_id in error["message"] and secret not in refused.text
    for model in (MODEL, OTHER):
        assert _chat(gateway, {"model": model, "messages": HI}, secret).status_code == 200
    assert gateway.stop() == 0
    assert events(data, "api_call", "model") == [(MODEL,), (OTHER,)]  # the refused requests: none


def test_models_lists_only_what_the_key_may_use(gateway_factory: Start, emulator: Emulator, data: Path) -> None:
    """``GET /v1/models`` with a limited key lists its models and the ``hive/auto`` aliases (which
    choose among them), nothing else; an unlimited key sees the whole catalog; no key is a 401."""
    gateway = gateway_factory(emulator, data_dir=data)
    env = hive_env(emulator, data)
    limited, _ = _create_key(env, "--app", "a", "--models", f"{MODEL},{OTHER}")
    unlimited, _ = _create_key(env, "--app", "b")

    def ids(secret: str) -> list[str]:
        listed = httpx.get(f"{gateway.base_url}/v1/models", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
        assert listed.status_code == 200 and listed.json()["object"] == "list"
        return [model["id"] for model in listed.json()["data"]]

    assert sorted(ids(limited)) == sorted([MODEL, OTHER, *ALIASES])
    everything = ids(unlimited)
    assert FORBIDDEN in everything and len(everything) > 300
    _assert_openai_error(httpx.get(f"{gateway.base_url}/v1/models", timeout=10), 401, "invalid_request_error",
                         "invalid_api_key", chat=False)


@pytest.mark.parametrize("alias", list(ALIASES))
def test_hive_auto_with_a_limited_key_chooses_only_among_its_models(
        gateway_factory: Start, emulator: Emulator, data: Path, alias: str) -> None:
    """With a key limited to two models, every ``hive/auto`` strategy records a ``selection`` whose
    model and fallbacks are all in the key's list, and the answer comes from its model."""
    gateway = gateway_factory(emulator, data_dir=data)
    secret, _ = _create_key(hive_env(emulator, data), "--app", "a", "--models", f"{MODEL},{OTHER}")
    answer = _chat(gateway, {"model": alias, "messages": QUESTION}, secret)
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-hive-request-id"]
    ((strategy, model, fallbacks),) = _of(gateway.wait_events("selection", 1, SELECTION), request_id)
    assert strategy == ALIASES[alias]
    assert {model, *fallbacks} <= {MODEL, OTHER}, (model, fallbacks)
    assert answer.json()["model"] == model


def test_hive_auto_with_a_limited_key_falls_back_only_to_its_models(
        emulator_factory: Callable[..., Emulator], gateway_factory: Start, data: Path) -> None:
    """When the model ``hive/auto`` chose for a limited key fails, the chain goes on to the key's other
    model (``fallback_index`` 1) and never to a model outside the key's list."""
    emu = emulator_factory()
    gateway = gateway_factory(emu, data_dir=data)
    secret, _ = _create_key(hive_env(emu, data), "--app", "a", "--models", f"{MODEL},{OTHER}")
    body = {"model": "hive/auto", "messages": HI}
    probe = _chat(gateway, body, secret)
    assert probe.status_code == 200, probe.text
    ((_, chosen, fallbacks),) = _of(gateway.wait_events("selection", 1, SELECTION), probe.headers["x-hive-request-id"])
    assert fallbacks, "the selector gave no fallback within the key's two models"
    emu.set_faults([f"{chosen}:502"])
    answer = _chat(gateway, body, secret)
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-hive-request-id"]
    assert answer.json()["model"] == fallbacks[0]
    assert _of(gateway.wait_events("selection", 2, SELECTION), request_id) == [("balanced", chosen, fallbacks)]
    gateway.wait_events("usage", 2, "request_id")  # the answer's usage: every attempt of it is recorded
    calls = _of(events(data, "api_call", "request_id, model, status, fallback_index"), request_id)
    assert {model for model, *_ in calls} <= {MODEL, OTHER}
    assert calls[-1] == (fallbacks[0], "ok", 1) and all(c[0] == chosen and c[2] == 0 for c in calls[:-1])


def test_hive_auto_with_a_key_whose_models_cannot_do_it_is_refused(
        gateway_factory: Start, emulator: Emulator, data: Path) -> None:
    """A key limited to a model without tools asks ``hive/auto`` with tools: a 400 ``no_model_fits``
    (the selector found nothing in the key's list), never a model outside the list."""
    gateway = gateway_factory(emulator, data_dir=data)
    secret, _ = _create_key(hive_env(emulator, data), "--app", "a", "--models", NO_TOOLS_MODEL)
    refused = _chat(gateway, {"model": "hive/auto", "messages": QUESTION, "tools": TOOLS}, secret)
    _assert_openai_error(refused, 400, "invalid_request_error", "no_model_fits")
    assert gateway.stop() == 0
    assert events(data, "api_call", "*") == []


# -- 2. labels: app, user, tags --------------------------------------------------------------------


def test_a_keys_app_wins_over_x_hive_app_in_the_events_and_the_budget(
        gateway_factory: Start, emulator: Emulator, data: Path) -> None:
    """A key's app is the request's app whatever ``X-Hive-App`` says: the events carry the key's app,
    the key's app budget counts the spend, and the header's app budget neither counts it nor refuses
    it (that app is at 0, a kill switch); a key whose own app is at 0 is refused, header or not. The
    same for ``hive/auto``, whose ``selection`` event carries the key's app too."""
    env = hive_env(emulator, data)
    for app, limit in (("search", "100"), ("chat", "0"), ("broke", "0")):
        assert run_cli("hive", ["budget", "set", "--daily", limit, "--app", app], env).returncode == 0
    gateway = gateway_factory(emulator, data_dir=data)
    search, _ = _create_key(env, "--app", "search")
    broke, _ = _create_key(env, "--app", "broke")
    answer = _chat(gateway, {"model": MODEL, "messages": HI}, search, {"X-Hive-App": "chat"})
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-hive-request-id"]
    refused = _chat(gateway, {"model": MODEL, "messages": HI}, broke, {"X-Hive-App": "search"})
    _assert_openai_error(refused, 402, "insufficient_quota", "budget_exceeded")
    auto = _chat(gateway, {"model": "hive/auto", "messages": HI}, search, {"X-Hive-App": "chat"})
    assert auto.status_code == 200, auto.text
    assert gateway.wait_events("selection", 1, "app") == [("search",)]
    usage = gateway.wait_events("usage", 2, "request_id, app, cost_usd")
    assert {app for _, app, _ in usage} == {"search"}
    assert _of(gateway.wait_events("api_call", 2, "request_id, app"), request_id) == [("search",)]
    assert gateway.stop() == 0
    with Ledger(DataDir(data).ledger) as ledger:
        spent = ledger.spend_by_day()
    assert sum(usd for (scope, _), usd in spent.items() if scope == "app:search") == pytest.approx(
        sum(cost for *_, cost in usage))
    assert not any(scope in ("app:chat", "app:broke") for scope, _ in spent), spent


@pytest.mark.parametrize(("key_user", "headers", "body_user", "recorded"), [
    (None, {"X-Hive-User": "bob"}, None, "bob"),
    ("ana", {"X-Hive-User": "bob"}, None, "ana"),
    (None, {}, "carol", "carol"),
    (None, {"X-Hive-User": "bob"}, "carol", "bob"),
    ("ana", {}, "carol", "ana"),
    (None, {}, None, None),
])
def test_the_user_is_the_keys_else_x_hive_user_else_the_body_user(
        gateway_factory: Start, emulator: Emulator, data: Path, key_user: str | None, headers: dict[str, str],
        body_user: str | None, recorded: str | None) -> None:
    """Who a request is for: the key's user wins; without one ``X-Hive-User``; without the header the
    OpenAI body's ``user`` field; none of them: no user. Checked on both api_call and usage."""
    gateway = gateway_factory(emulator, data_dir=data)
    secret, _ = _create_key(hive_env(emulator, data), "--app", "a", *(("--user", key_user) if key_user else ()))
    body = {"model": MODEL, "messages": HI, **({"user": body_user} if body_user else {})}
    answer = _chat(gateway, body, secret, headers)
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-hive-request-id"]
    assert _of(gateway.wait_events("api_call", 1, "request_id, user"), request_id) == [(recorded,)]
    assert _of(gateway.wait_events("usage", 1, "request_id, user"), request_id) == [(recorded,)]


@pytest.mark.parametrize(("header", "tags"), [
    ("a,,b, ,", ["a", "b"]),
    ("a,a", ["a"]),
    ("a ,  b", ["a", "b"]),
    ("b,a,b", ["b", "a"]),
    (", ,", []),
    ("t" * (MAX_LABEL + 300), ["t" * MAX_LABEL]),
    (f"{'x' * MAX_LABEL}yyy,{'x' * MAX_LABEL}", ["x" * MAX_LABEL]),
])
def test_x_hive_tags_edge_cases(gateway: GatewayProcess, header: str, tags: list[str]) -> None:
    """``X-Hive-Tags`` is a comma list: empty parts dropped, spaces around parts trimmed (around the
    whole value HTTP itself strips them, and httpx refuses to send them), duplicates
    kept once in first-seen order, a very long tag capped at :data:`MAX_LABEL` characters (two tags
    that are equal once capped count once)."""
    answer = _chat(gateway, {"model": MODEL, "messages": HI}, headers={"X-Hive-Tags": header})
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-hive-request-id"]
    for event_type in ("api_call", "usage"):
        ((recorded,),) = _of(gateway.wait_events(event_type, 1, "request_id, tags"), request_id)
        assert list(recorded or []) == tags


# -- 3. --no-auth says so loudly -------------------------------------------------------------------


def _started(gateway: GatewayProcess, timeout: float = 30.0) -> list[str]:
    """The gateway's stderr lines once it says it is listening (every worker up: stopping it earlier
    would test start-up's interruption, not its warning)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = (gateway.output / "stderr").read_text().splitlines()
        if any(line.startswith("listening on ") for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_no_auth_warns_at_start_up_in_one_line(gateway_factory: Start, emulator: Emulator, workers: str) -> None:
    """``hive gateway --no-auth`` prints :data:`NO_AUTH_WARNING` on stderr once (not once per worker),
    on one line, before it says it listens, naming the address anyone could spend this account from."""
    gateway = gateway_factory(emulator, "--no-auth", "--workers", workers)
    at_start = _started(gateway)
    assert gateway.stop() == 0, gateway.stderr
    expected = NO_AUTH_WARNING.format(address=f"127.0.0.1:{gateway.port}")
    assert "\n" not in expected
    listening = next(n for n, line in enumerate(at_start) if line.startswith("listening on "))
    assert at_start[:listening].count(expected) == 1, at_start
    assert sum("--no-auth" in line for line in gateway.stderr.splitlines()) == 1, gateway.stderr


def test_a_gateway_with_auth_says_nothing_of_the_kind(gateway_factory: Start, emulator: Emulator) -> None:
    """Without ``--no-auth`` there is no such warning (it would cry wolf)."""
    gateway = gateway_factory(emulator)
    assert gateway.stop() == 0
    assert "--no-auth" not in gateway.stderr and "WARNING" not in gateway.stderr, gateway.stderr


# -- 4. hive/auto: strategies, capabilities, the fallback chain --------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("alias", list(ALIASES))
def test_each_alias_records_its_strategy_and_says_which_model_answered(
        gateway: GatewayProcess, alias: str, stream: bool) -> None:
    """Each ``hive/auto`` alias records one ``selection`` with its strategy; the response's ``model``
    (every chunk's, streamed) is the selection's model, the one the ``api_call`` went to."""
    answer = _chat(gateway, {"model": alias, "messages": HI, "stream": stream})
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-hive-request-id"]
    ((strategy, model, _),) = _of(gateway.wait_events("selection", 1, SELECTION), request_id)
    assert strategy == ALIASES[alias]
    if stream:
        chunks = [json.loads(line.removeprefix("data: ")) for line in answer.text.splitlines()
                  if line.startswith("data: {")]
        assert chunks and {chunk["model"] for chunk in chunks} == {model}
    else:
        assert answer.json()["model"] == model
    assert _of(gateway.wait_events("api_call", 1, "request_id, model, status, fallback_index"), request_id) == [
        (model, "ok", 0)]


@pytest.mark.parametrize("alias", list(ALIASES))
def test_hive_auto_with_tools_chooses_only_models_that_support_tools(
        gateway: GatewayProcess, supported: dict[str, frozenset[str]], alias: str) -> None:
    """The selector sees the request's ``tools``: the chosen model and every fallback support
    ``tools`` in the catalog snapshot, and the answer is a tool call."""
    answer = _chat(gateway, {"model": alias, "messages": QUESTION, "tools": TOOLS, "max_tokens": 200})
    assert answer.status_code == 200, answer.text
    ((_, model, fallbacks),) = _of(gateway.wait_events("selection", 1, SELECTION), answer.headers["x-hive-request-id"])
    lacking = [m for m in (model, *fallbacks) if "tools" not in supported[m]]
    assert not lacking, f"{alias} chose models without tools: {lacking}"
    assert answer.json()["choices"][0]["message"].get("tool_calls")


#: a JSON-schema answer, as the openai SDK's ``parse(response_format=MathAnswer)`` sends it
JSON_SCHEMA = {"type": "json_schema",
               "json_schema": {"name": "MathAnswer", "strict": True, "schema": MathAnswer.model_json_schema()}}


@pytest.mark.parametrize("alias", list(ALIASES))
def test_hive_auto_with_a_json_schema_chooses_only_models_with_structured_outputs(
        gateway: GatewayProcess, supported: dict[str, frozenset[str]], alias: str) -> None:
    """The selector sees ``response_format: {type: json_schema}``: the chosen model and every fallback
    support ``structured_outputs`` in the catalog snapshot (OpenRouter's parameter for a JSON schema;
    ``response_format`` alone is JSON mode, ``json_object``), and the answer is valid for the schema."""
    answer = _chat(gateway, {"model": alias, "response_format": JSON_SCHEMA, "max_tokens": 400,
                             "messages": [{"role": "user", "content": "Solve 8x + 7 = -23"}]})
    assert answer.status_code == 200, answer.text
    ((_, model, fallbacks),) = _of(gateway.wait_events("selection", 1, SELECTION), answer.headers["x-hive-request-id"])
    lacking = [m for m in (model, *fallbacks) if "structured_outputs" not in supported[m]]
    assert not lacking, f"{alias} chose models without structured_outputs: {lacking}"
    MathAnswer.model_validate_json(answer.json()["choices"][0]["message"]["content"])


def test_hive_auto_in_json_mode_chooses_models_with_either_parameter(
        gateway: GatewayProcess, supported: dict[str, frozenset[str]]) -> None:
    """``json_object`` (JSON mode) needs ``response_format`` or ``structured_outputs``, not a schema:
    the cheapest choice may be a model with ``response_format`` alone."""
    answer = _chat(gateway, {"model": "hive/auto:cost-optimized", "response_format": {"type": "json_object"},
                             "messages": [{"role": "user", "content": "Reply with a JSON object {\"ok\": true}"}]})
    assert answer.status_code == 200, answer.text
    ((_, model, fallbacks),) = _of(gateway.wait_events("selection", 1, SELECTION), answer.headers["x-hive-request-id"])
    json_mode = {"response_format", "structured_outputs"}
    assert all(supported[m] & json_mode for m in (model, *fallbacks))
    assert any("structured_outputs" not in supported[m] for m in (model, *fallbacks)), \
        "json_object should not ask for a schema's support (the cheapest models lack it)"


@pytest.mark.parametrize("stream", [False, True])
def test_hive_auto_walks_the_selections_fallbacks_when_its_model_fails(
        emulator_factory: Callable[..., Emulator], gateway_factory: Start, stream: bool) -> None:
    """When the selection's model fails (a 502 on every attempt, from the emulator's faults), the next
    model of the selection's ``fallbacks`` answers: the response's ``model`` says so, and its
    ``api_call`` has ``fallback_index`` 1 after the failed attempts at index 0."""
    emu = emulator_factory()
    gateway = gateway_factory(emu, "--no-auth")
    body = {"model": "hive/auto:cost-optimized", "messages": HI, "stream": stream}
    probe = _chat(gateway, body)
    assert probe.status_code == 200, probe.text
    ((_, chosen, fallbacks),) = _of(gateway.wait_events("selection", 1, SELECTION), probe.headers["x-hive-request-id"])
    emu.set_faults([f"{chosen}:502"])
    answer = _chat(gateway, body)
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-hive-request-id"]
    assert _of(gateway.wait_events("selection", 2, SELECTION), request_id) == [("cost-optimized", chosen, fallbacks)]
    served = json.loads(answer.text.split("data: ")[1]) if stream else answer.json()
    assert served["model"] == fallbacks[0]
    assert _of(gateway.wait_events("usage", 2, "request_id, model"), request_id) == [(fallbacks[0],)]
    calls = _of(events(gateway.data_dir, "api_call", "request_id, model, status, fallback_index"), request_id)
    assert calls[-1] == (fallbacks[0], "ok", 1)
    assert calls[:-1] and all((model, index) == (chosen, 0) and status != "ok" for model, status, index in calls[:-1])


def test_hive_auto_tries_the_requests_own_models_after_the_selections(
        emulator_factory: Callable[..., Emulator], gateway_factory: Start) -> None:
    """A request's ``models`` are its fallbacks with ``hive/auto`` too: after the selection's chain
    (recorded as the selector chose it), in the order asked, each with its ``fallback_index``."""
    emu = emulator_factory()
    gateway = gateway_factory(emu, "--no-auth")
    body: dict[str, Any] = {"model": "hive/auto:cost-optimized", "messages": HI, "max_tokens": 8}
    probe = _chat(gateway, body)
    assert probe.status_code == 200, probe.text
    ((_, chosen, fallbacks),) = _of(gateway.wait_events("selection", 1, SELECTION), probe.headers["x-hive-request-id"])
    chain = [chosen, *fallbacks]
    last_resort = next(m for m in (MODEL, OTHER) if m not in chain)
    emu.set_faults([f"{model}:502" for model in chain])
    answer = _chat(gateway, {**body, "models": [chosen, last_resort]})  # one already in the chain: tried once
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == last_resort
    request_id = answer.headers["x-hive-request-id"]
    assert _of(gateway.wait_events("usage", 2, "request_id, model"), request_id) == [(last_resort,)]
    calls = _of(events(gateway.data_dir, "api_call", "request_id, model, status, fallback_index"), request_id)
    assert calls[-1] == (last_resort, "ok", len(chain))
    assert {model for model, _, _ in calls[:-1]} == set(chain)
