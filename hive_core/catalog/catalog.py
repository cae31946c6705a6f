"""The model catalog: OpenRouter ``/models`` documents of every era as a compact, typed table.

Accepted documents: ``{"data": [model, ...]}`` (any extra root keys such as ``total_count``) or a
bare list. Per model, only the fields Hive uses are read and unknown fields are ignored, so newer
responses keep parsing. Both price eras parse the same way (see :mod:`hive_core.catalog.pricing`): 2025-style
entries spell every price (zeros as ``"0"``), 2026-style ones omit zero prices, use ``"-1"`` for
routers and add ``reasoning``, ``benchmarks`` and ``expiration_date``.

Required per model: ``id``, ``name``, ``context_length`` (may be null) and ``pricing`` with ``prompt``
and ``completion``; a missing one is a :class:`CatalogError` naming the model. Tiers come from
:mod:`hive_core.catalog.tiers`, capabilities from :mod:`hive_core.catalog.capabilities`, specialties
(audio/image output, guard, research, tool- or code-specialised) from :mod:`hive_core.catalog.specialties`.
A root key :data:`FETCHED_AT_KEY`, written by :mod:`hive_core.catalog.fetch`, says when Hive fetched it.

Implicit use: routers (``"-1"`` priced or the ``openrouter/*`` router family), aliases (``~author/...``,
which point at another entry), expired models and free models (``:free`` or all prices zero) are
never chosen by the selector unless the caller allows them; :attr:`ModelInfo.implicit` says which.

:func:`load_catalog` reads the file ``hive models sync`` writes (the raw ``/models`` JSON,
``DataDir.catalog_file``); given the data directory's cache folder (``DataDir.cache``), the parsed
table is cached there as JSON (:mod:`hive_core.store.filecache`), so loading takes a few ms instead of ~30.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hive_core.catalog.capabilities import static_capabilities
from hive_core.catalog.names import close_matches, resolve_model_id
from hive_core.catalog.pricing import Pricing
from hive_core.catalog.specialties import output_modalities, specialty
from hive_core.catalog.tiers import TIER_RANK, TierThresholds
from hive_core.catalog.variants import shortcut_of, shortcut_pricing
from hive_core.errors import CatalogError, CatalogMissing, UnknownModel
from hive_core.store.datadir import is_remote
from hive_core.store.filecache import cached_parse

__all__ = ["FETCHED_AT_KEY", "Catalog", "ModelInfo", "load_catalog", "parse_catalog"]

#: the root key where Hive records when it fetched the document (ISO 8601, UTC); OpenRouter has no such key
FETCHED_AT_KEY = "hive_fetched_at"
#: bump when ModelInfo, the parse rules or the cache rows (_encode/_decode) change: stale caches are ignored
_CACHE_VERSION = 4
_REQUIRED = ("id", "name", "context_length", "pricing")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model of the catalog. Prices are exact USD per token (see :class:`Pricing`)."""

    id: str
    name: str
    provider: str
    context_length: int
    max_completion_tokens: int | None
    pricing: Pricing
    input_modalities: tuple[str, ...]
    supported_parameters: tuple[str, ...]
    expiration_date: date | None
    is_free: bool
    is_router: bool
    tier: str
    capabilities: frozenset[str]
    intelligence_index: float | None = None
    coding_index: float | None = None
    #: when OpenRouter added the model, Unix seconds (older documents may lack it)
    created: int | None = None
    #: what it answers with (``architecture.output_modalities``)
    output_modalities: tuple[str, ...] = ("text",)
    #: what it is for when it is not a general text model (:mod:`hive_core.catalog.specialties`)
    specialty: str | None = None

    @property
    def is_alias(self) -> bool:
        """``~author/model-latest``: an alias of another catalog entry."""
        return self.id.startswith("~")

    @property
    def tier_rank(self) -> int:
        """0 (economy) .. 3 (flagship)."""
        return TIER_RANK[self.tier]

    def expired(self, today: date) -> bool:
        """The model's deprecation date has been reached."""
        return self.expiration_date is not None and self.expiration_date <= today

    def implicit(self, today: date, *, allow_free: bool = False) -> bool:
        """May the selector choose this model without the caller naming it?"""
        if self.is_router or self.is_alias or self.expired(today):
            return False
        return allow_free or not self.is_free


