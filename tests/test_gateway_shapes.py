"""What the gateway answers outside a successful chat, over real HTTP: errors in OpenAI's JSON shape
whatever failed (the upstream, a route, aiohttp's router), never the upstream's URL or the user and
password in it, and ``GET /v1/models/{id}`` (the openai SDK's ``models.retrieve``)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import openai
import pytest
from openai import OpenAI

from hive_emulator import Emulator
from tests.plugins.cli import hive_env, run_cli
from tests.plugins.emulator import MODEL
from tests.plugins.gateway import free_port
from tests.plugins.store import events

if TYPE_CHECKING:
    from tests.plugins.gateway import GatewayProcess

Start = Callable[..., "GatewayProcess"]
HI = [{"role": "user", "content": "hi"}]
PROXY_USER, PROXY_PASSWORD = "proxyuser", "proxyS3cret"
ALIAS = "hive/auto:cost-optimized"


@pytest.fixture
def sdk(gateway: GatewayProcess) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{gateway.base_url}/v1", api_key="unused-without-auth", max_retries=0, timeout=20) as client:
        yield client


@contextlib.contextmanager
def _dropping_server() -> Iterator[int]:
    """A server on 127.0.0.1 that reads each request and closes the connection without a word: its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        thread.join(timeout=5)


@contextlib.contextmanager
def _closed_port() -> Iterator[int]:
    yield free_port()  # nothing listens there


@pytest.mark.parametrize(("upstream", "code"), [(_closed_port, "unreachable"), (_dropping_server, "network")])
def test_the_upstreams_url_and_credentials_never_reach_a_client_a_log_or_an_event(
        emulator: Emulator, gateway_factory: Start, upstream: Callable[[], contextlib.AbstractContextManager[int]],
        code: str) -> None:
    with upstream() as port:
        base_url = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}/api/v1"
        gateway = gateway_factory(emulator, "--no-auth", env={"OPENROUTER_BASE_URL": base_url})
        seen = []
        for stream in (False, True):
            answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", timeout=30,
                                json={"model": MODEL, "messages": HI, "max_tokens": 5, "stream": stream})
            assert answer.status_code == 502 and answer.headers["x-hive-request-id"]
            assert PROXY_USER not in answer.text and PROXY_PASSWORD not in answer.text
            error = answer.json()["error"]
            assert error["code"] == code and "OpenRouter" in error["message"]
            # not even the address: an internal proxy's host and port are the operator's business
            assert str(port) not in error["message"] and "127.0.0.1" not in error["message"]
            seen.append(str(answer.headers) + answer.text)
        seen.append(httpx.get(f"{gateway.base_url}/metrics").text)
        assert gateway.stop() == 0
    assert set(events(gateway.data_dir, "api_call", "status, streamed")) == {(code, False), (code, True)}
    seen += [gateway.stdout, gateway.stderr]
    seen += [repr(events(gateway.data_dir, table, "*")) for table in ("api_call", "usage", "stream_outcome")]
    assert all(PROXY_USER not in text and PROXY_PASSWORD not in text for text in seen)
    assert gateway.stderr.count("status=502") == 2  # the access log did run
    # the operator is told where and what to check, once (the same failure again is not repeated)
    told = [line for line in gateway.stderr.splitlines() if line.startswith("error: ")]
    if code == "unreachable":
        assert len(told) == 1 and told[0].startswith(f"error: cannot reach OpenRouter at http://127.0.0.1:{port} (")
        assert "check the network and OPENROUTER_BASE_URL" in told[0]
    else:
        assert told == []  # a connection the upstream dropped: the client retries, nothing to configure


def test_unknown_urls_and_methods_are_openai_shaped_with_a_request_id(gateway: GatewayProcess) -> None:
    for method, path, status, allow in (("GET", "/nope", 404, None), ("POST", "/chat/completions", 404, None),
                                        ("GET", "/v1/chat/completions", 405, "POST"),
                                        ("POST", "/v1/models", 405, "GET,HEAD")):
        answer = httpx.request(method, f"{gateway.base_url}{path}", json={}, timeout=20)
        assert answer.status_code == status, (method, path)
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.headers["x-hive-request-id"]
        assert answer.headers.get("allow") == allow
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "code"} and error["type"] == "invalid_request_error"
        assert error["code"] == ("unknown_url" if status == 404 else "method_not_allowed")
    assert "base URL ends in /v1" in httpx.get(f"{gateway.base_url}/chat/completions").json()["error"]["message"]
    with OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0) as no_v1, \
            pytest.raises(openai.NotFoundError) as caught:  # a base URL without /v1: the SDK reads our error
        no_v1.models.list()
    assert caught.value.code == "unknown_url"
    assert gateway.stop() == 0 and "Traceback" not in gateway.stderr
    assert gateway.stderr.count("error=HTTPNotFound") == 4 and gateway.stderr.count("error=HTTPMethodNotAllowed") == 2


