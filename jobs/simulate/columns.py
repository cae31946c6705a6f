"""Turning one simulated day's per-request draws into event tables (see :mod:`jobs.simulate.simulate`).

Everything here is vectorised: per-attempt arrays come from ``np.repeat`` over requests, strings
come from small dictionaries by index (``pyarrow.compute.take``), and UUIDv7 strings are formatted
with numpy byte arithmetic rather than one Python call per event.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hive_core.store.events import EVENT_TYPES, arrow_schema
from jobs.simulate.world import (
    MAX_ATTEMPTS,
    MODELS,
    PERMANENT,
    REASONING_MODELS,
    REQUEST_TYPES,
    TASKS,
    TRANSIENT,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["build_tables", "uuid7_array"]


def uuid7_array(ms: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """UUIDv7 strings for millisecond timestamps ``ms`` (random bits from ``rng``)."""
    import numpy as np
    import pyarrow as pa

    n = len(ms)
    raw = np.empty((n, 16), dtype=np.uint8)
    raw[:, :6] = ms.astype(">u8").view(np.uint8).reshape(n, 8)[:, 2:]
    raw[:, 6:] = rng.integers(0, 256, size=(n, 10), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x70  # version 7
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = digits[raw >> 4]
    hexed[:, 1::2] = digits[raw & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src in ((0, 0), (9, 8), (14, 12), (19, 16), (24, 20)):
        width = {0: 8, 24: 12}.get(dst, 4)
        out[:, dst : dst + width] = hexed[:, src : src + width]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())])


def _strings(values: tuple[str | None, ...], index: np.ndarray) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.take(pa.array(values, pa.string()), pa.array(index))


def _lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    import numpy as np

    return np.asarray(median) * rng.lognormal(0.0, sigma, size=n)


def _table(type_name: str, ts_us: np.ndarray, request_ids: pa.Array, rng: np.random.Generator,
           app: pa.Array, columns: dict[str, Any]) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    n = len(ts_us)
    cls = EVENT_TYPES[type_name]
    schema = arrow_schema(cls)
    envelope = {
        "event_id": uuid7_array(ts_us // 1000, rng),
        "ts": pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "type": pa.repeat(pa.scalar(type_name), n),
        "schema_version": pa.repeat(pa.scalar(cls.SCHEMA_VERSION, pa.int64()), n),
        "request_id": request_ids,
        "app": app,
        "user": pa.nulls(n, pa.string()),
        "tags": pa.ListArray.from_arrays(np.zeros(n + 1, dtype=np.int32), pa.array([], pa.string())),
    }
    data = {**envelope, **columns}
    return pa.Table.from_arrays([pa.array(data[f.name], f.type) if not isinstance(data[f.name], pa.Array)
                                 else data[f.name].cast(f.type) for f in schema], schema=schema)


def build_tables(rng: np.random.Generator, req: dict[str, np.ndarray], n: int) -> dict[str, pa.Table]:
    """The ``api_call``, ``usage`` and ``stream_outcome`` tables of one simulated day."""
    import numpy as np
    import pyarrow as pa

    ids = tuple(m[0] for m in MODELS)
    providers = tuple(m[1] for m in MODELS)
    prompt_price = np.array([float(Decimal(m[2])) for m in MODELS])
    completion_price = np.array([float(Decimal(m[3])) for m in MODELS])
    ttft_median = np.array([m[4] for m in MODELS])
    tps = np.array([m[5] for m in MODELS])
    request_ids = uuid7_array(req["start"] // 1000, rng)
    app_names = ("web", "api", "batch")

    # -- tokens per request ------------------------------------------------------------------
    long_ctx = req["task"] == [t for t, _ in TASKS].index("long-context")
    prompt = np.clip(_lognormal(rng, np.where(long_ctx, 6000.0, 400.0), 1.0, n), 5, 120_000).astype(np.int64)
    has_max = rng.random(n) < 0.8
    max_tokens = np.where(has_max, rng.choice([256, 512, 1024, 2048, 4096], size=n), 8000)
    completion = np.clip(_lognormal(rng, 250.0, 0.9, n), 1, max_tokens).astype(np.int64)
    finish_length = completion >= max_tokens
    is_reasoning = np.isin(req["final_model"], [ids.index(m) for m in REASONING_MODELS])
    reasoning = np.where(is_reasoning, (completion * rng.uniform(0.3, 0.6, n)).astype(np.int64), 0)
    cached = np.where(rng.random(n) < 0.2, (prompt * rng.uniform(0.3, 0.9, n)).astype(np.int64), 0)

    # -- how streamed requests end -----------------------------------------------------------
    streamed, success = req["streamed"], req["success"]
    roll = rng.random(n)
    cancelled = streamed & success & (roll < 0.025)
    truncated = streamed & success & (roll >= 0.025) & (roll < 0.03)
    delivered = np.where(cancelled | truncated, np.maximum((completion * rng.uniform(0.1, 0.9, n)).astype(np.int64), 1), completion)

    # -- attempts ----------------------------------------------------------------------------
    failures, permanent, fallback = req["failures"], req["permanent"], req["fallback"]
    exhausted = failures >= MAX_ATTEMPTS
    n_primary = np.where(permanent, 1, np.where(exhausted, MAX_ATTEMPTS, failures + 1))
    total = n_primary + fallback.astype(np.int64)
    r = np.repeat(np.arange(n), total)
    first = np.repeat(np.cumsum(total) - total, total)
    attempt = np.arange(len(r)) - first + 1
    is_fb = attempt > n_primary[r]
    model = np.where(is_fb, req["fb_model"][r], req["model"][r])
    last = attempt == total[r]
    ok = last & success[r]
    statuses = ("ok", *(t[0] for t in TRANSIENT), *(p[0] for p in PERMANENT), "cancelled", "network")
    http = np.array([200, *(t[1] for t in TRANSIENT), *(p[1] for p in PERMANENT), 200, 200])
    transient_weights = np.array([t[2] for t in TRANSIENT])
    status = 1 + rng.choice(len(TRANSIENT), size=len(r), p=transient_weights / transient_weights.sum())
    perm_kind = 1 + len(TRANSIENT) + rng.choice(len(PERMANENT), size=len(r), p=[0.7, 0.2, 0.1])
    status = np.where(permanent[r], perm_kind, status)
    status = np.where(ok, 0, status)
    status = np.where(ok & cancelled[r], statuses.index("cancelled"), status)
    status = np.where(ok & truncated[r], statuses.index("network"), status)

    ttft = _lognormal(rng, ttft_median[model], 0.5, len(r))
    gen_ms = delivered[r] / (tps[model] * rng.lognormal(0.0, 0.25, len(r))) * 1000
    fail_ms = np.select(
        [status == 1, status == 2, status == 3],
        [_lognormal(rng, 150.0, 0.6, len(r)), _lognormal(rng, 900.0, 0.7, len(r)), rng.uniform(30_000, 60_000, len(r))],
        default=_lognormal(rng, 120.0, 0.5, len(r)),
    )
    succeeded_attempt = ok
    latency = np.where(succeeded_attempt, ttft + gen_ms + rng.uniform(5, 40, len(r)), fail_ms)
    backoff = np.where(last, 0.0, rng.uniform(0, 500.0 * 2.0 ** (attempt - 1)))
    elapsed = np.cumsum(latency + backoff) - (latency + backoff)  # within the whole day; rebase per request
    elapsed -= np.repeat(elapsed[np.cumsum(total) - total], total)
    call_ts = req["start"][r] + (elapsed * 1000).astype(np.int64)
    streamed_r = streamed[r]
    apps = _strings(app_names, req["app"])
    rtype = tuple(t for t, _ in REQUEST_TYPES)
    tasks = tuple(t for t, _ in TASKS)
    import pyarrow.compute as pc

    gen_ids = pc.binary_join_element_wise("gen-", pc.cast(pa.array(call_ts // 1_000_000), pa.string()), "-",
                                          pc.utf8_slice_codeunits(uuid7_array(call_ts // 1000, rng), 24, 36), "")
    has_generation = succeeded_attempt
    api = _table("api_call", call_ts, request_ids.take(pa.array(r)), rng, apps.take(pa.array(r)), {
        "attempt": attempt,
        "model": _strings(ids, model),
        "served_model": pc.if_else(pa.array(has_generation), _strings(ids, model), pa.nulls(len(r), pa.string())),
        "provider": _strings(providers, model),
        "request_type": _strings(rtype, req["request_type"][r]),
        "task_category": _strings(tasks, req["task"][r]),
        "status": _strings(statuses, status),
        "http_status": http[status],
        "latency_ms": np.round(latency, 3),
        "ttft_ms": pa.array(np.round(ttft, 3), mask=~(succeeded_attempt & streamed_r)),
        "streamed": streamed_r,
        "fallback_index": is_fb.astype(np.int64),
        "generation_id": pc.if_else(pa.array(has_generation), gen_ids, pa.nulls(len(r), pa.string())),
        "max_tokens": pa.array(max_tokens[r], mask=~has_max[r]),
    })

    # -- usage and stream outcomes, at the end of each request's final attempt ----------------
    final_idx = np.cumsum(total) - 1
    end_ts = call_ts[final_idx] + latency[final_idx].astype(np.int64) * 1000
    billed_model = req["final_model"]
    prompt_cost = prompt * prompt_price[billed_model]
    completion_cost = delivered * completion_price[billed_model]
    upstream = prompt_cost + completion_cost
    byok = rng.random(n) < 0.03
    cost = np.where(byok, upstream * 0.05, upstream)  # a BYOK call's cost is OpenRouter's fee alone
    estimated = (rng.random(n) < 0.04) | cancelled | truncated
    u = np.flatnonzero(success)
    zeros = np.zeros(len(u), np.int64)
    usage = _table("usage", end_ts[u], request_ids.take(pa.array(u)), rng, apps.take(pa.array(u)), {
        "model": _strings(ids, billed_model[u]),
        "provider": _strings(providers, billed_model[u]),
        "request_type": _strings(rtype, req["request_type"][u]),
        "task_category": _strings(tasks, req["task"][u]),
        "prompt_tokens": prompt[u], "completion_tokens": delivered[u],
        "reasoning_tokens": np.minimum(reasoning, delivered)[u], "cached_tokens": cached[u],
        "cache_write_tokens": zeros, "prompt_audio_tokens": zeros, "prompt_image_tokens": zeros,
        "prompt_video_tokens": zeros, "completion_audio_tokens": zeros, "completion_image_tokens": zeros,
        "web_search_requests": zeros,
        "cost_usd": np.round(cost[u], 10),
        "cost_source": _strings(("billed", "estimated"), estimated[u].astype(np.int64)),
        "is_byok": byok[u],
        # the provider's price, reported with a billed cost only (an estimate had no usage object)
        "upstream_cost_usd": pa.array(np.round(upstream[u], 10), mask=estimated[u]),
        "upstream_prompt_cost_usd": pa.array(np.round(prompt_cost[u], 10), mask=estimated[u]),
        "upstream_completion_cost_usd": pa.array(np.round(completion_cost[u], 10), mask=estimated[u]),
        "generation_id": gen_ids.take(pa.array(final_idx[u])),
        "supersedes": pa.nulls(len(u), pa.string()),
        "key_id": pa.nulls(len(u), pa.string()),  # the simulated traffic comes with no gateway key
    })

    s = np.flatnonzero(streamed)
    final_status = status[final_idx]
    outcome_names = ("completed", "cancelled", "truncated", "timeout", "errored")
    outcome = np.select([cancelled, truncated, success, final_status == 3], [1, 2, 0, 3], default=4)
    first_ttft = ttft[final_idx]
    duration = latency[final_idx] + elapsed[final_idx]
    got_tokens = success
    stream = _table("stream_outcome", end_ts[s], request_ids.take(pa.array(s)), rng, apps.take(pa.array(s)), {
        "model": _strings(ids, billed_model[s]),
        "request_type": _strings(rtype, req["request_type"][s]),
        "task_category": _strings(tasks, req["task"][s]),
        "outcome": _strings(outcome_names, outcome[s]),
        "chunks": np.where(got_tokens, delivered // 3 + 2, 0)[s],
        "completion_tokens": np.where(got_tokens, delivered, 0)[s],
        "ttft_ms": pa.array(np.round(first_ttft, 3)[s], mask=~got_tokens[s]),
        "duration_ms": np.round(duration, 3)[s],
        "tokens_per_s": pa.array(np.round(delivered / np.maximum(latency[final_idx] - first_ttft, 1) * 1000, 3)[s],
                                 mask=~got_tokens[s]),
        "finish_reason": pa.array(np.where(finish_length, "length", "stop")[s], mask=~(success & ~cancelled & ~truncated)[s]),
    })
    return {"api_call": api, "usage": usage, "stream_outcome": stream}
