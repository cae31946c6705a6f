"""``POST /chat/completions``: validation, admission, credit check, faults, the answer streamed or whole.

In order: a malformed request gets 400; a capability the model lacks (tools, images) 404 and a
prompt beyond its context 400 (:mod:`hive_emulator.admission`); a key out of credit 402; then the
fault plan draws. The answer is free text, or the shape the request fixed (tool calls, JSON:
:mod:`hive_emulator.answers`), or a judge's score (:mod:`hive_emulator.judge`); every fault applies to all of them alike (a streamed tool call is
cut mid-arguments by ``disconnect`` or ``midstream-error`` like any text).

Streams are paced against a schedule (keep-alive comments during TTFT, then one token per event
at the drawn rate). Events due within a millisecond of each other go out in one write, so at
``latency_scale`` 0 a whole stream is one write and costs microseconds per token.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from hive_emulator.admission import Refusal, admit, over_context
from hive_emulator.answers import ShapedAnswer, ShapeError, fragments, shape_answer
from hive_emulator.billing import Generation
from hive_emulator.bodies import DONE, KEEPALIVE, ChunkFormat, completion_body, generation_id, usage_json
from hive_emulator.catalog import ModelInfo
from hive_emulator.generation import CompletionPlan, count_tool_tokens, plan_completion
from hive_emulator.http import ClientGone, Exchange, Request
from hive_emulator.judge import judge_verdict, quality_tag
from hive_emulator.state import EmulatorState, send_error

__all__ = ["chat_completions"]

#: the ``timeout`` fault stays silent this long (unscaled: the client's read timeout must fire first)
TIMEOUT_HANG_S = 600.0
#: the ``slow`` fault's keep-alive phase before the usual TTFT (scaled), and its comment count
SLOW_PHASE_S = 10.0
SLOW_COMMENTS = 20
#: ``Retry-After`` on 429/503 (scaled, so fast tests wait fractions of a second)
RETRY_AFTER_S = 2.0
#: chance of a keep-alive comment between two token events (real streams show a few)
MIDSTREAM_COMMENT_RATE = 0.03
#: waits shorter than this are not slept: the events go out together
MIN_SLEEP_S = 0.001

_UPSTREAM_ERROR = {"code": 502, "message": "Provider returned error"}


class _Pacer:
    """Buffers events and writes them when the schedule says it is time; counts tokens sent."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._buffer: list[bytes] = []
        self._pending_tokens = 0
        self.sent_tokens = 0

    def add(self, data: bytes, tokens: int = 0) -> None:
        self._buffer.append(data)
        self._pending_tokens += tokens

    async def at(self, offset_s: float) -> None:
        """Wait until ``offset_s`` after the start, flushing what is buffered first."""
        delay = offset_s - (self._loop.time() - self._start)
        if delay > MIN_SLEEP_S:
            await self.flush()
            await asyncio.sleep(delay)

    async def flush(self) -> None:
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            await self._exchange.write(data)
        self.sent_tokens += self._pending_tokens
        self._pending_tokens = 0


def _retry_after(scale: float) -> str:
    value = RETRY_AFTER_S * scale
    return str(int(value)) if value == int(value) else f"{value:.3f}".rstrip("0")


def _http_fault(state: EmulatorState, exchange: Exchange, kind: str, key: str, model: ModelInfo) -> None:
    retry = [("Retry-After", _retry_after(state.latency_scale))]
    if kind == "429":
        raw = (f"{model.id} is temporarily rate-limited upstream. Please retry shortly, or add your own "
               "key to accumulate your rate limits: https://openrouter.ai/settings/integrations")
        meta = {"provider_name": model.provider, "raw": raw}
        send_error(exchange, 429, "Provider returned error", key=key, metadata=meta, headers=retry)
    elif kind == "502":
        meta = {"provider_name": model.provider, "raw": "upstream connect error or disconnect/reset before headers"}
        send_error(exchange, 502, "Provider returned error", key=key, metadata=meta)
    elif kind == "503":
        send_error(exchange, 503, "No allowed providers are available for the selected model.", key=key,
                   metadata={"provider_name": None}, headers=retry)
    else:
        send_error(exchange, 500, "Internal Server Error", key=key)


def _wants_reasoning(payload: dict[str, Any]) -> bool:
    """The request asks a thinking model to think (``reasoning``, ``include_reasoning``, ``reasoning_effort``)."""
    reasoning = payload.get("reasoning")
    if isinstance(reasoning, dict):
        return reasoning.get("enabled") is not False and reasoning.get("effort") != "none"
    return payload.get("include_reasoning") is True or payload.get("reasoning_effort") not in (None, "none")


