"""Selector figures: one selection, catalog + rankings load time and size, ``hive models recommend``.

The data directory is a temporary copy of the real catalog snapshot plus a ranking table with
measured rows for 60 models (all tasks and code-analysis), written with the contract's schema.
Peer: LiteLLM's ``Router`` picking among 50 deployments of one model group with its default
strategy (simple-shuffle) - the per-request routing decision a LiteLLM user pays for.
"""

from __future__ import annotations

import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Figure, median_time

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO.parent / "shared" / "data" / "openrouter" / "models-2026-06.json"
HIVE = str(Path(sys.executable).parent / "hive")


def _data_dir(root: Path) -> Path:
    """A data directory with the catalog and a ranking table (and their parse caches warmed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hive_core.catalog.catalog import load_catalog
    from hive_core.selection.rankings import (
        STRATEGIES,
        Metrics,
        load_rankings,
        ranking_schema,
        strategy_scores,
    )
    from hive_core.store.datadir import DataDir

    datadir = DataDir(root)
    datadir.catalog_file.parent.mkdir(parents=True)
    shutil.copy(SNAPSHOT, datadir.catalog_file)
    catalog = load_catalog(datadir.catalog_file, cache_dir=datadir.cache)
    rows: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    for n, model in enumerate(m for m in catalog if not m.is_free and not m.is_router):
        if n >= 60:
            break
        for task in ("*", "code-analysis"):
            samples, successes = 300 + n, 290 + n - (n % 7) * 10
            metrics = Metrics(samples=samples, success_rate=successes / samples, success_lower=0.9,
                              latency_p95_ms=2000.0 + 50 * n, ttft_p50_ms=300.0 + 10 * n,
                              cost_per_request_usd=0.0005 * (1 + n % 5))
            scores = strategy_scores(metrics)
            rows.append({"task_category": task, "model": model.id, "window_days": 7, "samples": samples,
                         "successes": successes, "success_rate": metrics.success_rate, "success_lower": 0.9,
                         "latency_p95_ms": metrics.latency_p95_ms, "ttft_p50_ms": metrics.ttft_p50_ms,
                         "cost_per_request_usd": metrics.cost_per_request_usd, "quality": None, "quality_samples": 0,
                         **{f"score_{s.replace('-', '_')}": scores[s] for s in STRATEGIES}, "computed_at": now})
    path = datadir.rankings_file
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=ranking_schema()), path)
    load_rankings(root)  # writes the parse cache, as the first `hive` run after the job would
    return root


def _litellm_peer() -> tuple[float | None, str]:
    """Median seconds of one LiteLLM Router decision among 50 deployments, or None and why."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
    try:
        from litellm import Router
    except ImportError:
        return None, "litellm not installed (pip install -e '.[bench]'): no peer this run"
    model_list = [{"model_name": "gpt", "litellm_params": {"model": f"openai/gpt-4o-{i}", "api_key": "sk-bench"}}
                  for i in range(50)]
    router = Router(model_list=model_list, routing_strategy="simple-shuffle")
    messages = [{"role": "user", "content": "Review this code"}]
    router.get_available_deployment(model="gpt", messages=messages)
    return median_time(lambda: router.get_available_deployment(model="gpt", messages=messages),
                       repeat=7, number=200), "LiteLLM Router, simple-shuffle (its default), 50 deployments"


def _process_ms(args: list[str], runs: int = 9) -> tuple[float, float]:
    """Median wall and median CPU (user + system) milliseconds of running ``args``: on a shared
    machine the wall time also counts waiting for a core, the CPU time does not."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def _compile_hive() -> None:
    """Write current bytecode for Hive's packages, as installing them does: the command is timed as
    a user runs it, not compiling modules a checkout changed (with PYTHONDONTWRITEBYTECODE set, a
    stale module is compiled from source on every run, ~3 ms each)."""
    for package in ("hive", "hive_core", "hive_cli"):
        compileall.compile_dir(REPO / package, quiet=1)


def run() -> list[Figure]:
    from hive_core.catalog.catalog import load_catalog
    from hive_core.selection.rankings import load_rankings
    from hive_core.selection.selector import SelectionRequest
    from hive_core.session import Session
    from hive_core.settings import Settings

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="hive-bench-selector-") as tmp:
        root = _data_dir(Path(tmp))
        settings = Settings(data_dir=root)
        selector = Session(settings, None).selector  # nothing to close: a selector opens no client or ledger
        request = SelectionRequest(task="code-analysis")
        selector.select(request)  # first call per (task, strategy, complexity) builds the ordering
        ours = median_time(lambda: selector.select(request), repeat=15, number=2000)
        peer, peer_note = _litellm_peer()
        figures.append(Figure(
            "selector: select over 339 models (rankings loaded)", ours * 1e6, "us", "<= 20 us", ours * 1e6 <= 20,
            peer="litellm Router 50 deployments" if peer else None, peer_value=peer * 1e6 if peer else None,
            ratio=ours / peer if peer else None,
            note=f"task=code-analysis, balanced, constraints + breaker state + cost estimate + reason; peer: {peer_note}",
        ))
        prompted = SelectionRequest(prompt="Explain why this function is slow and suggest a fix")
        selector.select(prompted)
        with_prompt = median_time(lambda: selector.select(prompted), repeat=15, number=2000)
        figures.append(Figure("selector: select from a prompt (assessment included)", with_prompt * 1e6, "us", "-",
                              None, note="complexity + task type from a 10-word prompt, then the same selection"))

        def load() -> object:
            return load_catalog(settings.datadir.catalog_file, cache_dir=settings.datadir.cache), load_rankings(root)

        load_s = median_time(load, repeat=15, number=5)
        figures.append(Figure("selector: load catalog + rankings", load_s * 1000, "ms", "<= 5 ms", load_s <= 0.005,
                              note="339 models and 120 ranking rows, from their stat-keyed parse caches"))
        tracemalloc.start()
        kept = load()
        resident = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del kept
        figures.append(Figure("selector: catalog + rankings resident", resident / 2**20, "MB", "<= 5 MB",
                              resident <= 5 * 2**20, note="tracemalloc, Python allocations of the loaded tables"))
        cmd = [HIVE, "--data-dir", str(root), "models", "recommend", "--task", "code-analysis"]
        _compile_hive()
        whole, whole_cpu = _process_ms(cmd)
        bare, bare_cpu = _process_ms([sys.executable, "-c", "pass"])
        figures.append(Figure(
            "hive models recommend --task code-analysis", whole, "ms", "<= 150 ms", whole <= 150,
            peer="python -c pass", peer_value=bare, ratio=whole / bare,
            note=f"whole process, median of 9; CPU {whole_cpu:.0f} ms (python -c pass: {bare_cpu:.0f} ms)",
        ))
    return figures
