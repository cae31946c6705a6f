"""OpenRouter's routing shortcuts: ``:nitro``, ``:floor`` and ``:online`` after a model id.

Some variants are models of their own, listed in the catalog with their own prices (``:free``,
``:thinking``, ``:exacto``, ``:extended``: the variants the protocol fact sheet has seen). The
routing shortcuts are not: OpenRouter accepts them after any id as a routing instruction for that
same model - ``:nitro`` sorts its providers by throughput, ``:floor`` by price, ``:online`` adds
the web search plugin - and answers as the model itself (the response's ``model`` is the id
without the shortcut). So ``base:shortcut`` goes out as written and is priced and budgeted as
``base`` (:func:`shortcut_pricing`; its spend counts in ``base``'s budget scope), where ``base`` is
a catalog id (itself possibly a catalog variant: ``openai/gpt-oss-20b:free:online``). One shortcut
per id: the catalog is the judge of the rest, and an unknown suffix stays an unknown model.

``:online`` costs more than its model: the web plugin bills per request ($4 per 1000 results,
5 results by default: $0.02), or the model's own ``web_search`` price where the provider
searches natively. :func:`shortcut_pricing` adds the larger of the two to the per-request price,
so a reservation's maximum holds it; the results' few thousand prompt tokens are not added
(the request's billed cost, which settles the reservation, has them).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # a light module: the budget's scopes import it on every request's path
    from collections.abc import Mapping

    from hive_core.catalog.pricing import Pricing

__all__ = ["ONLINE_SEARCH_USD", "ROUTING_SHORTCUTS", "shortcut_of", "shortcut_pricing", "split_shortcut"]

T = TypeVar("T")

#: the suffixes OpenRouter accepts after any model id as a routing instruction
ROUTING_SHORTCUTS = frozenset({"nitro", "floor", "online"})
#: what the web plugin bills per request by default: 5 results at $4 per 1000
ONLINE_SEARCH_USD = Decimal("0.02")


def split_shortcut(model_id: str) -> tuple[str, str] | None:
    """``(base, shortcut)`` for ``base:shortcut`` with a routing shortcut; ``None`` otherwise."""
    base, colon, suffix = model_id.rpartition(":")
    if not colon or not base or suffix not in ROUTING_SHORTCUTS:
        return None
    return base, suffix


def shortcut_of(model_id: str, known: Mapping[str, T]) -> tuple[T, str] | None:
    """``(base's entry in known, shortcut)`` for ``base:shortcut`` with a routing shortcut and a
    known base; ``None`` otherwise."""
    shortcut = split_shortcut(model_id)
    base = known.get(shortcut[0]) if shortcut is not None else None
    if shortcut is None or base is None:
        return None
    return base, shortcut[1]


def shortcut_pricing(pricing: Pricing, shortcut: str) -> Pricing:
    """The prices of ``base:shortcut`` given the base's: the same, except ``:online``'s web search
    on every request (see the module docstring)."""
    if shortcut != "online" or pricing.variable:
        return pricing
    return replace(pricing, request=pricing.request + max(pricing.web_search, ONLINE_SEARCH_USD))
