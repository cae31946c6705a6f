"""The gateway's speed beside LiteLLM's proxy, in one run, on the same emulator (issue 14, "Speed").

Four targets take the same requests from the same load generator: the emulator itself (``direct``,
the floor every added latency is measured from), ``hive gateway --no-auth``, a minimal aiohttp
passthrough (``floor``, :mod:`bench.passthrough`: what any Python gateway on this stack pays at
least; the gateway's CPU is also given as a ratio to it, which a loaded machine moves much less than
the absolute figure) and LiteLLM's proxy (1.108.7, one worker, no database, installed on first use
into ``bench/.venv-litellm``, never into ``.venv``). The emulator runs as its own process with no artificial latency, and so does the load
generator (:mod:`bench.serving`, an aiohttp client). Latencies at concurrency 1 come from interleaved rounds
(direct, gateway, LiteLLM, again), so a noisy moment of the machine hits all three alike.

Gateway CPU is read from ``/proc/<pid>/stat`` (utime + stime of the process and its children) around
the measured requests only; per JSON request it is the median of ``CPU_ROUNDS`` runs alternated
with the floor's, since one run moves by 15% from the next. Beside it, the gateway's and the floor's
user-space instructions per JSON request are counted under valgrind's callgrind
(:func:`instructions_per_request`): a figure the machine's load does not move, for changes too small
to see in timed runs. If a target cannot run (the gateway not landed yet, LiteLLM not installable
offline, valgrind missing) its figures say so and the rest is still measured.

    .venv/bin/python -m bench gateway
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.common import Figure
from bench.serving import START_TIMEOUT_S, Run, Target, free_port, percentile, process, rss_mb, wait_ok
from bench.serving import load as load_body

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CATALOG = ROOT.parent / "shared" / "data" / "openrouter" / "models-2026-06.json"
LITELLM_VERSION = "1.108.7"
LITELLM_VENV = HERE / ".venv-litellm"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
MODEL = "openai/gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Say hello in one short sentence."}]
JSON_BODY = {"model": MODEL, "messages": MESSAGES, "max_tokens": 32}
STREAM_BODY = {**JSON_BODY, "stream": True, "stream_options": {"include_usage": True}}
ROUNDS = 3
#: rounds of the CPU figure at concurrency 32: one run of 1,500 requests moves by 15% from one run to
#: the next on this machine (measured: 460-633 us per request over 8 runs of one gateway process), so
#: the gateway and the floor alternate and the figure is the median, its ratio the median per round
CPU_ROUNDS = 5


@dataclass(frozen=True)
class Plan:
    """Requests per scenario for one target (LiteLLM gets fewer: it is two orders of magnitude slower)."""

    c1_json: int
    c1_stream: int
    c32_json: int
    c32_stream: int


FULL = Plan(c1_json=150, c1_stream=90, c32_json=1500, c32_stream=400)
PEER = Plan(c1_json=60, c1_stream=30, c32_json=400, c32_stream=120)


def load(target: Target, *, stream: bool, concurrency: int, n: int) -> Run:
    """The bench's request (streamed or not) ``n`` times at ``concurrency``."""
    return load_body(target, STREAM_BODY if stream else JSON_BODY, stream=stream, concurrency=concurrency, n=n)



def start_emulator(stack: ExitStack, work: Path) -> Target:
    from hive_emulator import DEFAULT_TEST_KEY

    port = free_port()
    proc = stack.enter_context(process(
        [str(ROOT / ".venv" / "bin" / "hive-emulator"), "--catalog", str(CATALOG), "--port", str(port),
         "--latency-scale", "0", "--seed", "1"], log=work / "emulator.log"))
    base = f"http://127.0.0.1:{port}/api/v1"
    wait_ok(f"{base}/models", proc)
    return Target("direct", f"{base}/chat/completions", {"Authorization": f"Bearer {DEFAULT_TEST_KEY}",
                                                          "Content-Type": "application/json"}, proc.pid)


@dataclass
class Started:
    target: Target
    startup_s: float
    proc: subprocess.Popen[bytes]


#: a target's start function (``start_gateway``, ``start_floor``)
Starter = Callable[..., Started]


