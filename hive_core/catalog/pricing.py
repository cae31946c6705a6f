"""Model prices as exact decimals, and the cost of one request from its token counts.

OpenRouter's ``pricing`` object holds decimal *strings* in USD **per token** (per unit for
``request``, ``image`` and ``web_search``). Prices are parsed with :class:`~decimal.Decimal`, never
``float``: the strings carry float noise (``"0.00000018000000000000002"``) that is kept exactly, and
only the display helpers round it away. A missing key means 0 (2026 catalogs omit zero prices,
2025 catalogs spell them ``"0"``). ``"-1"`` for ``prompt`` or ``completion`` marks a router
meta-model (``openrouter/auto``) whose price depends on the model it routes to: the price is
unknown, not negative, so :attr:`Pricing.variable` is set, the unknown fields are stored as 0 and
:func:`estimate_cost` returns ``None``. ``discount`` and ``overrides`` are ignored: the top-level
keys always show the price that applies now.

How :func:`estimate_cost` bills one request (mirrors OpenRouter's usage accounting):

* ``prompt_tokens`` counts every input token, cached and cache-written ones included;
  ``completion_tokens`` counts every output token, reasoning tokens included.
* Reasoning tokens are billed at ``internal_reasoning`` when that price is non-zero, else at the
  completion price; the rest of the completion at the completion price.
* Cached prompt tokens are billed at ``input_cache_read`` when non-zero, else at the prompt price.
* Cache-write tokens are billed at ``input_cache_write`` when non-zero (that price already includes
  the write premium, so those tokens are not billed at the prompt price as well), else at the
  prompt price. The remaining prompt tokens are billed at the prompt price.
* On top: ``request`` per request, ``image`` per input image, ``web_search`` per web search.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Protocol

from hive_core.errors import CatalogError

__all__ = ["ZERO", "PriceBook", "Pricing", "estimate_cost", "per_million", "per_thousand"]

ZERO = Decimal(0)
_VARIABLE = Decimal(-1)
#: significant digits kept by the display helpers: enough for any real price, drops float noise
_DISPLAY_DIGITS = 12


def _price(key: str, value: object) -> Decimal:
    """One price value as a Decimal; strings as served, numbers tolerated (via ``str``, not binary)."""
    if value is None or value == "":
        return ZERO
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise CatalogError(f"price {key!r} is not a number: {value!r}")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise CatalogError(f"price {key!r} is not a decimal: {value!r}") from None
    if not price.is_finite() or (price < 0 and price != _VARIABLE):
        raise CatalogError(f"price {key!r} is not a valid price: {value!r}")
    return price


@dataclass(frozen=True, slots=True)
class Pricing:
    """Prices of one model in USD per token (per unit for request/image/web_search). Missing = 0."""

    prompt: Decimal = ZERO
    completion: Decimal = ZERO
    request: Decimal = ZERO
    image: Decimal = ZERO
    web_search: Decimal = ZERO
    internal_reasoning: Decimal = ZERO
    input_cache_read: Decimal = ZERO
    input_cache_write: Decimal = ZERO
    #: True when prompt or completion was "-1" (router meta-models): the real price is unknown
    variable: bool = False

    @classmethod
    def from_openrouter(cls, pricing: Mapping[str, object]) -> Pricing:
        """Parse an OpenRouter ``pricing`` object (either era); raises :class:`CatalogError`."""
        values = {name: _price(name, pricing.get(name)) for name in _PRICE_FIELDS}
        variable = any(value == _VARIABLE for value in values.values())
        if variable:
            # "-1" is "unknown", never a negative price: keep it out of every sum.
            values = {name: (ZERO if value == _VARIABLE else value) for name, value in values.items()}
        return cls(**values, variable=variable)

    @property
    def is_zero(self) -> bool:
        """Every price is 0 (a free model); never true for a variable-priced router."""
        return not self.variable and all(getattr(self, name) == ZERO for name in _PRICE_FIELDS)

    @property
    def per_1k(self) -> Decimal:
        """Prompt plus completion price per 1k tokens: the unit of ``--max-cost``."""
        return (self.prompt + self.completion) * 1000


_PRICE_FIELDS = (
    "prompt", "completion", "request", "image", "web_search",
    "internal_reasoning", "input_cache_read", "input_cache_write",
)


class _Priced(Protocol):
    @property
    def pricing(self) -> Pricing: ...


class PriceBook(Protocol):
    """Anything that looks up a model's prices by id (:class:`hive_core.catalog.catalog.Catalog`);
    ``get`` raises :class:`~hive_core.errors.UnknownModel` for an id it does not know. The budget's
    estimates and the client's costs take one, so neither imports the catalog itself."""

    def get(self, model_id: str) -> _Priced: ...


def estimate_cost(
    pricing: Pricing,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    reasoning_tokens: int = 0,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    images: int = 0,
    web_searches: int = 0,
    requests: int = 1,
) -> Decimal | None:
    """USD cost of a request under the billing rules in the module docstring; ``None`` when the
    price is variable. Raises ``ValueError`` for negative counts or parts larger than their whole."""
    counts = (prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens,
              cache_write_tokens, images, web_searches, requests)
    if min(counts) < 0:
        raise ValueError("token and unit counts must be >= 0")
    if reasoning_tokens > completion_tokens:
        raise ValueError("reasoning_tokens are part of completion_tokens and cannot exceed them")
    if cached_tokens + cache_write_tokens > prompt_tokens:
        raise ValueError("cached and cache-write tokens are part of prompt_tokens and cannot exceed them")
    if pricing.variable:
        return None
    p = pricing
    reasoning_price = p.internal_reasoning or p.completion
    cache_read_price = p.input_cache_read or p.prompt
    cache_write_price = p.input_cache_write or p.prompt
    plain_prompt = prompt_tokens - cached_tokens - cache_write_tokens
    return (
        plain_prompt * p.prompt
        + cached_tokens * cache_read_price
        + cache_write_tokens * cache_write_price
        + (completion_tokens - reasoning_tokens) * p.completion
        + reasoning_tokens * reasoning_price
        + requests * p.request
        + images * p.image
        + web_searches * p.web_search
    )


def _tidy(value: Decimal) -> Decimal:
    """Round to display precision (drops float noise) and strip trailing zeros, no exponent."""
    with localcontext() as ctx:
        ctx.prec = _DISPLAY_DIGITS
        ctx.rounding = ROUND_HALF_EVEN
        rounded = +value
    if rounded == rounded.to_integral_value():
        return rounded.quantize(Decimal(1))
    normal = rounded.normalize()
    return normal if normal.as_tuple().exponent < 0 else normal.quantize(Decimal(1))  # type: ignore[operator]


def per_million(price: Decimal) -> Decimal:
    """A per-token price per 1M tokens, float noise removed: ``0.0000025`` -> ``2.5``."""
    return _tidy(price * 1_000_000)


def per_thousand(price: Decimal) -> Decimal:
    """A per-token price per 1k tokens, float noise removed: ``0.0000025`` -> ``0.0025``."""
    return _tidy(price * 1000)