def _validate(body: bytes, state: EmulatorState) -> tuple[dict[str, Any], ModelInfo] | str:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "Invalid JSON in request body"
    if not isinstance(payload, dict):
        return "Request body must be a JSON object"
    model_id = payload.get("model")
    if not isinstance(model_id, str) or not model_id:
        return "No model provided: set \"model\""
    model = state.catalog.get(model_id)
    if model is None:
        return f"{model_id} is not a valid model ID"
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return 'Input required: specify "prompt" or "messages"'
    max_tokens = payload.get("max_tokens", payload.get("max_completion_tokens"))
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        return "max_tokens must be a positive integer"
    return payload, model


def _shape(state: EmulatorState, payload: dict[str, Any], model: ModelInfo,
           served: ModelInfo) -> ShapedAnswer | Refusal | None:
    """The answer's fixed shape, or why the request is refused before any answer."""
    refusal = admit(payload, model)
    if refusal is not None:
        return refusal
    verdict = judge_verdict(payload.get("messages"), state.seed)
    if verdict is not None:
        return ShapedAnswer(tuple(fragments(verdict)))
    fixed = {k: payload.get(k) for k in ("messages", "tools", "tool_choice", "parallel_tool_calls")}
    # max_tokens is left out: a lower limit cuts the same JSON short, as it does a real answer
    rng = random.Random(f"{state.seed}|shape|{served.id}|{fixed!r}")
    response_format = payload.get("response_format") if "response_format" in model.parameters else None
    try:
        return shape_answer({**fixed, "response_format": response_format}, served.provider, rng)
    except ShapeError as exc:
        return Refusal(400, str(exc), "bad_request")


