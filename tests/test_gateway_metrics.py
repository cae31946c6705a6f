"""What ``/metrics`` and the access log say a request cost is what its ``usage`` events bill, whatever
way the request ended: an answer, a mid-stream error, a billed partial answer, a client that hung
up, a fallback after a billed failure, or retries that failed with nothing billed (0)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hive_gateway.metrics import CHAT_ROUTE, Metrics
from hive_gateway.observe import Billed, RequestSummary
from tests.plugins.emulator import MODEL
from tests.test_gateway_ops import parse_exposition, scrape_until, value

if TYPE_CHECKING:
    from hive_emulator import Emulator
    from tests.plugins.gateway import GatewayProcess

Start = Callable[..., "GatewayProcess"]
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]

#: a dearer model (cents per thousand tokens), so the access log's six decimals of USD show its cost
PRICEY = "openai/gpt-4o"
#: a model the emulator always fails with a 502: retried, then refused, nothing billed
BROKEN = "mistralai/mistral-large"
HI = [{"role": "user", "content": "hi"}]
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


class Bill:
    """A request's usage events, summed: by request and by model."""

    def __init__(self, gateway: GatewayProcess, n: int) -> None:
        rows = gateway.wait_events("usage", n, "request_id, model, prompt_tokens, completion_tokens, cost_usd")
        assert len(rows) == n, rows
        self.by_request: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        self.by_model: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        for request_id, model, prompt, completion, cost in rows:
            assert cost, "every usage event here is billed by the emulator"
            for total in (self.by_request[request_id], self.by_model[model]):
                total[0] += prompt
                total[1] += completion
                total[2] += cost


def _post(gateway: GatewayProcess, model: str, *, stream: bool, max_tokens: int = 20, **extra: Any) -> str:
    """Send one chat request, read its whole answer; its Hive request id."""
    body = {"model": model, "messages": HI, "max_tokens": max_tokens, "stream": stream, **extra}
    with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions", json=body, timeout=30) as answer:
        answer.read()
        return answer.headers["x-hive-request-id"]


def _hang_up_after_first_token(gateway: GatewayProcess) -> str:
    body = {"model": PRICEY, "messages": HI, "max_tokens": 400, "stream": True}
    with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions", json=body, timeout=30) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: {"):
                return answer.headers["x-hive-request-id"]  # and the connection closes
    raise AssertionError("the stream ended before its first token")


def _scrape(gateway: GatewayProcess, requests: int) -> Samples:
    """``/metrics`` once every one of ``requests`` chat requests has ended (counted)."""

    def ended(samples: Samples) -> bool:
        counted = samples.get("hive_gateway_requests_total", {})
        return sum(n for labels, n in counted.items() if dict(labels)["route"] == CHAT_ROUTE) >= requests

    _, samples = scrape_until(gateway.base_url, ended)
    assert ended(samples)
    return samples


def _assert_metrics_bill(samples: Samples, bill: Bill, unbilled: tuple[str, ...] = ()) -> None:
    """Tokens and cost by model label, as the usage events sum them; nothing under ``unbilled``."""
    labelled = {dict(labels)["model"] for labels in samples.get("hive_gateway_cost_usd_total", {})}
    assert labelled == set(bill.by_model), labelled
    for model, (prompt, completion, cost) in bill.by_model.items():
        assert value(samples, "hive_gateway_tokens_total", model=model, kind="prompt") == prompt, model
        assert value(samples, "hive_gateway_tokens_total", model=model, kind="completion") == completion, model
        assert value(samples, "hive_gateway_cost_usd_total", model=model) == pytest.approx(cost, rel=1e-9), model
    for model in unbilled:
        assert value(samples, "hive_gateway_tokens_total", model=model, kind="prompt") == 0


def _access_log(gateway: GatewayProcess) -> dict[str, dict[str, str]]:
    """The access log's chat lines (the gateway stopped), by request id."""
    lines = {}
    for line in gateway.stderr.splitlines():
        if line.startswith("time=") and f"path={CHAT_ROUTE} " in line:
            fields = dict(_FIELD.findall(line))
            lines[fields["request_id"]] = fields
    return lines


def _assert_logged_bill(line: dict[str, str], billed: list[float] | None) -> None:
    """The line's ``tokens=`` and ``cost=`` are the request's usage events' (``None``: not billed)."""
    if billed is None:
        assert (line["tokens"], line["cost"]) == ("0+0", "-"), line
        return
    prompt, completion, cost = billed
    assert line["tokens"] == f"{prompt}+{completion}", line
    assert float(line["cost"]) == pytest.approx(cost, abs=5e-7), line  # (six decimals)


