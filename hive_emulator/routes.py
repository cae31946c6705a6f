"""Request dispatch and every endpoint except chat completions.

Served under ``/api/v1``: ``GET /models`` (the catalog bytes as-is; a 5xx with the fault
``/models:503``), ``GET /key`` and the legacy
``GET /auth/key``, ``POST /chat/completions``, ``GET /generation?id=``. Test control, also at the
root: ``GET|POST /_emulator/faults``, ``GET|POST /_emulator/quality`` (answer quality per model:
:mod:`hive_emulator.judge`), ``GET /_emulator/stats``, ``POST /_emulator/reset``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from hive_emulator.bodies import dumps, error_body, user_id_for
from hive_emulator.chat import chat_completions
from hive_emulator.http import Exchange, Request
from hive_emulator.judge import validate_qualities
from hive_emulator.state import EmulatorState, mask_key, send_error

__all__ = ["API_PREFIX", "dispatch"]

API_PREFIX = "/api/v1"

Endpoint = Callable[[EmulatorState, Request, Exchange], Awaitable[None]]


#: the fault "model" that makes ``GET /models`` fail (``--fault /models:503``): only a rule naming it
#: exactly applies (``*`` rules are for completions), and it draws nothing, so completions' faults
#: stay as seeded
MODELS_FAULT = "/models"


async def _models(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    rule = next((r for r in state.faults.rules if r.model == MODELS_FAULT and r.rate > 0), None)
    if rule is not None and rule.kind in {"500", "502", "503"}:
        send_error(exchange, int(rule.kind), "Internal Server Error" if rule.kind == "500" else "Service unavailable")
        return
    exchange.send(200, state.catalog.raw)


async def _key(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    key = state.authenticate(request, exchange)
    if key is None:
        return
    usage = float(state.ledger.usage_of(key))
    limit = state.ledger.credit_limit
    data = {
        "label": mask_key(key),
        "limit": None if limit is None else float(limit),
        "limit_reset": None,
        "limit_remaining": None if limit is None else float(limit) - usage,
        "include_byok_in_limit": False,
        "usage": usage,
        "usage_daily": usage,
        "usage_weekly": usage,
        "usage_monthly": usage,
        "byok_usage": 0,
        "byok_usage_daily": 0,
        "byok_usage_weekly": 0,
        "byok_usage_monthly": 0,
        "is_free_tier": False,
        "is_management_key": False,
        "is_provisioning_key": False,
        "creator_user_id": user_id_for(key),
        "expires_at": None,
        "rate_limit": {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."},
    }
    exchange.send(200, dumps({"data": data}))


async def _generation(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    key = state.authenticate(request, exchange)
    if key is None:
        return
    gen_id = request.query.get("id", "")
    if not gen_id:
        send_error(exchange, 400, "Missing required query parameter: id", key=key)
        return
    record = state.ledger.generations.get(gen_id)
    if record is None:
        send_error(exchange, 404, f"Generation {gen_id} not found", key=key)
        return
    exchange.send(200, dumps({"data": record.as_json()}))


async def _chat(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    await chat_completions(state, request, exchange)


async def _get_faults(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    exchange.send(200, dumps([rule.as_dict() for rule in state.faults.rules]))


async def _set_faults(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    try:
        rules = json.loads(request.body or b"[]")
        if not isinstance(rules, list):
            raise ValueError("expected a JSON list of {model, kind, rate}")
        state.faults.replace(rules)
    except (ValueError, KeyError, TypeError) as exc:
        exchange.send(400, error_body(400, f"bad fault list: {exc}"))
        return
    await _get_faults(state, request, exchange)


async def _get_quality(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    exchange.send(200, dumps(state.quality))


async def _set_quality(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    try:
        raw = json.loads(request.body or b"{}")
        if not isinstance(raw, dict):
            raise ValueError("expected a JSON object {model: quality}")
        state.quality = validate_qualities(raw)
    except ValueError as exc:
        exchange.send(400, error_body(400, f"bad quality map: {exc}"))
        return
    await _get_quality(state, request, exchange)


async def _stats(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    exchange.send(200, dumps(state.ledger.stats()))


async def _reset(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    state.reset()
    exchange.send(200, b'{"ok":true}')


_CONTROL: dict[str, dict[str, Endpoint]] = {
    "/_emulator/faults": {"GET": _get_faults, "POST": _set_faults},
    "/_emulator/quality": {"GET": _get_quality, "POST": _set_quality},
    "/_emulator/stats": {"GET": _stats},
    "/_emulator/reset": {"POST": _reset},
}

ROUTES: dict[str, dict[str, Endpoint]] = {
    API_PREFIX + "/models": {"GET": _models},
    API_PREFIX + "/key": {"GET": _key},
    API_PREFIX + "/auth/key": {"GET": _key},
    API_PREFIX + "/chat/completions": {"POST": _chat},
    API_PREFIX + "/generation": {"GET": _generation},
    **_CONTROL,
    **{API_PREFIX + path: methods for path, methods in _CONTROL.items()},
}


async def dispatch(state: EmulatorState, request: Request, exchange: Exchange) -> None:
    """Route one request: 404 for unknown paths, 405 (with ``Allow``) for a wrong method."""
    methods = ROUTES.get(request.path.rstrip("/") or "/")
    if methods is None:
        exchange.send(404, error_body(404, f"Not Found: {request.path}"))
        return
    endpoint = methods.get(request.method)
    if endpoint is None:
        allow = ", ".join(sorted(methods))
        exchange.send(405, error_body(405, f"Method {request.method} not allowed; use {allow}"),
                      headers=[("Allow", allow)])
        return
    await endpoint(state, request, exchange)
