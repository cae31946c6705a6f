"""The catalog over the real snapshot: both eras, tiers, capabilities, implicit-use rules, the cache."""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
import stat
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive_core.catalog.capabilities import parse_capability
from hive_core.catalog.catalog import FETCHED_AT_KEY, Catalog, load_catalog, parse_catalog
from hive_core.catalog.tiers import TIER_RANK, TIERS, blended_price, parse_tier
from hive_core.errors import AmbiguousModel, CatalogError, CatalogMissing, UnknownModel
from hive_core.store.datadir import DataDir
from hive_core.store.filecache import cache_file


@pytest.fixture(scope="module")
def document(catalog_path: Path) -> dict[str, Any]:
    return json.loads(catalog_path.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def catalog(document: dict[str, Any]) -> Catalog:
    return parse_catalog(document)


def as_2025(document: dict[str, Any]) -> dict[str, Any]:
    """The 2026 snapshot spelled the 2025 way: every price key present ("0"), no newer fields."""
    old = copy.deepcopy(document)
    for model in old["data"]:
        for key in ("request", "image", "web_search", "internal_reasoning"):
            model["pricing"].setdefault(key, "0")
        for key in ("reasoning", "benchmarks", "expiration_date", "links", "knowledge_cutoff", "supported_voices"):
            model.pop(key, None)
    return old


def test_parse_real_snapshot(catalog: Catalog, document: dict[str, Any]) -> None:
    assert len(catalog) == 339
    gpt4o = catalog.get("openai/gpt-4o")
    assert gpt4o.provider == "openai" and gpt4o.name == "OpenAI: GPT-4o"
    assert gpt4o.context_length == 128_000 and gpt4o.max_completion_tokens == 16384
    assert gpt4o.pricing.prompt == Decimal("0.0000025")
    assert {"tools", "vision", "file", "structured-output", "long-context"} <= gpt4o.capabilities
    assert "audio" not in gpt4o.capabilities
    assert [m.id for m in catalog] == [m["id"] for m in document["data"]]
    assert "openai/gpt-4o" in catalog and "fake-model" not in catalog


def test_2025_and_2026_documents_parse_alike(document: dict[str, Any], catalog: Catalog) -> None:
    old = parse_catalog(as_2025(document))
    assert len(old) == len(catalog)
    for new_model, old_model in zip(catalog, old, strict=True):
        assert old_model.pricing == new_model.pricing
        assert old_model.tier == new_model.tier
        assert old_model.expiration_date is None


def test_bare_list_and_extra_root_keys(document: dict[str, Any]) -> None:
    assert len(parse_catalog(document["data"][:5])) == 5
    assert len(parse_catalog({"data": document["data"][:5], "total_count": 5, "links": {"next": None}})) == 5


def test_unknown_fields_ignored(document: dict[str, Any]) -> None:
    model = copy.deepcopy(document["data"][0])
    model["brand_new_field"] = {"anything": [1, 2]}
    model["pricing"]["some_future_price"] = "0.5"
    assert parse_catalog([model]).models[0].id == model["id"]


@pytest.mark.parametrize("field", ["name", "context_length", "pricing"])
def test_missing_required_field_names_the_model(document: dict[str, Any], field: str) -> None:
    model = copy.deepcopy(document["data"][0])
    del model[field]
    with pytest.raises(CatalogError, match=model["id"]):
        parse_catalog([model])


def test_missing_completion_price_names_the_model(document: dict[str, Any]) -> None:
    model = copy.deepcopy(document["data"][0])
    del model["pricing"]["completion"]
    with pytest.raises(CatalogError, match=model["id"]):
        parse_catalog([model])


def test_bad_documents() -> None:
    for bad in ({"models": []}, "text", [1], [{"name": "no id"}]):
        with pytest.raises(CatalogError):
            parse_catalog(bad)


def test_old_modality_string_gives_input_modalities(document: dict[str, Any]) -> None:
    model = copy.deepcopy(document["data"][0])
    model["architecture"] = {"modality": "text+image->text", "tokenizer": "GPT"}
    parsed = parse_catalog([model]).models[0]
    assert parsed.input_modalities == ("text", "image") and "vision" in parsed.capabilities


@pytest.mark.parametrize(("model_id", "expected"), [
    ("openai/gpt-audio-mini", "media-output"),  # output_modalities text+audio
    ("openai/gpt-5-image", "media-output"),
    ("google/lyria-3-pro-preview", "media-output"),
    ("meta-llama/llama-guard-4-12b", "guard"),  # "content safety classification"
    ("openai/gpt-oss-safeguard-20b", "guard"),
    ("nvidia/nemotron-3.5-content-safety:free", "guard"),
    ("openai/o4-mini-deep-research", "research"),  # "always uses the 'web_search' tool"
    ("perplexity/sonar-deep-research", "research"),
    ("x-ai/grok-4.20-multi-agent", "research"),
    ("google/gemini-3.1-pro-preview-customtools", "tools"),
    ("openai/gpt-5.3-codex", "code"),
    ("qwen/qwen3-coder-next", "code"),
    ("poolside/laguna-m.1", "code"),  # "coding agent model", by its description only
    ("morph/morph-v3-large", "code"),  # "apply model for complex code edits"
    ("x-ai/grok-build-0.1", "code"),
    # general models whose descriptions praise their coding: not specialists
    ("anthropic/claude-opus-4", None),  # "benchmarked as the world's best coding model"
    ("openai/gpt-5.4", None),  # "unifying the Codex and GPT lines"
    ("google/gemini-3-flash-preview", None),  # "... and coding assistance"
    ("qwen/qwen3.6-max-preview", None),  # "optimized for agentic coding" in its second sentence
    ("openai/gpt-4o-mini", None),
])
def test_specialties_from_the_catalog_entry(catalog: Catalog, model_id: str, expected: str | None) -> None:
    assert catalog.get(model_id).specialty == expected


def test_specialties_of_older_entries(document: dict[str, Any]) -> None:
    """Older documents: only ``architecture.modality``; no description at all in some eras."""
    base = copy.deepcopy(document["data"][0])
    audio = {**base, "id": "openai/gpt-4o-audio-preview", "architecture": {"modality": "text+audio->text+audio"}}
    coder = {**base, "id": "agentica-org/deepcoder-14b-preview", "name": "Agentica: Deepcoder 14B Preview",
             "description": "", "architecture": {"modality": "text->text"}}
    guard = {**base, "id": "meta-llama/llama-guard-3-8b", "name": "Llama Guard 3 8B", "description": ""}
    text = {**base, "id": "mistralai/mistral-7b-instruct", "name": "Mistral 7B", "description": "",
            "architecture": {"modality": "text->text"}}
    parsed = parse_catalog([audio, coder, guard, text])
    assert parsed.get("openai/gpt-4o-audio-preview").output_modalities == ("text", "audio")
    assert [m.specialty for m in parsed] == ["media-output", "code", "guard", None]


def test_routers_aliases_free_and_expired_are_not_implicit(catalog: Catalog) -> None:
    today = date(2026, 6, 15)
    auto = catalog.get("openrouter/auto")
    assert auto.is_router and auto.pricing.variable and not auto.implicit(today, allow_free=True)
    assert catalog.get("openrouter/free").is_router
    alias = catalog.get("~anthropic/claude-opus-latest")
    assert alias.is_alias and alias.provider == "anthropic" and not alias.implicit(today)
    free = catalog.get("qwen/qwen3-coder:free")
    assert free.is_free and not free.implicit(today) and free.implicit(today, allow_free=True)
    expiring = catalog.get("anthropic/claude-opus-4.6-fast")
    assert expiring.expiration_date == date(2026, 6, 29)
    assert expiring.implicit(today) and not expiring.implicit(date(2026, 6, 29))
    assert catalog.get("openai/gpt-4o").implicit(today)


def test_tiers_follow_blended_price(catalog: Catalog) -> None:
    priced = [m for m in catalog if not m.is_router and not m.is_free]
    counts = {tier: sum(m.tier == tier for m in priced) for tier in TIERS}
    assert all(counts[t] > 20 for t in TIERS), counts
    for a in priced:
        for b in priced:
            if blended_price(a.pricing) < blended_price(b.pricing):
                assert a.tier_rank <= b.tier_rank
    assert catalog.get("anthropic/claude-opus-4.8").tier == "flagship"
    assert catalog.get("openai/gpt-4o-mini").tier in ("economy", "standard")
    assert all(m.tier == "economy" for m in catalog if m.is_free and not m.is_router)


@settings(max_examples=15, deadline=None)
@given(factor=st.sampled_from(["0.5", "2", "3.7", "10"]))
def test_tiers_stay_right_as_prices_move(document: dict[str, Any], catalog: Catalog, factor: str) -> None:
    moved = copy.deepcopy(document)
    for model in moved["data"]:
        for key, value in model["pricing"].items():
            if value not in ("-1", "0"):
                model["pricing"][key] = str(Decimal(value) * Decimal(factor))
    assert [m.tier for m in parse_catalog(moved)] == [m.tier for m in catalog]


def test_capabilities(catalog: Catalog) -> None:
    assert "programming" in catalog.get("qwen/qwen3-coder").capabilities
    assert "programming" in catalog.get("anthropic/claude-opus-4.8").capabilities
    assert "reasoning" in catalog.get("anthropic/claude-opus-4.8").capabilities
    assert "audio" in catalog.get("openai/gpt-audio").capabilities
    assert "fast" in catalog.get("google/gemini-3.5-flash").capabilities
    assert parse_capability("Structured_Output") == "structured-output"
    assert parse_tier("Flagship") == "flagship" and TIER_RANK["flagship"] == 3
    with pytest.raises(ValueError):
        parse_capability("telepathy")


def test_list_models_filters(catalog: Catalog) -> None:
    found = catalog.list_models(tier="flagship", capabilities=["tools"], provider="anthropic")
    assert found and all(m.tier == "flagship" and "tools" in m.capabilities and m.provider == "anthropic"
                         for m in found)
    assert len(catalog.list_models()) == 339


def test_unknown_model_suggests_close_ids(catalog: Catalog) -> None:
    with pytest.raises(UnknownModel, match="openai/gpt-4o"):
        catalog.get("openai/gpt-4oo")
    with pytest.raises(UnknownModel, match="hive models list"):
        catalog.get("fake-model")


def test_resolve_full_and_short_names(catalog: Catalog) -> None:
    """What a person types resolves to one catalog id: the id, its short name (after the provider),
    either in another case; an alias or a ``:free`` variant keeps its own short name."""
    assert catalog.resolve("openai/gpt-4o-mini").id == "openai/gpt-4o-mini"
    assert catalog.resolve("gpt-4o-mini").id == "openai/gpt-4o-mini"
    assert catalog.resolve("GPT-4o-Mini").id == "openai/gpt-4o-mini"
    assert catalog.resolve("llama-4-scout").id == "meta-llama/llama-4-scout"
    assert catalog.resolve("claude-opus-latest").id == "~anthropic/claude-opus-latest"


def test_resolve_unknown_names_suggests_close_ids(catalog: Catalog) -> None:
    """An unknown name fails with the close matches - on the short names too, so a missing or wrong
    provider still finds the model - or, with none, where the list is."""
    with pytest.raises(UnknownModel, match=r"unknown model 'claude-3-opus': did you mean anthropic/claude-opus-4,"):
        catalog.resolve("claude-3-opus")
    with pytest.raises(UnknownModel, match=r"did you mean openai/gpt-4o-mini\b"):
        catalog.resolve("gpt-4o-minii")
    with pytest.raises(UnknownModel, match=r"did you mean anthropic/claude-3-haiku\b"):
        catalog.resolve("openai/claude-3-haiku")  # the wrong provider
    with pytest.raises(UnknownModel, match=r"unknown model 'fake-model': no close match .* `hive models list`"):
        catalog.resolve("fake-model")


def test_resolve_an_ambiguous_short_name_lists_the_candidates(document: dict[str, Any]) -> None:
    """Two providers serving the same short name: neither is guessed, both full ids are named."""
    (mini,) = [m for m in document["data"] if m["id"] == "openai/gpt-4o-mini"]
    twin = parse_catalog({"data": [*document["data"], {**mini, "id": "azure/gpt-4o-mini"}]})
    with pytest.raises(AmbiguousModel, match=r"ambiguous, give the full id: azure/gpt-4o-mini, openai/gpt-4o-mini$"):
        twin.resolve("gpt-4o-mini")
    assert twin.resolve("azure/gpt-4o-mini").id == "azure/gpt-4o-mini"


def test_load_catalog_missing_says_sync(data_dir: Path) -> None:
    with pytest.raises(CatalogMissing, match="hive models sync"):
        load_catalog(DataDir(data_dir).catalog_file)


def test_load_catalog_caches_and_notices_changes(data_dir: Path, catalog_path: Path) -> None:
    where = DataDir(data_dir)
    path = where.catalog_file
    path.parent.mkdir(parents=True)
    shutil.copy(catalog_path, path)
    first = load_catalog(path, cache_dir=where.cache)
    (cache,) = where.cache.iterdir()
    assert cache.suffix == ".json" and list(path.parent.iterdir()) == [path]  # nothing beside the source
    second = load_catalog(path, cache_dir=where.cache)
    assert [m for m in second] == [m for m in first] and second.thresholds == first.thresholds
    assert second.models == parse_catalog(json.loads(path.read_bytes())).models
    assert first.fetched_at is None and second.fetched_at is None  # a copy Hive did not fetch
    document = json.loads(path.read_text())
    document["data"] = document["data"][:10]
    path.write_text(json.dumps(document))
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    assert len(load_catalog(path, cache_dir=where.cache)) == 10


def test_the_fetch_time_inside_the_document_survives_the_cache(data_dir: Path, document: dict[str, Any]) -> None:
    where = DataDir(data_dir)
    where.catalog_file.parent.mkdir(parents=True)
    where.catalog_file.write_text(json.dumps({**document, FETCHED_AT_KEY: "2026-12-31T23:30:00+00:00"}))
    first = load_catalog(where.catalog_file, cache_dir=where.cache)
    cached = load_catalog(where.catalog_file, cache_dir=where.cache)
    assert first.fetched_at == cached.fetched_at == datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert parse_catalog({**document, FETCHED_AT_KEY: "not a time"}).fetched_at is None


def test_load_catalog_from_read_only_dir_and_corrupt_file(catalog_path: Path, data_dir: Path) -> None:
    assert len(load_catalog(catalog_path)) == 339  # ../shared is read-only: no cache, still works
    bad = data_dir / "models.json"
    bad.write_text("{not json")
    with pytest.raises(CatalogError, match="hive models sync"):
        load_catalog(bad)


def test_a_planted_cache_cannot_run_code(catalog_path: Path, data_dir: Path, tmp_path: Path) -> None:
    """A catalog outside the data directory (a shared one) gets nothing written beside it, and no
    file an attacker plants - beside it, or as its cache - is ever executed."""
    shared = tmp_path / "shared"
    shared.mkdir()
    source = shared / "models.json"
    shutil.copy(catalog_path, source)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    planted = pickle.dumps(((2, source.stat().st_mtime_ns, source.stat().st_size), Payload()))
    (shared / ".models.json.pickle").write_bytes(planted)  # where the old cache looked
    cache_dir = DataDir(data_dir).cache
    cache_dir.mkdir(parents=True)
    cache_file(source, cache_dir).write_bytes(planted)  # where the cache lives now
    catalog = load_catalog(source, cache_dir=cache_dir)
    assert len(catalog) == 339 and not marker.exists()
    assert sorted(p.name for p in shared.iterdir()) == [".models.json.pickle", "models.json"]
    assert json.loads(cache_file(source, cache_dir).read_bytes())["key"][0] >= 3  # re-parsed, JSON now
    assert len(load_catalog(source, cache_dir=cache_dir)) == 339 and not marker.exists()


def test_cache_files_are_private(catalog_path: Path, data_dir: Path) -> None:
    cache_dir = DataDir(data_dir).cache
    load_catalog(catalog_path, cache_dir=cache_dir)
    (cache,) = cache_dir.iterdir()
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700 and stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_a_tampered_cache_is_parsed_again(catalog_path: Path, data_dir: Path) -> None:
    cache_dir = DataDir(data_dir).cache
    load_catalog(catalog_path, cache_dir=cache_dir)
    (cache,) = cache_dir.iterdir()
    document = json.loads(cache.read_bytes())
    for broken in ({**document, "value": [1, 2]}, {**document, "value": {"$tuple": "x"}}, "[", "null"):
        cache.write_text(broken if isinstance(broken, str) else json.dumps(broken))
        assert len(load_catalog(catalog_path, cache_dir=cache_dir)) == 339
