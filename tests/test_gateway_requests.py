"""What a gateway request may name (issue 14, found by an audit of ``hive gateway``):

* ``X-Hive-Task`` is checked when the request is read, for every model: an unknown task is the
  client's 400 (never a retryable 503 from the selector, never recorded as a task), as
  ``hive ask --task`` refuses one;
* OpenRouter's routing shortcuts (``:nitro``, ``:floor``, ``:online``) after a catalog id
  go through as asked - through the library, ``hive ask`` and the gateway alike (the Session is
  shared) - priced and budgeted as their model, ``:online`` with its web search on top; an unknown
  suffix stays a 404 with "did you mean".

Real processes and servers: the emulator serving the real catalog, ``hive`` and ``hive gateway``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
from openai import OpenAI

from hive_core.ask import AskOptions
from hive_core.budget import BudgetConfig, Limit, max_cost, save_budget_config
from hive_core.catalog.catalog import Catalog, load_catalog
from hive_core.catalog.variants import ONLINE_SEARCH_USD
from hive_core.errors import BudgetExceeded, UnknownModel
from hive_core.selection.complexity import TASK_TYPES
from hive_core.session import Session
from hive_core.store.events import ApiCall, Usage
from hive_emulator import Emulator
from hive_gateway.errors import InvalidRequest
from hive_gateway.inbound import parse_chat_request
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL, emu_settings
from tests.plugins.store import ListSink, events

if TYPE_CHECKING:
    from tests.plugins.gateway import GatewayProcess

Start = Callable[..., "GatewayProcess"]

HI: list[Any] = [{"role": "user", "content": "hi"}]
#: the routing shortcuts OpenRouter accepts after any id, none of them a catalog entry of MODEL
SHORTCUTS = ("nitro", "floor", "online")
#: a free catalog variant, to which ``:online`` adds a billed web search
FREE = "openai/gpt-oss-20b:free"
#: every task type, as ``hive ask --task`` lists them
TASKS = ", ".join(sorted(TASK_TYPES))
#: a daily limit below ``:online``'s web search ($0.02) and far above a short answer of MODEL
SMALL_LIMIT_USD = 0.01


@pytest.fixture(scope="module")
def catalog(catalog_path: Path) -> Catalog:
    return load_catalog(catalog_path)


def _synced(data: Path, catalog_path: Path) -> Path:
    """``data`` with the real catalog where ``hive models sync`` puts it."""
    from hive_core.store.datadir import DataDir

    target = DataDir(data).catalog_file
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(catalog_path, target)
    return data


def _limit(data: Path, daily_usd: float) -> None:
    from hive_core.store.datadir import DataDir

    save_budget_config(DataDir(data).config_file,
                       BudgetConfig(limits={"global": Limit(scope="global", daily_usd=daily_usd)}))


# -- 1. X-Hive-Task -----------------------------------------------------------------------------------


def test_an_unknown_task_is_refused_where_the_request_is_read() -> None:
    """The parser names the header and every known task, in one line; a known task in any case is
    kept in its canonical spelling; no header (or an empty one) is no task."""
    body = json.dumps({"model": MODEL, "messages": HI}).encode()
    with pytest.raises(InvalidRequest) as refused:
        parse_chat_request(body, {"x-hive-task": " bogus-task "}, None, None)
    message = str(refused.value)
    assert "X-Hive-Task" in message and "'bogus-task'" in message and TASKS in message and "\n" not in message
    assert parse_chat_request(body, {"x-hive-task": "Code-Generation"}, None, None).task == "code-generation"
    assert parse_chat_request(body, {"x-hive-task": " "}, None, None).task is None
    assert parse_chat_request(body, {}, None, None).task is None


@pytest.mark.parametrize("model", [MODEL, "hive/auto", "hive/auto:cost-optimized"])
def test_an_unknown_task_is_a_400_for_every_model(gateway: GatewayProcess, model: str) -> None:
    """Before the fix ``hive/auto`` answered 503 ``gateway_not_configured`` (which the openai SDK
    retries) and a plain id recorded ``task_category='bogus-task'``: now both are the client's 400,
    not retried, and nothing is selected, sent or recorded."""
    with OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", max_retries=2, timeout=20) as client, \
            pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=HI, max_tokens=5,
                                       extra_headers={"X-Hive-Task": "bogus-task"})
    assert refused.value.code == "invalid_request"
    assert refused.value.type == "invalid_request_error"
    assert "X-Hive-Task" in refused.value.message and TASKS in refused.value.message
    assert gateway.stop() == 0
    assert gateway.stderr.count("status=400") == 1  # once: a 400 is not retried
    assert events(gateway.data_dir, "api_call", "*") == [] and events(gateway.data_dir, "selection", "*") == []


def test_an_unknown_task_is_refused_by_hive_ask_the_same_way(emulator: Emulator, tmp_path: Path) -> None:
    """``hive ask --task`` refuses it too, before anything is sent: one line naming the option and
    the same task types the gateway lists."""
    data = tmp_path / "data"
    done = run_cli("hive", ["ask", "--model", MODEL, "--task", "bogus-task", "hi"], hive_env(emulator, data))
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert "--task" in line and "'bogus-task'" in line and all(f"'{task}'" in line for task in TASK_TYPES)
    assert events(data, "api_call", "*") == []


# -- 2. OpenRouter's routing shortcuts ------------------------------------------------------------


@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_a_routing_shortcut_resolves_to_the_id_as_asked(catalog: Catalog, shortcut: str) -> None:
    """``base:shortcut`` is the base model under the id as asked (a short name resolves too), at
    the base's price - ``:online`` adds its web search per request; the catalog's own entries
    (iteration, ``in``) stay what OpenRouter listed."""
    asked = f"{MODEL}:{shortcut}"
    assert asked not in catalog
    model, base = catalog.resolve(asked), catalog.get(MODEL)
    assert model.id == asked and catalog.resolve(f"gpt-4o-mini:{shortcut}").id == asked
    assert catalog.get(asked) is model and asked not in {m.id for m in catalog}
    fee = ONLINE_SEARCH_USD if shortcut == "online" else Decimal(0)
    assert model.pricing.request == base.pricing.request + fee
    assert (model.pricing.prompt, model.pricing.completion, model.tier) == (
        base.pricing.prompt, base.pricing.completion, base.tier)


def test_online_bills_its_web_search_even_on_a_free_model(catalog: Catalog) -> None:
    online = catalog.resolve(f"{FREE}:online")
    assert catalog.get(FREE).is_free and not online.is_free
    assert online.pricing.request == ONLINE_SEARCH_USD


@pytest.mark.parametrize(("name", "meant"), [
    (f"{MODEL}:bogus", MODEL),  # not a shortcut: an unknown model, as before
    ("openai/gpt-4o-mni:nitro", f"{MODEL}:nitro"),  # a typo before a shortcut: suggested with it
    (f"{MODEL}:nitro:online", f"{MODEL}:online"),  # one shortcut per id
])
def test_an_unknown_suffix_is_an_unknown_model(catalog: Catalog, name: str, meant: str) -> None:
    with pytest.raises(UnknownModel, match=f"did you mean {meant}"):
        catalog.resolve(name)
    with pytest.raises(UnknownModel):
        catalog.get(name)


def test_online_reserves_its_web_search(catalog: Catalog) -> None:
    """The reservation's maximum holds the web search; the results' prompt tokens are left to the
    billed cost that settles it (see hive_core.catalog.variants)."""
    plain, online = (max_cost(catalog, model, HI, max_tokens=16, default_max_tokens=1000)
                     for model in (MODEL, f"{MODEL}:online"))
    assert online.max_usd == pytest.approx(plain.max_usd + float(ONLINE_SEARCH_USD))


def test_the_emulator_answers_a_shortcut_as_its_model(emulator: Emulator) -> None:
    """As OpenRouter does: the answer's ``model`` is the base id; ``:online`` bills the web search."""
    answers = {}
    for model in (MODEL, f"{MODEL}:nitro", f"{MODEL}:online"):
        answer = httpx.post(f"{emulator.base_url}/chat/completions", timeout=20,
                            headers={"Authorization": f"Bearer {emulator.api_key}"},
                            json={"model": model, "messages": HI, "max_tokens": 8})
        assert answer.status_code == 200, answer.text
        answers[model] = answer.json()
    assert {answer["model"] for answer in answers.values()} == {MODEL}
    plain, nitro, online = (answer["usage"]["cost"] for answer in answers.values())
    assert nitro == plain and online == pytest.approx(plain + float(ONLINE_SEARCH_USD))
    unknown = httpx.post(f"{emulator.base_url}/chat/completions", timeout=20,
                         headers={"Authorization": f"Bearer {emulator.api_key}"},
                         json={"model": f"{MODEL}:bogus", "messages": HI})
    assert unknown.status_code == 400