class Catalog:
    """The parsed catalog: iteration in document order, lookup by id (or by the name a person
    types, :meth:`resolve`), tier boundaries, and when Hive fetched it (``None`` for a document
    Hive did not fetch, e.g. one copied in by hand: see :mod:`hive_core.catalog.fetch`).

    ``get`` and ``resolve`` also answer an id with an OpenRouter routing shortcut (``...:nitro``,
    :mod:`hive_core.catalog.variants`): its model under that id, at its price (``:online`` adds
    the web search), so the budget and the cost estimates need not know about shortcuts. Iteration,
    ``len`` and ``in`` are the catalog's own entries only: the selector never picks a shortcut."""

    __slots__ = ("_by_id", "_variants", "fetched_at", "models", "thresholds")

    def __init__(self, models: Sequence[ModelInfo], thresholds: TierThresholds,
                 fetched_at: datetime | None = None) -> None:
        self.models: tuple[ModelInfo, ...] = tuple(models)
        self.thresholds = thresholds
        self.fetched_at = fetched_at
        self._by_id = {m.id: m for m in self.models}
        #: the routing-shortcut ids asked for so far (built once each: the budget and the client's
        #: costs look a request's model up several times)
        self._variants: dict[str, ModelInfo] = {}

    def get(self, model_id: str) -> ModelInfo:
        """The model with this id (or a routing shortcut of one); raises :class:`UnknownModel`
        (with close matches as the hint)."""
        try:
            return self._by_id[model_id]
        except KeyError:
            found = self._variant(model_id)
            if found is not None:
                return found
            close = close_matches(model_id, self._by_id)
            hint = f"did you mean {', '.join(close)}?" if close else "see `hive models list`"
            raise UnknownModel(model_id, hint) from None

    def _variant(self, model_id: str) -> ModelInfo | None:
        """``base:shortcut`` as a model of its own: the base's entry under that id and price."""
        known = self._variants.get(model_id)
        if known is not None:
            return known
        found = shortcut_of(model_id, self._by_id)
        if found is None:
            return None
        base, shortcut = found
        pricing = shortcut_pricing(base.pricing, shortcut)
        # a free model's web search is billed all the same
        variant = replace(base, id=model_id, pricing=pricing, is_free=base.is_free and pricing == base.pricing)
        self._variants[model_id] = variant
        return variant

    def resolve(self, name: str) -> ModelInfo:
        """The model a person means by ``name``: its id, or its short name without the provider
        (``gpt-4o-mini``); raises :class:`UnknownModel` when it is ambiguous or unknown, saying
        what was meant (see :mod:`hive_core.catalog.names`)."""
        return self.get(resolve_model_id(name, self._by_id))

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._by_id

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def list_models(
        self, *, tier: str | None = None, capabilities: Iterable[str] = (), provider: str | None = None
    ) -> list[ModelInfo]:
        """Models matching every filter given (tier, all capabilities, provider), in catalog order."""
        need = frozenset(capabilities)
        return [
            m for m in self.models
            if (tier is None or m.tier == tier)
            and need <= m.capabilities
            and (provider is None or m.provider == provider)
        ]


def _fail(model_id: str, message: str) -> CatalogError:
    return CatalogError(f"catalog model {model_id!r}: {message}")