async def chat_completions(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    """Answer one chat completion request (see the module docstring)."""
    key = state.authenticate(request, exchange)
    if key is None:
        state.ledger.count("-", "unauthorized")
        return
    checked = _validate(request.body, state)
    if isinstance(checked, str):
        send_error(exchange, 400, checked, key=key)
        state.ledger.count("-", "bad_request")
        return
    payload, model = checked
    max_tokens: int | None = payload.get("max_tokens", payload.get("max_completion_tokens"))
    served = state.catalog.resolve(model)
    shape = _shape(state, payload, model, served)
    if isinstance(shape, Refusal):
        send_error(exchange, shape.status, shape.message, key=key)
        state.ledger.count(model.id, shape.outcome)
        return
    number = state.next_request_number()
    plan = plan_completion(served, payload["messages"], max_tokens=max_tokens,
                           reasoning=served.reasoning and _wants_reasoning(payload), seed=state.seed,
                           request_number=number, latency_scale=state.latency_scale,
                           tools=payload.get("tools"), shape=shape)
    quality = state.quality.get(served.id)
    if quality is not None and shape is None and len(plan.pieces) > plan.reasoning_tokens:
        # the answer's first token carries the model's set quality, for the judge (hive_emulator.judge)
        plan.pieces[plan.reasoning_tokens] = quality_tag(quality)
    too_long = over_context(model, plan.prompt_tokens, count_tool_tokens(payload.get("tools")), max_tokens)
    if too_long is not None:
        send_error(exchange, too_long.status, too_long.message, key=key)
        state.ledger.count(model.id, too_long.outcome)
        return
    requested = max_tokens or served.max_completion_tokens or max(
        (served.context_length or 4096) - plan.prompt_tokens, 1)
    refusal = state.ledger.refuse(key, served, plan.prompt_tokens, requested)
    if refusal is not None:
        send_error(exchange, 402, refusal, key=key, metadata={"provider_name": None})
        state.ledger.count(model.id, "insufficient_credits")
        return
    fault = state.faults.draw(model.id)
    if fault in ("429", "500", "502", "503"):
        _http_fault(state, exchange, fault, key, served)
        state.ledger.count(model.id, fault)
        return
    if fault == "timeout":
        state.ledger.count(model.id, fault)
        await exchange.wait_closed_by_client(TIMEOUT_HANG_S)
        exchange.close()
        return
    created = int(time.time())
    user = payload.get("user")
    gen = Generation(
        id=generation_id(state.seed, number, created), model=served,
        router=model.id if model.is_router else None, streamed=bool(payload.get("stream")), key=key,
        prompt_tokens=plan.prompt_tokens, user=user if isinstance(user, str) else None,
        referer=request.headers.get("http-referer"), user_agent=request.headers.get("user-agent"),
    )
    if gen.streamed:
        try:
            await _stream(state, exchange, gen, plan, fault, created, number)
        except ClientGone:
            state.ledger.count(model.id, "cancelled")
            raise
    else:
        await _whole(state, exchange, gen, plan, fault, created)
    state.ledger.count(model.id, fault or "ok")


async def _stream(state: EmulatorState, exchange: Exchange, gen: Generation, plan: CompletionPlan,
                  fault: str | None, created: int, number: int) -> None:
    served = gen.model
    fmt = ChunkFormat(gen.id, served, created)
    exchange.start_stream(200, content_type="text/event-stream",
                          headers=[("Cache-Control", "no-cache"), ("X-Generation-Id", gen.id)])
    pacer = _Pacer(exchange)
    rng = random.Random(f"{state.seed}|stream|{number}")
    cut = max(1, plan.completion_tokens // 2)
    calls = plan.shape if plan.calls_tools else None
    try:
        t = 0.0
        if fault == "slow":
            step = SLOW_PHASE_S * state.latency_scale / SLOW_COMMENTS
            for _ in range(SLOW_COMMENTS):
                await pacer.at(t)
                pacer.add(KEEPALIVE)
                t += step
        for i in range(plan.comments_before):
            await pacer.at(t + plan.ttft_s * i / plan.comments_before)
            pacer.add(KEEPALIVE)
        t += plan.ttft_s
        for i, piece in enumerate(plan.pieces):
            if i == cut and fault in ("disconnect", "midstream-error"):
                break
            await pacer.at(t + i * plan.token_interval_s)
            if i == 0:
                gen.first_token = time.monotonic()
            elif rng.random() < MIDSTREAM_COMMENT_RATE:
                pacer.add(KEEPALIVE)
            if i < plan.reasoning_tokens:
                pacer.add(fmt.reasoning(piece), tokens=1)
            elif calls is not None:
                pacer.add(fmt.tool_call(calls.delta(i - plan.reasoning_tokens)), tokens=1)
            else:
                pacer.add(fmt.content(piece), tokens=1)
            if i == cut - 1 and fault == "malformed":  # a data line cut off mid-JSON
                pacer.add(b'data: {"id":"%s","choices":[{"index":0,"delta":{"content":"\n\n' % gen.id.encode())
        if fault == "disconnect":
            await pacer.flush()
            gen.finish(pacer.sent_tokens, None, None, plan.reasoning_in(pacer.sent_tokens))
            state.ledger.record(gen)
            exchange.close()
            return
        if fault == "midstream-error":
            usage = usage_json(served, plan.prompt_tokens, cut, plan.reasoning_in(cut))
            pacer.add(fmt.event(None, None, error=dict(_UPSTREAM_ERROR), usage=usage))
            finish, native = "error", None
        else:
            finish, native = plan.finish_reason, plan.native_finish_reason
            usage = usage_json(served, plan.prompt_tokens, plan.completion_tokens, plan.reasoning_tokens)
            pacer.add(fmt.event(finish, native))
            # 2026 traffic: the usage chunk has one choice, empty delta, finish_reason repeated
            pacer.add(fmt.event(finish, native, usage=usage))
        pacer.add(DONE)
        await pacer.flush()
    except ClientGone:
        gen.cancelled = True
        gen.finish(pacer.sent_tokens, None, None, plan.reasoning_in(pacer.sent_tokens))
        state.ledger.record(gen)
        raise
    gen.finish(pacer.sent_tokens, finish, native, plan.reasoning_in(pacer.sent_tokens))
    state.ledger.record(gen)
    await exchange.end_stream()


async def _whole(state: EmulatorState, exchange: Exchange, gen: Generation, plan: CompletionPlan,
                 fault: str | None, created: int) -> None:
    served = gen.model
    delay = plan.ttft_s + plan.completion_tokens * plan.token_interval_s
    if fault == "slow":
        delay += SLOW_PHASE_S * state.latency_scale
    if delay > 0:
        await asyncio.sleep(delay)
    gen.first_token = time.monotonic() - plan.completion_tokens * plan.token_interval_s
    n, finish = plan.completion_tokens, plan.finish_reason
    native: str | None = plan.native_finish_reason
    error: dict[str, Any] | None = None
    if fault == "midstream-error":
        # a 200 whose choice failed after partial output
        n, finish, native = max(1, n // 2), "error", None
        error = {**_UPSTREAM_ERROR, "metadata": {"provider_name": served.provider, "raw": "stream interrupted"}}
    gen.finish(n, finish, native, plan.reasoning_in(n))
    state.ledger.record(gen)  # non-streaming generations are billed in full, even when the answer is lost
    if fault == "disconnect":
        exchange.close()
        return
    usage = usage_json(served, plan.prompt_tokens, n, plan.reasoning_in(n))
    body = completion_body(gen.id, served, created, content=plan.text(n), reasoning=plan.reasoning_text(n),
                           finish_reason=finish, native_finish_reason=native, usage=usage, error=error,
                           tool_calls=plan.tool_calls(n))
    if fault == "malformed":
        body = body[: len(body) // 2]
    exchange.send(200, body, headers=[("X-Generation-Id", gen.id)])