def test_a_routing_shortcut_goes_out_as_asked(emulator: Any, tmp_path: Path, catalog_path: Path) -> None:
    """Library: under a budget limit, ``:nitro`` is reserved, sent and recorded as asked (the answer
    says the base model served it); ``:online``'s web search does not fit the small limit."""
    settings = emu_settings(emulator, tmp_path)
    _limit(_synced(settings.data_dir, catalog_path), SMALL_LIMIT_USD)
    sink = ListSink()
    with Session(settings, sink) as session:
        result = session.chat(HI, model=f"{MODEL}:nitro", max_tokens=8)
        with pytest.raises(BudgetExceeded):
            session.ask(HI, ["gpt-4o-mini:online"], AskOptions(max_tokens=8))
    assert (result.model, result.served_model, result.cost_source) == (f"{MODEL}:nitro", MODEL, "billed")
    ((call,), (usage,)) = sink.of(ApiCall), sink.of(Usage)
    assert (call.model, call.served_model, call.status) == (f"{MODEL}:nitro", MODEL, "ok")
    assert usage.cost_usd == result.cost_usd


def test_a_routing_shortcut_goes_out_as_asked_through_hive_ask(emulator: Emulator, tmp_path: Path,
                                                               catalog_path: Path) -> None:
    """CLI: the same through ``hive ask`` (a short name with a shortcut resolves); an unknown suffix
    is refused before sending, with what was meant."""
    data = _synced(tmp_path / "data", catalog_path)
    env = hive_env(emulator, data)
    done = run_cli("hive", ["ask", "--model", "gpt-4o-mini:floor", "--max-tokens", "8", "-q", "hi"], env)
    assert done.returncode == 0, done.stderr
    refused = run_cli("hive", ["ask", "--model", f"{MODEL}:bogus", "-q", "hi"], env)
    assert refused.returncode == 2 and f"did you mean {MODEL}" in refused.stderr
    assert events(data, "api_call", "model, served_model, status") == [(f"{MODEL}:floor", MODEL, "ok")]