def start_gateway(stack: ExitStack, work: Path, emulator: Target, *, under: Sequence[str] = (),
                  name: str = "gateway") -> Started:
    """``hive gateway --no-auth`` in front of the emulator, on a fresh data directory (``under``: a
    command it runs under, such as valgrind)."""
    port = free_port()
    api_key = emulator.headers["Authorization"].removeprefix("Bearer ")
    env = {**os.environ, "HIVE_DATA_DIR": str(work / name), "OPENROUTER_API_KEY": api_key,
           "OPENROUTER_BASE_URL": emulator.url.removesuffix("/chat/completions")}
    hive = str(ROOT / ".venv" / "bin" / "hive")
    subprocess.run([hive, "models", "sync"], env=env, cwd=ROOT, check=True, capture_output=True)
    began = time.perf_counter()
    proc = stack.enter_context(process([*under, PYTHON, hive, "gateway", "--no-auth", "--host", "127.0.0.1",
                                        "--port", str(port)], env=env, log=work / f"{name}.log"))
    wait_ok(f"http://127.0.0.1:{port}/healthz", proc, timeout_s=START_TIMEOUT_S * (10 if under else 1))
    startup = time.perf_counter() - began
    return Started(Target(name, f"http://127.0.0.1:{port}/v1/chat/completions",
                          {"Content-Type": "application/json"}, proc.pid), startup, proc)


def start_floor(stack: ExitStack, work: Path, emulator: Target, *, under: Sequence[str] = (),
                name: str = "floor") -> Started:
    """The aiohttp passthrough (:mod:`bench.passthrough`) in front of the emulator."""
    port = free_port()
    env = {**os.environ, "OPENROUTER_API_KEY": emulator.headers["Authorization"].removeprefix("Bearer ")}
    began = time.perf_counter()
    proc = stack.enter_context(process(
        [*under, PYTHON, "-m", "bench.passthrough", "--port", str(port),
         "--upstream", emulator.url.removesuffix("/chat/completions")], env=env, log=work / f"{name}.log"))
    wait_ok(f"http://127.0.0.1:{port}/healthz", proc, timeout_s=START_TIMEOUT_S * (10 if under else 1))
    return Started(Target(name, f"http://127.0.0.1:{port}/v1/chat/completions",
                          {"Content-Type": "application/json"}, proc.pid), time.perf_counter() - began, proc)


#: valgrind's instruction counter, counting only between ``callgrind_control --instr=on`` and ``off``
CALLGRIND = ("valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null")
#: JSON requests at concurrency 32 counted, after a warm-up that is not
COUNTED, COUNT_WARMUP = 2000, 300


def instructions_per_request(stack: ExitStack, work: Path, emulator: Target, start: Starter, name: str) -> float:
    """User-space instructions per JSON request at concurrency 32 of what ``start`` starts (its log:
    ``<name>-counted.log``), counted by callgrind around the measured requests only. Unlike CPU time
    they do not move with the machine's load (two runs agree within 0.2%); they leave out the
    kernel's work and, the target running ~50x slower, timing effects (how many answers one turn of
    the loop gathers)."""
    name = f"{name}-counted"
    started = start(stack, work, emulator, under=CALLGRIND, name=name)
    target, proc = started.target, started.proc
    load(target, stream=False, concurrency=32, n=COUNT_WARMUP)
    subprocess.run(["callgrind_control", "--instr=on", str(proc.pid)], check=True, capture_output=True)
    run = load(target, stream=False, concurrency=32, n=COUNTED)
    subprocess.run(["callgrind_control", "--instr=off", str(proc.pid)], check=True, capture_output=True)
    proc.terminate()
    proc.wait(timeout=300)
    if run.errors:
        raise RuntimeError(f"{run.errors} counted requests failed, e.g. {run.error_sample[0]}")
    counted = re.findall(r"I\s+refs:\s+([\d,]+)", (work / f"{name}.log").read_text(errors="replace"))
    if not counted:
        raise RuntimeError(f"callgrind reported no count (see {name}.log)")
    return int(counted[-1].replace(",", "")) / COUNTED


