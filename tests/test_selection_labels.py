"""Picks a person agrees with (issue 16 item 4): the labelled prompt set of ``tests/data/selection_labels.json``
on three catalogs, under every strategy.

The catalogs: the real June 2026 snapshot, and two derived from it here, at run time (never stored):
``shifted`` (every price scaled by a factor that cycles through 0.3x..3x, so tiers reshuffle) and
``no-flagships`` (every model of the real flagship tier removed, as in an older or cheaper catalog).
A prompt passes when its assessed complexity is one the label accepts, its primary's tier is one the
label accepts (when it names tiers; balanced strategy, the default), and its primary and every fallback belong to an accepted family
and none is forbidden - audio/image output is checked on the entry's ``output_modalities`` as well as
by name.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hive_core.catalog.catalog import parse_catalog
from hive_core.selection.selector import STRATEGIES, SelectionRequest, SelectionResult, Selector

LABELS = Path(__file__).parent / "data" / "selection_labels.json"
TODAY = date(2026, 6, 15)  # the snapshot's month: its expiration dates are read against it
#: price factors, cycled over the catalog's models in document order
SHIFTS = (Decimal("0.3"), Decimal("0.6"), Decimal("1"), Decimal("1.7"), Decimal("3"))
_PRICE_KEYS = ("prompt", "completion")

Document = dict[str, Any]


def _shifted(document: Document) -> Document:
    derived = copy.deepcopy(document)
    for position, model in enumerate(derived["data"]):
        pricing = model["pricing"]
        for key in _PRICE_KEYS:
            if key in pricing and pricing[key] not in ("-1", "0"):
                pricing[key] = format(Decimal(pricing[key]) * SHIFTS[position % len(SHIFTS)], "f")
    return derived


def _no_flagships(document: Document) -> Document:
    flagships = {m.id for m in parse_catalog(document) if m.tier == "flagship"}
    derived = copy.deepcopy(document)
    derived["data"] = [m for m in derived["data"] if m["id"] not in flagships]
    return derived


def _real(document: Document) -> Document:
    return document


DERIVATIONS: dict[str, Callable[[Document], Document]] = {
    "real": _real, "shifted": _shifted, "no-flagships": _no_flagships}


@pytest.fixture(scope="module")
def labels() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(LABELS.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def documents(catalog_path: Path) -> dict[str, Document]:
    real: Document = json.loads(catalog_path.read_bytes())
    return {name: derive(real) for name, derive in DERIVATIONS.items()}


def _problems(label: dict[str, Any], result: SelectionResult, strategy: str, raw: dict[str, Document],
              labels: dict[str, Any]) -> list[str]:
    """What a person would object to in ``result`` (empty: nothing). The primary's tier is the
    default strategy's business: quality-first may answer "hello" with a flagship, cost-optimized
    a hard question with a standard model - that is what their users asked for."""
    families = labels["families"]
    forbidden = re.compile(labels["forbidden"]["pattern"])
    found = []
    if result.complexity not in label["complexity"]:
        found.append(f"complexity {result.complexity}, expected one of {label['complexity']}")
    tiers = label.get("primary_tiers") if strategy == "balanced" else None
    if tiers and result.tier not in tiers:
        found.append(f"primary {result.primary} is {result.tier}, expected one of {tiers}")
    for model_id in result.chain:
        outputs = raw[model_id].get("architecture", {}).get("output_modalities") or ["text"]
        if outputs != ["text"] or forbidden.search(model_id):
            found.append(f"{model_id} is forbidden for a text request (outputs {outputs})")
            continue
        accepted = [name for name in label["accept"]
                    if re.search(families[name]["match"], model_id)
                    and not re.search(families[name].get("except", "(?!)"), model_id)]
        if not accepted:
            found.append(f"{model_id} is in none of the families {label['accept']}")
    return found


def test_the_set_has_enough_prompts(labels: dict[str, Any]) -> None:
    prompts = labels["prompts"]
    assert len(prompts) >= 60
    assert len({p["prompt"] for p in prompts}) == len(prompts)
    assert all(set(p["accept"]) <= labels["families"].keys() for p in prompts)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", list(DERIVATIONS))
def test_labelled_prompts_get_acceptable_models(name: str, strategy: str, documents: dict[str, Document],
                                                labels: dict[str, Any]) -> None:
    document = documents[name]
    catalog = parse_catalog(document)
    raw = {m["id"]: m for m in document["data"]}
    selector = Selector(catalog, today=TODAY)
    failures = []
    for label in labels["prompts"]:
        request = SelectionRequest(prompt=label["prompt"], strategy=strategy,
                                   capabilities=frozenset(label.get("capabilities", ())))
        result = selector.select(request)
        for problem in _problems(label, result, strategy, raw, labels):
            failures.append(f"{label['prompt'][:60]!r} -> {result.chain}: {problem}")
    assert not failures, f"{len(failures)} problems on the {name} catalog ({strategy}):\n" + "\n".join(failures)


def test_derived_catalogs_differ_from_the_real_one(documents: dict[str, Document]) -> None:
    real = parse_catalog(documents["real"])
    shifted = parse_catalog(documents["shifted"])
    smaller = parse_catalog(documents["no-flagships"])
    assert sum(a.tier != b.tier for a, b in zip(real, shifted, strict=True)) > len(real) // 4
    assert len(smaller) < len(real) and "anthropic/claude-opus-4.5" not in smaller