def test_a_model_is_retrieved_by_its_id(sdk: OpenAI, gateway: GatewayProcess) -> None:
    listed = {model["id"]: model for model in httpx.get(f"{gateway.base_url}/v1/models").json()["data"]}
    model = sdk.models.retrieve(MODEL)  # its "/" sent as %2F
    assert model.id == MODEL and model.owned_by == "openai"
    assert model.model_dump(exclude_unset=True) == listed[MODEL]
    alias = sdk.models.retrieve(ALIAS)
    assert alias.id == ALIAS and alias.owned_by == "hive"
    raw = httpx.get(f"{gateway.base_url}/v1/models/{MODEL}")  # a plain "/" in the path
    assert raw.status_code == 200 and raw.json() == listed[MODEL] and raw.headers["x-hive-request-id"]
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.models.retrieve("openai/gpt-4o-mimi")
    assert unknown.value.code == "model_not_found" and "did you mean openai/gpt-4o-mini" in unknown.value.message
    refused = httpx.get(f"{gateway.base_url}/v1/models/nope")
    assert refused.status_code == 404 and refused.json()["error"]["type"] == "invalid_request_error"
    assert refused.headers["x-hive-request-id"]
    # a routing shortcut chat takes is its model, under the id asked for; not on an unknown model or alias
    assert sdk.models.retrieve(f"{MODEL}:nitro").model_dump(exclude_unset=True) == {**listed[MODEL], "id": f"{MODEL}:nitro"}
    for unknown_id in ("openai/gpt-4o-mimi:nitro", f"{ALIAS}:nitro", f"{MODEL}:turbo"):
        assert httpx.get(f"{gateway.base_url}/v1/models/{unknown_id}").status_code == 404


def test_a_key_retrieves_only_the_models_it_lists(emulator: Emulator, gateway_factory: Start, tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = run_cli("hive", ["keys", "create", "--app", "search", "--models", MODEL, "--json"],
                      hive_env(emulator, data))
    assert created.returncode == 0, created.stderr
    gateway = gateway_factory(emulator, data_dir=data)
    refused = httpx.get(f"{gateway.base_url}/v1/models/{MODEL}")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert refused.headers["x-hive-request-id"]
    with OpenAI(base_url=f"{gateway.base_url}/v1", api_key=json.loads(created.stdout)["secret"], max_retries=0) as sdk:
        assert [model.id for model in sdk.models.list()] == [MODEL, "hive/auto", ALIAS, "hive/auto:performance",
                                                             "hive/auto:quality-first"]
        assert sdk.models.retrieve(MODEL).id == MODEL and sdk.models.retrieve(ALIAS).id == ALIAS
        assert sdk.models.retrieve(f"{MODEL}:floor").id == f"{MODEL}:floor"  # a shortcut of a model it may use
        for other in ("mistralai/mistral-nemo", "mistralai/mistral-nemo:floor"):
            with pytest.raises(openai.NotFoundError):  # in the catalog, not for this key
                sdk.models.retrieve(other)


def test_no_message_carries_a_urls_user_and_password() -> None:
    """The last guard of :func:`describe`: whatever made the message, a URL's userinfo is cut from it."""
    from hive_core.errors import NetworkError
    from hive_gateway.errors import describe

    problem = describe(NetworkError(f"broke (POST http://{PROXY_USER}:{PROXY_PASSWORD}@proxy:3128/v1; "
                                    "see https://openrouter.ai/docs, ask ops@example.com)"), "sk-or-v1-unused")
    assert problem.message == "broke (POST http://proxy:3128/v1; see https://openrouter.ai/docs, ask ops@example.com)"
    at_sign = describe(NetworkError(f"at http://{PROXY_USER}:{PROXY_PASSWORD}@x@proxy:3128/v1"), None)  # '@' in it
    assert at_sign.message == "at http://proxy:3128/v1"