def test_every_way_a_request_ends_is_counted_as_its_usage_events_bill_it(
        emulator_factory: Callable[..., Emulator], gateway_factory: Start) -> None:
    emu = emulator_factory(faults=[f"{PRICEY}:midstream-error", f"{BROKEN}:502"])
    gateway = gateway_factory(emu, "--no-auth")
    ids = {
        "answered": _post(gateway, MODEL, stream=False),
        "streamed": _post(gateway, MODEL, stream=True),
        "mid-stream error": _post(gateway, PRICEY, stream=True),
        "partial answer": _post(gateway, PRICEY, stream=False),
        "mid-stream error again": _post(gateway, PRICEY, stream=True),
        "refused after retries": _post(gateway, BROKEN, stream=False),
        "stream refused after retries": _post(gateway, BROKEN, stream=True),
    }
    bill = Bill(gateway, 5)
    assert set(bill.by_model) == {MODEL, PRICEY}
    samples = _scrape(gateway, len(ids))
    assert value(samples, "hive_gateway_requests_total", route=CHAT_ROUTE, status="200", error="MidStreamError") == 3
    _assert_metrics_bill(samples, bill, unbilled=(BROKEN,))
    assert gateway.stop() == 0
    log = _access_log(gateway)
    assert set(log) == set(ids.values())
    for case, request_id in ids.items():
        _assert_logged_bill(log[request_id], bill.by_request.get(request_id))
        assert log[request_id]["cost"] != "-" or case.endswith("after retries"), case


def test_a_client_that_hangs_up_mid_stream_is_counted_as_billed(
        emulator_factory: Callable[..., Emulator], gateway_factory: Start) -> None:
    emu = emulator_factory(latency_scale=1.0)  # real pacing: a 400-token answer takes seconds
    gateway = gateway_factory(emu, "--no-auth")
    gone = _hang_up_after_first_token(gateway)
    answered = _post(gateway, PRICEY, stream=True)
    bill = Bill(gateway, 2)
    assert sorted(gateway.wait_events("stream_outcome", 2, "outcome")) == [("cancelled",), ("completed",)]
    samples = _scrape(gateway, 2)
    assert value(samples, "hive_gateway_requests_total", route=CHAT_ROUTE, status="499",
                 error="ClientDisconnected") == 1
    _assert_metrics_bill(samples, bill)
    assert gateway.stop() == 0
    log = _access_log(gateway)
    assert log[gone]["error"] == "ClientDisconnected"
    for request_id in (gone, answered):
        _assert_logged_bill(log[request_id], bill.by_request[request_id])


def test_a_fallback_after_a_billed_partial_answer_counts_each_model_its_own_bill(
        emulator_factory: Callable[..., Emulator], gateway_factory: Start) -> None:
    emu = emulator_factory(faults=[f"{PRICEY}:midstream-error"])
    gateway = gateway_factory(emu, "--no-auth")
    request_id = _post(gateway, PRICEY, stream=False, models=[MODEL])  # billed on PRICEY, answered by MODEL
    bill = Bill(gateway, 2)
    assert set(bill.by_model) == {PRICEY, MODEL}
    _assert_metrics_bill(_scrape(gateway, 1), bill)
    assert gateway.stop() == 0
    _assert_logged_bill(_access_log(gateway)[request_id], bill.by_request[request_id])


def test_metrics_count_a_bill_by_model_under_each_model() -> None:
    """A summary's ``billed``, when a request was billed on several models (or on one it moved on
    from): each model its own part; a refused request's model (anything a client typed) nothing."""
    other = "mistralai/mistral-nemo"
    summary = RequestSummary(method="POST", path=CHAT_ROUTE, status=502, request_id="r", key_id=None, app=None,
                             user=None, model="sk-or-v1-typed-by-a-client", stream=False, latency_s=0.1, ttft_s=None,
                             prompt_tokens=20, completion_tokens=7, cost_usd=0.003, error_class="ServerError",
                             billed=[Billed(MODEL, 8, 5, 0.002), Billed(other, 12, 2, 0.001)])
    metrics = Metrics()
    metrics.finished(summary)
    samples = parse_exposition(metrics.render())
    assert value(samples, "hive_gateway_tokens_total", model=MODEL, kind="prompt") == 8
    assert value(samples, "hive_gateway_tokens_total", model=other, kind="completion") == 2
    assert value(samples, "hive_gateway_cost_usd_total", model=MODEL) == pytest.approx(0.002)
    assert value(samples, "hive_gateway_cost_usd_total", model=other) == pytest.approx(0.001)
    assert "sk-or" not in metrics.render()
