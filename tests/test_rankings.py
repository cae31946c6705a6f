"""The ranking table contract: schema, Wilson bound, shrinkage, strategy scores, loading and its cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive_core.errors import SchemaMismatch
from hive_core.selection.rankings import (
    COST_MIX,
    RANKING_COLUMNS,
    STRATEGIES,
    STRATEGY_WEIGHTS,
    Metrics,
    Rankings,
    effective_cost,
    load_rankings,
    ranking_schema,
    shrink,
    strategy_scores,
    wilson_lower,
)
from hive_core.store.datadir import DataDir
from hive_core.store.filecache import cache_file
from tests.cases import ranking_row, write_rankings


def test_schema_has_every_contract_column() -> None:
    schema = ranking_schema()
    assert schema.names == [name for name, _ in RANKING_COLUMNS]
    assert str(schema.field("computed_at").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("samples").type) == "int64" and str(schema.field("quality").type) == "double"
    assert {f"score_{s.replace('-', '_')}" for s in STRATEGIES} <= set(schema.names)


def test_wilson_lower_known_values() -> None:
    assert wilson_lower(0, 0) == 0.0
    assert wilson_lower(10, 10) == pytest.approx(0.7225, abs=1e-3)
    assert wilson_lower(50, 100) == pytest.approx(0.4038, abs=1e-3)
    assert wilson_lower(1000, 1000) > 0.99
    assert wilson_lower(5, 10) < wilson_lower(500, 1000) < 0.5


@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_lower_is_a_lower_bound(successes: int, n: int) -> None:
    successes = min(successes, n)
    assert 0.0 <= wilson_lower(successes, n) <= successes / n + 1e-12


def test_shrink_pulls_small_samples_to_the_prior() -> None:
    assert shrink(None, 0.9, 100, 20) == 0.9
    assert shrink(0.0, 0.9, 0, 20) == 0.9
    assert shrink(0.0, 0.9, 1, 20) == pytest.approx(0.857, abs=1e-3)
    assert shrink(0.0, 0.9, 10_000, 20) < 0.01


def test_cost_optimized_is_a_mix_of_quality_first_and_cost() -> None:
    co, qf = STRATEGY_WEIGHTS["cost-optimized"], STRATEGY_WEIGHTS["quality-first"]
    assert co[:3] == pytest.approx(tuple(COST_MIX * w for w in qf[:3]))
    assert sum(co) == pytest.approx(1.0)
    assert all(sum(w) == pytest.approx(1.0) for w in STRATEGY_WEIGHTS.values())


metrics_strategy = st.builds(
    Metrics,
    samples=st.integers(0, 5000),
    success_rate=st.floats(0, 1),
    success_lower=st.floats(0, 1),
    latency_p95_ms=st.floats(10, 120_000),
    ttft_p50_ms=st.floats(10, 60_000),
    cost_per_request_usd=st.floats(0, 2),
    quality=st.none() | st.floats(0, 1),
    quality_samples=st.integers(0, 500),
)


@given(metrics_strategy, metrics_strategy)
def test_cost_optimized_never_prefers_the_costlier_of_two(a: Metrics, b: Metrics) -> None:
    sa, sb = strategy_scores(a), strategy_scores(b)
    if effective_cost(a) < effective_cost(b) and sa["quality-first"] >= sb["quality-first"]:
        assert sa["cost-optimized"] >= sb["cost-optimized"]


def test_a_model_failing_half_its_calls_scores_lower_everywhere() -> None:
    healthy = Rankings.from_rows([ranking_row("m")]).row("*", "m")
    failing = Rankings.from_rows([ranking_row("m", successes=100)]).row("*", "m")
    assert healthy is not None and failing is not None
    good, bad = strategy_scores(healthy), strategy_scores(failing)
    assert all(bad[s] < good[s] for s in STRATEGIES)


def test_from_rows_prefers_recent_windows_with_enough_samples() -> None:
    rows = [ranking_row("m", window_days=7, samples=5), ranking_row("m", window_days=30, samples=300),
            ranking_row("m", window_days=1, samples=50), ranking_row("m", task="code-analysis", samples=3)]
    rankings = Rankings.from_rows(rows)
    assert rankings.row("*", "m").samples == 50  # type: ignore[union-attr]
    assert rankings.metrics("code-analysis", "m").samples == 50  # type: ignore[union-attr]  # too few: "*"
    assert rankings.metrics("chat", "unknown") is None
    assert rankings.models() == {"m"} and len(rankings) == 2


def test_load_rankings_missing_table_is_empty(data_dir: Path) -> None:
    rankings = load_rankings(data_dir)
    assert len(rankings) == 0 and not rankings


def test_load_rankings_reads_and_caches(data_dir: Path) -> None:
    path = write_rankings(data_dir, [ranking_row("a"), ranking_row("b", task="chat", samples=40, successes=30)])
    rankings = load_rankings(data_dir)
    assert rankings.metrics("chat", "b").success_rate == pytest.approx(0.75)  # type: ignore[union-attr]
    assert rankings.computed_at is not None and rankings.computed_at.startswith("2026-06-20")
    assert cache_file(path, DataDir(data_dir).cache).exists()  # JSON in <data>/cache, nothing beside the table
    assert [p.name for p in path.parent.iterdir()] == ["rankings.parquet"]
    again = load_rankings(data_dir)
    assert again.row("chat", "b") == rankings.row("chat", "b")
    write_rankings(data_dir, [ranking_row("c")])
    os.utime(path, ns=(1, 1))
    assert load_rankings(data_dir).models() == {"c"}


def test_load_rankings_rejects_foreign_tables(data_dir: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = DataDir(data_dir).rankings_file
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"model": ["x"]}), path)
    with pytest.raises(SchemaMismatch, match="task_category"):
        load_rankings(data_dir)


def test_corrupt_ranking_table_is_one_line(data_dir: Path) -> None:
    """A torn or foreign table says which file and what to do (one line), never a traceback."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hive_core.errors import DataError

    path = write_rankings(data_dir, [ranking_row("a")])
    good = path.read_bytes()
    wrong_type = pa.Table.from_pylist([{**ranking_row("a"), "samples": "many"}])
    for damage in (lambda: path.write_bytes(b""), lambda: path.write_bytes(good[: len(good) // 2]),
                   lambda: path.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1"), lambda: pq.write_table(wrong_type, path)):
        damage()
        os.utime(path, ns=(1, 1))  # a new (size, mtime): the cache does not answer
        with pytest.raises(DataError) as caught:
            load_rankings(data_dir)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        assert message.endswith("run `hive-jobs rankings` to rewrite it (it is derived from the rollups)")
