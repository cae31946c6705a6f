"""The selector over the real catalog: choices, properties, constraints, rankings, circuits, events."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive_core.catalog.catalog import Catalog, ModelInfo, load_catalog, parse_catalog
from hive_core.catalog.tiers import TIER_RANK
from hive_core.errors import ConfigError, NoCandidates
from hive_core.selection.complexity import COMPLEXITIES, COMPLEXITY_RANK, TASK_TYPES
from hive_core.selection.health import CircuitBreaker
from hive_core.selection.rankings import Rankings, load_rankings
from hive_core.selection.selector import (
    MIN_TIER,
    STRATEGIES,
    SelectionRequest,
    SelectionResult,
    Selector,
)
from hive_core.session import Session
from hive_core.settings import Settings
from hive_core.store.datadir import DataDir
from tests.cases import ranking_row, write_rankings

TODAY = date(2026, 6, 15)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def catalog(catalog_path: Path) -> Catalog:
    return load_catalog(catalog_path)


@pytest.fixture(scope="module")
def selector(catalog: Catalog) -> Selector:
    return Selector(catalog, today=TODAY)


def select(selector: Selector, **fields: object) -> SelectionResult:
    return selector.select(SelectionRequest(**fields))  # type: ignore[arg-type]


def test_simple_question_picks_an_economical_model(selector: Selector) -> None:
    result = select(selector, prompt="Simple question")
    assert result.complexity == "simple" and result.tier in ("economy", "standard")
    assert result.estimated_cost_usd is not None and result.estimated_cost_usd < Decimal("0.001")


def test_complex_analysis_task_picks_a_high_capability_model(selector: Selector) -> None:
    result = select(selector, prompt="Complex analysis task")
    assert result.complexity in ("complex", "expert") and result.tier in ("premium", "flagship")


def test_recommend_code_analysis(selector: Selector, catalog: Catalog) -> None:
    result = select(selector, task="code-analysis")
    assert result.task_category == "code-analysis" and len(result.fallbacks) == 3
    for model_id in result.chain:
        assert "programming" in catalog.get(model_id).capabilities
    assert result.reason.endswith(".") and result.primary in result.reason
    assert list(result.scores) == list(result.chain)


def test_fallbacks_prefer_other_providers(selector: Selector, catalog: Catalog) -> None:
    for strategy in STRATEGIES:
        chain = select(selector, task="code-generation", strategy=strategy).chain
        providers = [catalog.get(m).provider for m in chain]
        assert len(set(providers)) == len(providers)


def test_primary_model_goes_first(selector: Selector) -> None:
    result = select(selector, prompt="test", primary_model="openai/gpt-4o")
    assert result.primary == "openai/gpt-4o" and "openai/gpt-4o" not in result.fallbacks
    assert not result.warnings and "requested" in result.reason
    free = select(selector, prompt="test", primary_model="qwen/qwen3-coder:free")
    assert free.primary == "qwen/qwen3-coder:free"  # naming a model is allowing it


def test_unknown_primary_model_falls_back_with_a_warning(selector: Selector) -> None:
    result = select(selector, prompt="test", primary_model="fake-model")
    assert result.primary != "fake-model" and "fake-model" in result.warnings[0]


def test_primary_model_that_breaks_a_constraint_falls_back(selector: Selector) -> None:
    result = select(selector, prompt="test", primary_model="openai/gpt-4o", capabilities=frozenset({"audio"}))
    assert result.primary != "openai/gpt-4o" and "capabilities audio" in result.warnings[0]


def test_unknown_strategy_task_or_capability(selector: Selector) -> None:
    with pytest.raises(ConfigError, match="strategy"):
        select(selector, strategy="cheapest")
    with pytest.raises(ConfigError, match="task"):
        select(selector, task="astrology")
    with pytest.raises(ConfigError, match="capability"):
        select(selector, capabilities=frozenset({"telepathy"}))


def test_max_cost_is_per_1k_tokens_of_per_token_prices(selector: Selector) -> None:
    # gpt-4o: 0.0000025 + 0.00001 USD per token = 0.0125 USD per 1k tokens
    allow = frozenset({"openai/gpt-4o"})
    assert select(selector, allow=allow, max_cost_per_1k=Decimal("0.0125")).primary == "openai/gpt-4o"
    with pytest.raises(NoCandidates, match=r"--max-cost 0.0124 .*cheapest of them costs 0.0125"):
        select(selector, allow=allow, max_cost_per_1k=Decimal("0.0124"))


def test_no_candidates_names_the_constraint(selector: Selector) -> None:
    with pytest.raises(NoCandidates, match="capabilities audio"):
        select(selector, allow=frozenset({"openai/gpt-4o"}), capabilities=frozenset({"audio"}))
    with pytest.raises(NoCandidates, match="providers nobody"):
        select(selector, providers=("nobody",))
    with pytest.raises(NoCandidates, match="--allow"):
        select(selector, allow=frozenset({"fake-model"}))
    with pytest.raises(NoCandidates, match="context of 50000000 tokens"):
        select(selector, context_tokens=50_000_000)


def test_text_requests_get_general_text_models(selector: Selector, catalog: Catalog) -> None:
    """Issue 16: an audio model was a fallback for "Simple question", a custom-tools variant and a
    codex model answered "Complex analysis task"."""
    simple = select(selector, prompt="Simple question")
    hard = select(selector, prompt="Complex analysis task")
    assert "openai/gpt-audio-mini" not in simple.chain
    assert not [m for m in simple.chain + hard.chain if catalog.get(m).specialty is not None]
    assert hard.complexity == "complex" and hard.tier in ("premium", "flagship")


def test_specialists_serve_what_they_are_for(selector: Selector) -> None:
    # Poolside makes only coding models: code work may have them, a chat may not.
    code = select(selector, task="code-generation", providers=("poolside",))
    assert code.primary.startswith("poolside/laguna")
    with pytest.raises(NoCandidates, match="suited to the request"):
        select(selector, task="chat", providers=("poolside",))
    # A tool-selection variant serves requests that need tools, and only those.
    others = frozenset(m for m in selector.candidates.index
                       if m.startswith("google/") and not m.endswith("-customtools"))
    tools = select(selector, task="tool-use", providers=("google",), deny=others)
    assert tools.chain == ("google/gemini-3.1-pro-preview-customtools",)
    with pytest.raises(NoCandidates, match="suited to the request"):
        select(selector, task="reasoning", providers=("google",), deny=others)
    # Naming or listing a model is asking for it.
    named = select(selector, prompt="Simple question", primary_model="openai/gpt-audio-mini")
    assert named.primary == "openai/gpt-audio-mini" and not named.warnings
    listed = select(selector, prompt="hello", allow=frozenset({"openai/gpt-5.3-codex"}))
    assert listed.primary == "openai/gpt-5.3-codex"


def test_an_older_catalog_does_not_send_a_general_question_to_a_code_model(catalog_path: Path) -> None:
    """Issue 16: a cheap coder (``deepcoder-14b-preview``) answered a general simple question."""
    document = json.loads(catalog_path.read_bytes())
    general = select(Selector(parse_catalog(document), today=TODAY), prompt="What is the capital of France?")
    twin = copy.deepcopy(next(m for m in document["data"] if m["id"] == general.primary))
    twin.update(id="agentica-org/deepcoder-14b-preview", name="Agentica: Deepcoder 14B Preview", description="")
    twin["pricing"] = {k: format(Decimal(v) / 2, "f") for k, v in twin["pricing"].items()}  # cheaper, otherwise alike
    document["data"].append(twin)
    older = Selector(parse_catalog(document), today=TODAY)
    assert "agentica-org/deepcoder-14b-preview" not in select(older, prompt="What is the capital of France?").chain
    code = select(older, prompt="Write a python function to reverse a list", strategy="cost-optimized")
    assert older.candidates.index["agentica-org/deepcoder-14b-preview"] in older.candidates.members(
        older.candidates.suited({"code"})) and code.task_category == "code-generation"


def test_tier_floor_is_lowered_with_a_warning(selector: Selector, catalog: Catalog) -> None:
    cheap = frozenset(m.id for m in catalog if m.tier == "economy" and m.implicit(TODAY))
    result = select(selector, allow=cheap, complexity="expert")
    assert result.tier == "economy" and "premium" in result.warnings[0]


def test_same_inputs_same_choice(catalog: Catalog) -> None:
    request = SelectionRequest(prompt="Refactor this module and explain the trade-offs", strategy="performance")
    first = Selector(catalog, today=TODAY).select(request)
    assert Selector(catalog, today=TODAY).select(request) == first
    assert Selector(catalog, today=TODAY).select(request) == Selector(catalog, today=TODAY).select(request)


def test_a_model_failing_half_its_calls_is_demoted(catalog: Catalog, data_dir: Path) -> None:
    before = Selector(catalog, today=TODAY).select(SelectionRequest(task="code-analysis"))
    rows = [ranking_row(m, samples=400) for m in before.chain]
    rows[0] = ranking_row(before.primary, samples=400, successes=200)
    write_rankings(data_dir, rows)
    after = Selector(catalog, load_rankings(data_dir), today=TODAY).select(SelectionRequest(task="code-analysis"))
    assert after.primary != before.primary
    assert after.primary in before.chain and "measured over 400 calls" in after.reason


def test_a_model_with_an_open_circuit_is_skipped(catalog: Catalog, tmp_path: Path) -> None:
    breaker = CircuitBreaker(DataDir(tmp_path), failure_threshold=1)
    selector = Selector(catalog, breaker=breaker, today=TODAY)
    before = selector.select(SelectionRequest(task="code-analysis"))
    breaker.record_failure(before.primary)
    after = selector.select(SelectionRequest(task="code-analysis"))
    assert before.primary not in after.chain and after.candidates == before.candidates - 1
    pinned = selector.select(SelectionRequest(task="code-analysis", primary_model=before.primary))
    assert pinned.primary != before.primary and "circuit open" in pinned.warnings[0]


def test_fast_capability_follows_measured_ttft(catalog: Catalog) -> None:
    slow_flash, quick = "google/gemini-3.5-flash", "openai/gpt-4o"
    rankings = Rankings.from_rows([ranking_row(slow_flash, ttft_p50_ms=4000.0),
                                   ranking_row(quick, ttft_p50_ms=300.0)])
    selector = Selector(catalog, rankings, today=TODAY)
    fast = selector.select(SelectionRequest(capabilities=frozenset({"fast"}), allow=frozenset({slow_flash, quick})))
    assert fast.chain == (quick,)


def test_selection_event(selector: Selector) -> None:
    result = select(selector, task="code-analysis")
    event = result.to_event("req-1", "balanced", app="tests")
    assert event.type == "selection" and event.request_id == "req-1" and event.app == "tests"
    assert event.model == result.primary and event.fallbacks == list(result.fallbacks)
    assert event.top_models == list(result.chain) and len(event.top_scores) == len(event.top_models)
    assert event.candidates == result.candidates and event.estimated_cost_usd == float(result.estimated_cost_usd or 0)


def test_the_session_builds_the_selector(data_dir: Path, catalog_path: Path) -> None:
    settings_ = Settings(data_dir=data_dir)
    settings_.datadir.catalog_file.parent.mkdir(parents=True)
    shutil.copy(catalog_path, settings_.datadir.catalog_file)
    with Session(settings_, None) as session:  # no sink: selecting without a request id records nothing
        selector = session.selector
        assert session.select(SelectionRequest(task="chat")).primary
    assert len(selector.catalog) == 339 and not selector.rankings and selector.breaker is not None


# -- properties --------------------------------------------------------------------------------

def qualifies(selector: Selector, model: ModelInfo, request: SelectionRequest, context: int) -> bool:
    """The constraints, written out plainly, as the oracle for the bitset implementation."""
    i = selector.candidates.index[model.id]
    needed = request.capabilities | TASK_TYPES[request.task or "chat"].capabilities
    if request.allow is not None:
        if model.id not in request.allow:
            return False
    elif not model.implicit(TODAY, allow_free=request.allow_free):
        return False
    elif model.specialty is not None and not (
        (model.specialty == "code" and ((request.task or "chat").startswith("code-") or "programming" in needed))
        or (model.specialty == "tools" and "tools" in needed)
    ):
        return False  # audio/image output, guard, research: only when named; code and tools when asked
    return (
        model.id not in request.deny
        and (not request.providers or model.provider in request.providers)
        and needed <= selector.capabilities[i]
        and model.context_length >= context
        and (request.max_cost_per_1k is None
             or (not model.pricing.variable and model.pricing.per_1k <= request.max_cost_per_1k))
    )


@st.composite
def requests(draw: st.DrawFn, catalog_ids: list[str]) -> SelectionRequest:
    some_ids = st.frozensets(st.sampled_from(catalog_ids), max_size=25)
    return SelectionRequest(
        task=draw(st.sampled_from(sorted(TASK_TYPES))),
        strategy=draw(st.sampled_from(STRATEGIES)),
        capabilities=draw(st.frozensets(st.sampled_from(["tools", "vision", "reasoning", "structured-output",
                                                         "long-context", "fast"]), max_size=2)),
        max_cost_per_1k=draw(st.none() | st.sampled_from([Decimal("0.0005"), Decimal("0.002"), Decimal("0.02")])),
        context_tokens=draw(st.none() | st.sampled_from([1000, 150_000, 500_000])),
        allow=draw(st.none() | some_ids),
        deny=draw(some_ids),
        providers=tuple(draw(st.lists(st.sampled_from(["openai", "anthropic", "google", "qwen", "mistralai"]),
                                      max_size=2, unique=True))),
        allow_free=draw(st.booleans()),
        max_tokens=draw(st.none() | st.sampled_from([100, 4000])),
        complexity=draw(st.none() | st.sampled_from(COMPLEXITIES)),
    )


@pytest.fixture(scope="module")
def ids(catalog: Catalog) -> list[str]:
    return [m.id for m in catalog]


@PROPERTY
@given(data=st.data())
def test_every_constraint_is_always_honoured(selector: Selector, catalog: Catalog, ids: list[str],
                                             data: st.DataObject) -> None:
    request = data.draw(requests(ids))
    context = (request.context_tokens or 0) + (request.max_tokens or 0)
    eligible = [m for m in catalog if qualifies(selector, m, request, context)]
    if not eligible:
        with pytest.raises(NoCandidates):
            selector.select(request)
        return
    result = selector.select(request)
    # Complexity's minimum tier, lowered to the best tier left rather than failing.
    complexity = request.complexity or TASK_TYPES[request.task or "chat"].complexity
    wanted = TIER_RANK[MIN_TIER[complexity]]
    floor = max(r for r in range(wanted + 1) if r == 0 or any(m.tier_rank >= r for m in eligible))
    eligible = [m for m in eligible if m.tier_rank >= floor]
    assert result.candidates == len(eligible)
    eligible_ids = {m.id for m in eligible}
    assert set(result.chain) <= eligible_ids and len(set(result.chain)) == len(result.chain)
    assert len(result.chain) == min(4, len(eligible))


@PROPERTY
@given(data=st.data())
def test_raising_complexity_never_lowers_the_chosen_tier(selector: Selector, ids: list[str],
                                                         data: st.DataObject) -> None:
    request = data.draw(requests(ids))
    tiers = []
    for complexity in COMPLEXITIES:
        try:
            result = selector.select(SelectionRequest(**{**request.__dict__, "complexity": complexity}))
        except NoCandidates:
            return  # the constraints do not depend on complexity: all raise or none
        tiers.append(TIER_RANK[result.tier])
        assert COMPLEXITY_RANK[result.complexity] == COMPLEXITIES.index(complexity)
    assert tiers == sorted(tiers)


@PROPERTY
@given(data=st.data())
def test_cost_optimized_never_costlier_than_quality_first(selector: Selector, ids: list[str],
                                                          data: st.DataObject) -> None:
    request = data.draw(requests(ids))
    try:
        cheap = selector.select(SelectionRequest(**{**request.__dict__, "strategy": "cost-optimized"}))
    except NoCandidates:
        return
    best = selector.select(SelectionRequest(**{**request.__dict__, "strategy": "quality-first"}))
    task = cheap.task_category or "chat"
    assert selector.effective_cost(cheap.primary, task) <= selector.effective_cost(best.primary, task)


@PROPERTY
@given(data=st.data())
def test_same_inputs_give_the_same_choice(catalog: Catalog, selector: Selector, ids: list[str],
                                          data: st.DataObject) -> None:
    request = data.draw(requests(ids))
    try:
        first = selector.select(request)
    except NoCandidates as exc:
        with pytest.raises(NoCandidates, match=str(exc).split("(")[0].strip()):
            selector.select(request)
        return
    assert selector.select(request) == first
