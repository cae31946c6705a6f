"""The catalog the emulator serves: the file's bytes for ``/models`` and an index of models by id.

As OpenRouter does, a catalog id followed by a routing shortcut (``:nitro``, ``:floor``,
``:online``: :mod:`hive_core.catalog.variants`) is that model: it answers under the model's own id,
and ``:online`` bills its web search on top.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hive_core.catalog.pricing import Pricing
from hive_core.catalog.variants import shortcut_of, shortcut_pricing
from hive_core.errors import CatalogError

__all__ = ["Catalog", "ModelInfo", "provider_for"]

#: model author -> the provider name OpenRouter reports for it (real names seen in traffic)
PROVIDERS: dict[str, str] = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google",
    "x-ai": "xAI",
    "mistralai": "Mistral",
    "deepseek": "DeepSeek",
    "qwen": "Alibaba",
    "minimax": "Minimax",
    "meta-llama": "DeepInfra",
    "cohere": "Cohere",
    "amazon": "Amazon Bedrock",
    "microsoft": "Azure",
    "moonshotai": "Moonshot AI",
    "z-ai": "Z.AI",
    "perplexity": "Perplexity",
    "nvidia": "Nvidia",
    "ai21": "AI21",
    "inflection": "Inflection",
    "liquid": "Liquid",
}

#: what a router model ("-1" prices) is served by, first one present in the catalog wins
ROUTER_TARGETS = ("openai/gpt-4o-mini", "openai/gpt-5-mini", "google/gemini-2.5-flash-lite")


def provider_for(model_id: str) -> str:
    """The provider name for a model id, from its author (``openai/...`` -> ``OpenAI``)."""
    author = model_id.split("/", 1)[0].lstrip("~")
    return PROVIDERS.get(author) or author.replace("-", " ").title()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the emulator needs to know about one catalog model."""

    id: str
    provider: str
    pricing: Pricing
    max_completion_tokens: int | None
    context_length: int | None
    reasoning: bool
    #: ``supported_parameters``: what its endpoints accept (``tools`` ...)
    parameters: frozenset[str] = frozenset()
    #: ``architecture.input_modalities`` (``text``, ``image`` ...)
    input_modalities: frozenset[str] = frozenset({"text"})

    @property
    def is_router(self) -> bool:
        """Variable-price router (``openrouter/auto`` ...): prices are ``"-1"``."""
        return self.pricing.variable

    @property
    def is_free(self) -> bool:
        """Every price is 0 (``:free`` variants): billed 0."""
        return self.pricing.is_zero

    @classmethod
    def from_catalog(cls, raw: dict[str, Any]) -> ModelInfo:
        """From one ``data[]`` entry of a ``/models`` document."""
        try:
            pricing = Pricing.from_openrouter(raw.get("pricing") or {})
        except CatalogError:
            pricing = Pricing()  # an unparseable price bills 0 rather than failing the whole catalog
        top = raw.get("top_provider") or {}
        parameters = frozenset(str(p) for p in raw.get("supported_parameters") or [])
        modalities = (raw.get("architecture") or {}).get("input_modalities") or ["text"]
        return cls(
            id=str(raw["id"]),
            provider=provider_for(str(raw["id"])),
            pricing=pricing,
            max_completion_tokens=top.get("max_completion_tokens"),
            context_length=raw.get("context_length"),
            reasoning="reasoning" in parameters,
            parameters=parameters,
            input_modalities=frozenset(str(m) for m in modalities),
        )


class Catalog:
    """The served catalog: ``raw`` is returned byte for byte; ``get`` looks models up by id."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        doc = json.loads(raw)
        self.models: dict[str, ModelInfo] = {
            m["id"]: ModelInfo.from_catalog(m) for m in doc.get("data", []) if "id" in m
        }
        self._router_target = self._pick_router_target()

    @classmethod
    def from_path(cls, path: str | Path) -> Catalog:
        """Read a saved ``/models`` JSON file."""
        return cls(Path(path).read_bytes())

    def get(self, model_id: str) -> ModelInfo | None:
        """The model with this exact id (or a routing shortcut of one, at its price), or ``None``."""
        model = self.models.get(model_id)
        if model is not None:
            return model
        found = shortcut_of(model_id, self.models)
        if found is None:
            return None
        base, shortcut = found
        return replace(base, pricing=shortcut_pricing(base.pricing, shortcut))

    def resolve(self, model: ModelInfo) -> ModelInfo:
        """The model that actually serves a request: routers pick a fixed cheap concrete model, as
        OpenRouter reports the routed-to model in the response's ``model``."""
        return self._router_target if model.is_router and self._router_target else model

    def _pick_router_target(self) -> ModelInfo | None:
        for model_id in ROUTER_TARGETS:
            if model_id in self.models:
                return self.models[model_id]
        priced = [m for m in self.models.values() if not m.is_router and not m.is_free]
        return min(priced, key=lambda m: (m.pricing.completion, m.id)) if priced else None