def litellm_python() -> Path:
    """The LiteLLM venv's python, created with ``pip install 'litellm[proxy]==1.108.7'`` on first use."""
    python = LITELLM_VENV / "bin" / "python"
    marker = LITELLM_VENV / f".installed-{LITELLM_VERSION}"
    if not marker.exists():
        shutil.rmtree(LITELLM_VENV, ignore_errors=True)
        subprocess.run(["python3", "-m", "venv", str(LITELLM_VENV)], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
                       check=True, capture_output=True)
        marker.touch()
    return python


def start_litellm(stack: ExitStack, work: Path, emulator: Target) -> Started:
    """LiteLLM's proxy, one worker, no database, routing MODEL to the emulator as OpenRouter."""
    litellm_python()
    api_key = emulator.headers["Authorization"].removeprefix("Bearer ")
    config = work / "litellm.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": f"openrouter/{MODEL}", "api_base": emulator.url.removesuffix("/chat/completions"),
            "api_key": api_key}}],
        "litellm_settings": {"telemetry": False},
    }))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "LITELLM_MASTER_KEY")}
    # no master key, like `hive gateway --no-auth`: 1.108 refuses that unless told it is local development
    env.update(LITELLM_TELEMETRY="False", LITELLM_LOG="ERROR", LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY="true")
    began = time.perf_counter()
    proc = stack.enter_context(process(
        [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", "1"], env=env, log=work / "litellm.log"))
    wait_ok(f"http://127.0.0.1:{port}/health/liveliness", proc)
    startup = time.perf_counter() - began
    return Started(Target("litellm", f"http://127.0.0.1:{port}/v1/chat/completions",
                          {"Content-Type": "application/json"}, proc.pid), startup, proc)


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Measured:
    """What one target did, scenario by scenario (seconds; CPU in seconds of the target's processes)."""

    runs: dict[str, list[Run]]

    def pooled(self, scenario: str, what: str = "latencies") -> list[float]:
        return [x for run in self.runs.get(scenario, []) for x in getattr(run, what)]

    def run(self, scenario: str) -> Run:
        return self.runs[scenario][0]


def _plan(target: Target) -> Plan:
    return PEER if target.name == "litellm" else FULL


def measure(targets: Sequence[Target]) -> dict[str, Measured]:
    """Every scenario on every target: concurrency 1 in interleaved rounds, then concurrency 32."""
    out = {t.name: Measured({}) for t in targets}
    for target in targets:  # warm-up: connections, caches, lazy imports
        load(target, stream=False, concurrency=4, n=40)
        load(target, stream=True, concurrency=4, n=20)
    for _ in range(ROUNDS):
        for target in targets:
            plan = _plan(target)
            out[target.name].runs.setdefault("c1_json", []).append(
                load(target, stream=False, concurrency=1, n=plan.c1_json // ROUNDS))
            out[target.name].runs.setdefault("c1_stream", []).append(
                load(target, stream=True, concurrency=1, n=plan.c1_stream // ROUNDS))
    for target in targets:
        plan = _plan(target)
        out[target.name].runs["c32_json"] = [load(target, stream=False, concurrency=32, n=plan.c32_json)]
        out[target.name].runs["c32_stream"] = [load(target, stream=True, concurrency=32, n=plan.c32_stream)]
    paired = [t for t in targets if t.name in ("gateway", "floor")]
    if len(paired) == 2:
        for i in range(CPU_ROUNDS):
            for target in paired if i % 2 == 0 else paired[::-1]:
                out[target.name].runs.setdefault("cpu_json", []).append(
                    load(target, stream=False, concurrency=32, n=FULL.c32_json))
    return out


def cpu_per_request_ms(run: Run) -> float:
    """The target's CPU per answered request of one run, in milliseconds."""
    return run.cpu_s / max(len(run.latencies), 1) * 1000


def _errors(measured: Measured) -> str:
    runs = [r for rs in measured.runs.values() for r in rs]
    failed = sum(r.errors for r in runs)
    if not failed:
        return ""
    sample = next(s for r in runs for s in r.error_sample)
    return f"; {failed} requests FAILED, e.g. {sample}"


NAN = float("nan")


def _to_floor(values: dict[str, float], unit: str, digits: int) -> str:
    """The gateway's figure beside the aiohttp passthrough's of the same run (the targets are ~1.5x it)."""
    if "floor" not in values:
        return ""
    return (f"; floor (aiohttp passthrough, same run) {values['floor']:.{digits}f} {unit}, "
            f"gateway = {values['gateway'] / values['floor']:.2f}x floor")


def figures(results: dict[str, Measured], started: dict[str, Started], missing: dict[str, str],
            counted: dict[str, float] | None = None, uncounted: str = "") -> list[Figure]:
    """The table's rows: ours (the gateway) with LiteLLM beside it, both over the same direct floor."""
    direct = results["direct"]
    ours, peer, floor_run = results.get("gateway"), results.get("litellm"), results.get("floor")
    peer_name = "LiteLLM proxy " + LITELLM_VERSION
    why = "; ".join(f"{name} not measured: {reason}" for name, reason in missing.items())
    rows: list[Figure] = []

    def added(measured: Measured | None, scenario: str, what: str, q: float) -> float:
        if measured is None:
            return NAN
        return (percentile(measured.pooled(scenario, what), q) - percentile(direct.pooled(scenario, what), q)) * 1000

    def row(name: str, value: float, unit: str, target: str, ok: bool | None, peer_value: float | None,
            note: str) -> None:
        ratio = None
        if peer_value is not None and value == value and peer_value == peer_value and peer_value != 0 and value != 0:
            ratio = value / peer_value
        rows.append(Figure(name, value, unit, target, ok if value == value else None,
                           peer=peer_name if peer_value is not None else None, peer_value=peer_value, ratio=ratio,
                           note="; ".join(n for n in (note, "" if rows else why) if n)))

    for conc in (1, 32):
        for scenario, what, label, limit in (("json", "latencies", "JSON", 1.0 if conc == 1 else None),
                                             ("stream", "firsts", "stream first byte", 2.0 if conc == 1 else None),
                                             ("stream", "latencies", "stream last byte", None)):
            key = f"c{conc}_{scenario}"
            p50, p99 = added(ours, key, what, 0.5), added(ours, key, what, 0.99)
            peer50, peer99 = added(peer, key, what, 0.5), added(peer, key, what, 0.99)
            floor = percentile(direct.pooled(key, what), 0.5) * 1000
            minimal = f"; floor (aiohttp passthrough) added P50 {added(floor_run, key, what, 0.5):.2f} ms" \
                if floor_run else ""
            row(f"gateway added P50, {label}, c={conc}", p50, "ms",
                "-" if limit is None else f"<= {limit:g} ms", None if limit is None else p50 <= limit,
                peer50 if peer else None,
                f"added P99 {p99:.2f} ms (LiteLLM {peer99:.1f} ms); direct P50 {floor:.2f} ms{minimal}")
    if ours is not None:
        c32 = ours.run("c32_json")
        ours_p99 = percentile(c32.latencies, 0.99) * 1000
        peer_p99 = percentile(peer.run("c32_json").latencies, 0.99) * 1000 if peer else NAN
        row("gateway P99, JSON, c=32", ours_p99, "ms", "< LiteLLM's", ours_p99 < peer_p99 if peer else None,
            peer_p99 if peer else None, "whole request, not added")
        rates = {name: len(m.run("c32_json").latencies) / m.run("c32_json").elapsed for name, m in results.items()}
        ok = rates["gateway"] >= 10 * rates["litellm"] if peer else None
        row("gateway throughput, JSON, c=32", rates["gateway"], "req/s", ">= 10x LiteLLM", ok,
            rates.get("litellm"), f"direct to the emulator {rates['direct']:,.0f} req/s (the ceiling here); "
            f"floor {rates.get('floor', NAN):,.0f} req/s; "
            "ratio = ours / LiteLLM's")
        streams = {name: len(m.run("c32_stream").latencies) / m.run("c32_stream").elapsed for name, m in results.items()}
        row("gateway throughput, streams, c=32", streams["gateway"], "streams/s", "-", None, streams.get("litellm"),
            f"direct {streams['direct']:,.0f} streams/s; ratio = ours / LiteLLM's")
        rounds = {name: [cpu_per_request_ms(r) for r in m.runs.get("cpu_json") or m.runs["c32_json"]]
                  for name, m in results.items() if name != "direct"}
        per_request = {name: statistics.median(values) for name, values in rounds.items()}
        beside = ""
        if "floor" in rounds:
            ratios = sorted(g / f for g, f in zip(rounds["gateway"], rounds["floor"], strict=True))
            beside = (f"; median of {len(ratios)} runs alternated with the floor (aiohttp passthrough, "
                      f"{per_request['floor']:.3f} ms): gateway {min(rounds['gateway']):.3f}-"
                      f"{max(rounds['gateway']):.3f} ms, {statistics.median(ratios):.2f}x the floor "
                      f"(per run {ratios[0]:.2f}-{ratios[-1]:.2f})")
        row("gateway CPU per JSON request, c=32", per_request["gateway"], "ms", "<= 0.5 ms",
            per_request["gateway"] <= 0.5, per_request.get("litellm"),
            "user+system CPU of the server's processes" + beside)
        per_chunk = {name: m.run("c32_stream").cpu_s / max(m.run("c32_stream").events, 1) * 1e6
                     for name, m in results.items() if name != "direct"}
        streamed = ours.run("c32_stream")
        events = streamed.events / max(len(streamed.latencies), 1)
        row("gateway CPU per relayed SSE chunk, c=32", per_chunk["gateway"], "us", "<= 100 us",
            per_chunk["gateway"] <= 100, per_chunk.get("litellm"),
            f"whole stream's CPU / SSE events received ({events:.0f} per stream)" + _to_floor(per_chunk, "us", 0))
    if ours is not None:
        count = (counted or {}).get("gateway", NAN)
        floor_count = (counted or {}).get("floor")
        beside = (f"; the floor (aiohttp passthrough) {floor_count / 1000:,.0f} K: gateway = {count / floor_count:.2f}x "
                  "the floor" if floor_count else "")
        row("gateway instructions per JSON request, c=32", count / 1000, "K", "-", None, None,
            (f"not counted: {uncounted}; " if uncounted else "")
            + f"user-space instructions counted by valgrind's callgrind over {COUNTED:,} requests after "
            f"{COUNT_WARMUP} uncounted{beside}; unlike CPU time they do not move with the machine's load "
            "(runs agree within 0.2%), but they leave out the kernel's work")
    ours_s = started["gateway"].startup_s if "gateway" in started else NAN
    row("gateway start-up (spawn to /healthz 200)", ours_s, "s", "<= 1 s", ours_s <= 1.0,
        started["litellm"].startup_s if "litellm" in started else None, "")
    if "gateway" in started:
        rss = {name: rss_mb(s.proc.pid) for name, s in started.items()}
        row("gateway RSS after the load", rss["gateway"], "MB", "<= 100 MB", rss["gateway"] <= 100, rss.get("litellm"),
            "resident memory of the server's processes")
    for name, measured in results.items():
        if (problem := _errors(measured)):
            rows[0].note += f"; {name}{problem}"
    return rows


def run() -> list[Figure]:
    """The figures of ``make bench`` for the gateway."""
    missing: dict[str, str] = {}
    started: dict[str, Started] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="hive-bench-gateway-") as tmp:
        work = Path(tmp)
        emulator = start_emulator(stack, work)
        targets = [emulator]
        for name, start in (("gateway", start_gateway), ("floor", start_floor), ("litellm", start_litellm)):
            try:
                started[name] = start(stack, work, emulator)
                targets.append(started[name].target)
            except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
                detail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] \
                    if isinstance(exc, subprocess.CalledProcessError) and exc.stderr else []
                missing[name] = "; ".join([str(exc), *detail])[:300]
                log = work / f"{name}.log"
                if log.exists():
                    missing[name] += " | " + " / ".join(log.read_text(errors="replace").strip().splitlines()[-2:])[:300]
        results = measure(targets)
        counted: dict[str, float] = {}
        uncounted = ""
        if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
            uncounted = "valgrind is not installed (make bench installs it; else apt-get install valgrind)"
        elif "gateway" in started:
            for name, start in (("gateway", start_gateway), ("floor", start_floor)):
                try:
                    counted[name] = instructions_per_request(stack, work, emulator, start, name)
                except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                    uncounted = f"{name}: {exc}"[:300]
                    break
        return figures(results, started, missing, counted, uncounted)