@pytest.mark.parametrize("stream", [False, True])
def test_a_routing_shortcut_goes_out_as_asked_through_the_gateway(gateway_factory: Start, emulator: Emulator,
                                                                  tmp_path: Path, stream: bool) -> None:
    """Gateway: the openai SDK asks ``:nitro`` under a budget limit; the answer says the base model
    served it, the events say what was asked. ``:online`` is refused by the small limit (402) and
    an unknown suffix is the usual 404 with "did you mean"."""
    data = tmp_path / "data"
    _limit(data, SMALL_LIMIT_USD)
    gateway = gateway_factory(emulator, "--no-auth", data_dir=data)
    with OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", max_retries=0, timeout=20) as client:
        if stream:
            chunks = list(client.chat.completions.create(model=f"{MODEL}:nitro", messages=HI,
                                                         max_tokens=8, stream=True))
            assert {chunk.model for chunk in chunks} == {MODEL} and chunks[-1].usage is not None
        else:
            answer = client.chat.completions.create(model=f"{MODEL}:nitro", messages=HI, max_tokens=8)
            assert answer.model == MODEL and answer.choices[0].message.content
        with pytest.raises(openai.APIStatusError) as over:
            client.chat.completions.create(model=f"{MODEL}:online", messages=HI, max_tokens=8)
        assert over.value.status_code == 402 and over.value.code == "budget_exceeded"
        with pytest.raises(openai.NotFoundError) as unknown:
            client.chat.completions.create(model=f"{MODEL}:bogus", messages=HI)
        assert unknown.value.code == "model_not_found" and f"did you mean {MODEL}" in unknown.value.message
    assert gateway.stop() == 0
    assert events(data, "api_call", "model, served_model, status, streamed") == [
        (f"{MODEL}:nitro", MODEL, "ok", stream)]
    assert events(data, "usage", "model") == [(MODEL,)]


def test_a_key_allowed_a_model_may_use_its_routing_shortcuts(gateway_factory: Start, emulator: Emulator,
                                                             tmp_path: Path) -> None:
    data = tmp_path / "data"
    gateway = gateway_factory(emulator, data_dir=data)
    made = run_cli("hive", ["keys", "create", "--json", "--app", "a", "--models", MODEL], hive_env(emulator, data))
    assert made.returncode == 0, made.stderr
    secret = json.loads(made.stdout)["secret"]
    answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"},
                        json={"model": f"{MODEL}:nitro", "messages": HI, "max_tokens": 5}, timeout=20)
    assert answer.status_code == 200, answer.text


def test_too_many_tags_are_refused_where_the_request_is_read() -> None:
    """Every event of a request records its tags: a header of hundreds is a client's bug, said in
    one line (400), not hundreds of strings on each event; the most allowed go through."""
    from hive_gateway.errors import InvalidRequest
    from hive_gateway.inbound import MAX_TAGS, parse_chat_request

    body = json.dumps({"model": MODEL, "messages": HI}).encode()
    most = ",".join(f"t{i}" for i in range(MAX_TAGS))
    assert len(parse_chat_request(body, {"x-hive-tags": most}, None, None).labels.tags) == MAX_TAGS
    with pytest.raises(InvalidRequest, match=f"holds {MAX_TAGS + 1} tags: send at most {MAX_TAGS}"):
        parse_chat_request(body, {"x-hive-tags": most + ",one-more"}, None, None)