def _int_or_none(model_id: str, field: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(model_id, f"{field} is not a number: {value!r}")
    return int(value)


def _strings(model_id: str, field: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(model_id, f"{field} is not a list of strings")
    return tuple(value)


def _expiration(model_id: str, value: object) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise _fail(model_id, f"expiration_date is not a date: {value!r}") from None


def _index(benchmarks: object, key: str) -> float | None:
    if not isinstance(benchmarks, Mapping):
        return None
    analysis = benchmarks.get("artificial_analysis")
    value = analysis.get(key) if isinstance(analysis, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _modalities(model_id: str, architecture: object) -> tuple[str, ...]:
    if not isinstance(architecture, Mapping):
        return ("text",)
    if architecture.get("input_modalities") is not None:
        return _strings(model_id, "architecture.input_modalities", architecture["input_modalities"])
    # Older documents only have "modality": "text+image->text".
    modality = architecture.get("modality")
    if isinstance(modality, str) and "->" in modality:
        return tuple(modality.split("->", 1)[0].split("+"))
    return ("text",)


def parse_catalog(document: object) -> Catalog:
    """Parse a ``/models`` document (either era); raises :class:`CatalogError` naming the model."""
    entries = document.get("data") if isinstance(document, Mapping) else document
    if not isinstance(entries, list):
        raise CatalogError("catalog document has no 'data' list of models")
    rows = []
    for position, raw in enumerate(entries):
        if not isinstance(raw, Mapping):
            raise CatalogError(f"catalog entry #{position} is not an object")
        model_id = raw.get("id")
        if not isinstance(model_id, str) or not model_id:
            raise CatalogError(f"catalog entry #{position} has no 'id'")
        missing = [f for f in _REQUIRED if f not in raw]
        if missing:
            raise _fail(model_id, f"missing required field {', '.join(missing)}")
        pricing_raw = raw["pricing"]
        if not isinstance(pricing_raw, Mapping) or not {"prompt", "completion"} <= pricing_raw.keys():
            raise _fail(model_id, "pricing needs 'prompt' and 'completion'")
        try:
            pricing = Pricing.from_openrouter(pricing_raw)
        except CatalogError as exc:
            raise _fail(model_id, str(exc)) from None
        rows.append((raw, model_id, pricing))
    thresholds = TierThresholds.from_prices(p for _raw, _id, p in rows)
    fetched_at = _fetched_at(document.get(FETCHED_AT_KEY) if isinstance(document, Mapping) else None)
    return Catalog([_model(raw, model_id, pricing, thresholds) for raw, model_id, pricing in rows], thresholds,
                   fetched_at)


def _fetched_at(value: object) -> datetime | None:
    """The recorded fetch time; a missing or unreadable one is ``None`` (an unmanaged copy)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _model(raw: Mapping[str, object], model_id: str, pricing: Pricing, thresholds: TierThresholds) -> ModelInfo:
    top = raw.get("top_provider")
    top = top if isinstance(top, Mapping) else {}
    context = _int_or_none(model_id, "context_length", raw["context_length"])
    if context is None:
        context = _int_or_none(model_id, "top_provider.context_length", top.get("context_length")) or 0
    architecture = raw.get("architecture")
    params = _strings(model_id, "supported_parameters", raw.get("supported_parameters"))
    modalities = _modalities(model_id, architecture)
    tokenizer = architecture.get("tokenizer") if isinstance(architecture, Mapping) else None
    provider = model_id.split("/", 1)[0].lstrip("~")
    is_router = pricing.variable or (provider == "openrouter" and tokenizer == "Router")
    tier = thresholds.tier_of(pricing)
    coding_index = _index(raw.get("benchmarks"), "coding_index")
    description = raw.get("description")
    description = description if isinstance(description, str) else ""
    name = raw["name"]
    if not isinstance(name, str):
        raise _fail(model_id, "name is not a string")
    outputs = output_modalities(architecture)
    return ModelInfo(
        id=model_id,
        name=name,
        provider=provider,
        context_length=context,
        max_completion_tokens=_int_or_none(model_id, "top_provider.max_completion_tokens",
                                           top.get("max_completion_tokens")),
        pricing=pricing,
        input_modalities=modalities,
        supported_parameters=params,
        expiration_date=_expiration(model_id, raw.get("expiration_date")),
        is_free=model_id.endswith(":free") or pricing.is_zero,
        is_router=is_router,
        tier=tier,
        capabilities=static_capabilities(
            model_id=model_id, name=name, description=description,
            context_length=context, input_modalities=modalities, supported_parameters=params,
            has_reasoning_object=isinstance(raw.get("reasoning"), Mapping), tier=tier, coding_index=coding_index,
        ),
        intelligence_index=_index(raw.get("benchmarks"), "intelligence_index"),
        coding_index=coding_index,
        created=_int_or_none(model_id, "created", raw.get("created")),
        output_modalities=outputs,
        specialty=specialty(model_id=model_id, name=name, description=description, outputs=outputs),
    )


def _parse_file(path: Path) -> Catalog:
    try:
        document = json.loads(path.read_bytes())
    except ValueError as exc:
        raise CatalogError(f"{path} is not JSON ({exc}): run `hive models sync` again") from exc
    return parse_catalog(document)


def _encode(catalog: Catalog) -> list[Any]:
    """The catalog as plain JSON values for the parse cache.

    One row per model in ModelInfo's field order; the pricing, modalities, parameters and
    capabilities are indexes into tables of their distinct values (most models share them: the
    cache is a third the size, loads faster, and the loaded models share those objects).
    """
    tables: dict[str, dict[tuple[Any, ...], int]] = {name: {} for name in _SHARED}

    def ref(name: str, value: tuple[Any, ...]) -> int:
        return tables[name].setdefault(value, len(tables[name]))

    rows = [
        [m.id, m.name, m.provider, m.context_length, m.max_completion_tokens,
         ref("pricing", (*(str(getattr(m.pricing, f)) for f in _PRICE_FIELDS), m.pricing.variable)),
         ref("modalities", m.input_modalities), ref("parameters", m.supported_parameters),
         None if m.expiration_date is None else m.expiration_date.isoformat(),
         m.is_free, m.is_router, m.tier, ref("capabilities", tuple(sorted(m.capabilities))),
         m.intelligence_index, m.coding_index, m.created, ref("modalities", m.output_modalities), m.specialty]
        for m in catalog.models
    ]
    th = catalog.thresholds
    fetched = None if catalog.fetched_at is None else catalog.fetched_at.isoformat()
    return [[str(th.standard), str(th.premium), str(th.flagship)],
            [[list(value) for value in tables[name]] for name in _SHARED], rows, fetched]


def _decode(value: Any) -> Catalog:
    """The inverse of :func:`_encode` (a malformed cache raises; the caller then parses the file)."""
    (standard, premium, flagship), (pricings, modalities, parameters, capabilities), rows, fetched = value
    decimals: dict[str, Decimal] = {}

    def dec(text: str) -> Decimal:
        found = decimals.get(text)
        if found is None:
            found = decimals[text] = Decimal(text)
        return found

    prices = [Pricing(dec(p[0]), dec(p[1]), dec(p[2]), dec(p[3]), dec(p[4]), dec(p[5]), dec(p[6]), dec(p[7]), p[8])
              for p in pricings]
    mods, params, caps = [tuple(m) for m in modalities], [tuple(p) for p in parameters], list(map(frozenset, capabilities))
    models = [
        ModelInfo(r[0], r[1], r[2], r[3], r[4], prices[r[5]], mods[r[6]], params[r[7]],
                  None if r[8] is None else date.fromisoformat(r[8]), r[9], r[10], r[11], caps[r[12]],
                  r[13], r[14], r[15], mods[r[16]], r[17])
        for r in rows
    ]
    return Catalog(models, TierThresholds(dec(standard), dec(premium), dec(flagship)), _fetched_at(fetched))


#: Pricing's decimal fields in its constructor's order (``variable`` follows them; _decode spells all 9)
_PRICE_FIELDS = tuple(name for name in Pricing.__slots__ if name != "variable")
#: the tables of shared values in a cached catalog, in their order
_SHARED = ("pricing", "modalities", "parameters", "capabilities")


def load_catalog(path: Path | str, *, cache_dir: Path | None = None) -> Catalog:
    """The catalog cached by ``hive models sync``; :class:`CatalogMissing` when there is none.

    ``cache_dir`` (``DataDir.cache``: inside the data directory) keeps the parsed table for the
    next load; without it the file is parsed every time. Never give a folder others can write.
    """
    where: Path = path if is_remote(path) else Path(path)  # type: ignore[assignment]  # an ObjectPath stays one
    try:
        return cached_parse(where, _CACHE_VERSION, _parse_file, cache_dir=cache_dir, encode=_encode, decode=_decode)
    except FileNotFoundError:
        raise CatalogMissing(path) from None
