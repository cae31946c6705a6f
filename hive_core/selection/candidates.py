"""The selector's constraints as bitsets over the catalog: which models may serve a request.

Bit ``i`` stands for ``catalog.models[i]``. Each constraint is one precomputed integer (per
capability, tier and provider), one prefix of the models sorted by price (``--max-cost``) or one
suffix of them sorted by context length, so filtering 339 models is a handful of big-integer ANDs.
Constraints apply in a fixed order and the first one that leaves nothing is named in
:class:`NoCandidates`, with how many models it removed and what would have fitted.

An implicit choice (no ``--allow`` list) also keeps only models suited to the request: general text
models, plus code-specialised ones for code work and tool-specialised ones when tools are needed
(:func:`specialties_wanted`); audio/image-output, guard and research models only when named
(:mod:`hive_core.catalog.specialties` says which model is which, from its catalog entry).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from decimal import Decimal

from hive_core.catalog.capabilities import CAPABILITIES
from hive_core.catalog.catalog import ModelInfo
from hive_core.catalog.pricing import per_thousand
from hive_core.catalog.specialties import SPECIALTIES
from hive_core.catalog.tiers import TIERS
from hive_core.errors import ConfigError, NoCandidates

__all__ = ["CODE_TASKS", "CandidateIndex", "bits_of", "specialties_wanted"]

#: the task types that are code work (code-specialised models may serve them)
CODE_TASKS = frozenset({"code-generation", "code-analysis"})
#: what the "suited" step is called when it removes the last candidate
#: how many capability sets :meth:`CandidateIndex.capable` remembers (the same few come back)
_MEMO_SIZE = 1024
SUITED_LABEL = "text models suited to the request (no audio/image output, guard, research, code- or tool-specialised models unless asked)"


def specialties_wanted(task: str, capabilities: frozenset[str]) -> frozenset[str]:
    """The specialties a request may get without naming a model: ``code`` for code tasks or the
    ``programming`` capability, ``tools`` when it needs the ``tools`` capability."""
    wanted = set()
    if task in CODE_TASKS or "programming" in capabilities:
        wanted.add("code")
    if "tools" in capabilities:
        wanted.add("tools")
    return frozenset(wanted)


def bits_of(indices: Iterable[int]) -> int:
    """The bitset with bit ``i`` set for every ``i``."""
    out = 0
    for i in indices:
        out |= 1 << i
    return out


class CandidateIndex:
    """Constraint bitsets of one catalog (with its effective capabilities) on one day."""

    def __init__(self, models: Sequence[ModelInfo], capabilities: Sequence[frozenset[str]], today: date) -> None:
        self.models = models
        self.index = {m.id: i for i, m in enumerate(models)}
        everyone = range(len(models))
        # One pass over the models sets each one's bit in every set it belongs to (a pass per set
        # was ~25 passes: most of building a selector, which `hive models recommend` does once).
        implicit = implicit_free = general = 0
        capability = dict.fromkeys(CAPABILITIES, 0)
        tier = [0] * len(TIERS)
        specialty = dict.fromkeys(SPECIALTIES, 0)
        self.provider: dict[str, int] = {}
        for i, model in enumerate(models):
            bit = 1 << i
            if model.implicit(today):
                implicit |= bit
            if model.implicit(today, allow_free=True):
                implicit_free |= bit
            for name in capabilities[i]:
                if name in capability:
                    capability[name] |= bit
            tier[model.tier_rank] |= bit
            if model.specialty is None:
                general |= bit
            elif model.specialty in specialty:
                specialty[model.specialty] |= bit
            self.provider[model.provider] = self.provider.get(model.provider, 0) | bit
        self.implicit, self.implicit_free, self.general = implicit, implicit_free, general
        self.capability, self.tier, self.specialty = capability, tier, specialty
        self._at_least = [_or(self.tier[r:]) for r in range(len(TIERS))]
        # per set of specialties / of needed capabilities: the same few sets come back on every request
        self._suited: dict[frozenset[str], int] = {}
        self._capable: dict[frozenset[str], int] = {}
        # Routers have no price: they never pass --max-cost.
        priced = sorted((i for i in everyone if not models[i].pricing.variable),
                        key=lambda i: models[i].pricing.per_1k)
        self._cost_keys = [models[i].pricing.per_1k for i in priced]
        self._cost_prefix = [0]
        for i in priced:
            self._cost_prefix.append(self._cost_prefix[-1] | 1 << i)
        by_context = sorted(everyone, key=lambda i: models[i].context_length)
        self._context_keys = [models[i].context_length for i in by_context]
        self._context_suffix = [0] * (len(by_context) + 1)
        for k in range(len(by_context) - 1, -1, -1):
            self._context_suffix[k] = self._context_suffix[k + 1] | 1 << by_context[k]

    def named(self, ids: Iterable[str]) -> int:
        """Bits of the given ids (unknown ids contribute nothing)."""
        index = self.index
        return bits_of(index[m] for m in ids if m in index)

    def cheaper_than(self, max_per_1k: Decimal) -> int:
        """Models whose prompt + completion price per 1k tokens is <= ``max_per_1k`` USD."""
        return self._cost_prefix[bisect_right(self._cost_keys, max_per_1k)]

    def context_at_least(self, tokens: int) -> int:
        """Models whose context length is >= ``tokens``."""
        return self._context_suffix[bisect_left(self._context_keys, tokens)]

    def suited(self, specialties: Iterable[str]) -> int:
        """General text models plus those of the given specialties."""
        key = specialties if isinstance(specialties, frozenset) else frozenset(specialties)
        found = self._suited.get(key)
        if found is None:
            found = self._suited[key] = _or([self.general, *(self.specialty[s] for s in key)])
        return found

    def capable(self, needed: Iterable[str]) -> int:
        """Models with every capability in ``needed``; :class:`ConfigError` for an unknown one."""
        needed = needed if isinstance(needed, frozenset) else frozenset(needed)
        found = self._capable.get(needed)
        if found is None:
            found = -1
            for name in needed:
                if name not in self.capability:
                    raise ConfigError(f"unknown capability {name!r}: one of {', '.join(CAPABILITIES)}")
                found &= self.capability[name]
            if len(self._capable) >= _MEMO_SIZE:
                self._capable.clear()
            self._capable[needed] = found
        return found

    def filter(
        self, *, allow: frozenset[str] | None, deny: frozenset[str], providers: Sequence[str], allow_free: bool,
        capabilities: frozenset[str], context: int, max_cost_per_1k: Decimal | None, blocked: int,
        specialties: frozenset[str] = frozenset(),
    ) -> int:
        """The candidate bitset; :class:`NoCandidates` naming the constraint that removed the last ones.

        ``specialties``: the specialised models an implicit choice may include (:func:`specialties_wanted`).
        """
        # (label, bits): a label is a function, called only when its step removes the last candidates
        steps: list[tuple[Callable[[], str], int]] = []
        implicit = False
        if allow is not None:
            # Listing a model is naming it explicitly: routers, free and expired models qualify.
            cand = self.named(allow)
            if not cand:
                raise NoCandidates(f"no model left: none of --allow {','.join(sorted(allow))} is in the catalog")
        else:
            cand = self.implicit_free if allow_free else self.implicit
            if not cand:
                raise NoCandidates("no eligible model: the catalog holds only routers, free or expired models "
                                   "(use --allow-free or name a model)")
            implicit = True
        if deny:
            steps.append((lambda: f"--deny {','.join(sorted(deny))}", ~self.named(deny)))
        if providers:
            steps.append((lambda: f"providers {','.join(providers)}",
                          _or(self.provider.get(p, 0) for p in providers)))
        if capabilities:
            steps.append((lambda: f"capabilities {','.join(sorted(capabilities))}", self.capable(capabilities)))
        if context > 0:
            steps.append((lambda: f"a context of {context} tokens", self.context_at_least(context)))
        if implicit:  # after the caller's own constraints: "only specialists were left" is then the news
            steps.append((_suited_label, self.suited(specialties)))
        if max_cost_per_1k is not None:
            steps.append((lambda: f"--max-cost {max_cost_per_1k} USD per 1k tokens",
                          self.cheaper_than(max_cost_per_1k)))
        if blocked:
            steps.append((_open_label, ~blocked))
        for label, bits in steps:
            left = cand & bits
            if not left:
                text = label()
                raise NoCandidates(self._explain(text, cand, max_cost_per_1k is not None and "max-cost" in text))
            cand = left
        return cand

    def _explain(self, label: str, before: int, about_cost: bool) -> str:
        message = f"no model left after {label} ({before.bit_count()} candidates before it)"
        if about_cost:
            prices = [self.models[i].pricing for i in self.members(before) if not self.models[i].pricing.variable]
            if prices:
                cheapest = min(p.prompt + p.completion for p in prices)
                message += f"; the cheapest of them costs {per_thousand(cheapest)} USD per 1k tokens"
        return message

    def members(self, bits: int) -> list[int]:
        """Indices of the set bits, ascending."""
        out = []
        while bits:
            low = bits & -bits
            out.append(low.bit_length() - 1)
            bits ^= low
        return out

    def best_tier_floor(self, cand: int, wanted: int) -> int:
        """The highest tier rank <= ``wanted`` that still has a candidate at or above it."""
        for rank in range(wanted, 0, -1):
            if cand & self.at_least(rank):
                return rank
        return 0

    def at_least(self, rank: int) -> int:
        """Models of tier rank >= ``rank``."""
        return self._at_least[rank]


def _suited_label() -> str:
    return SUITED_LABEL


def _open_label() -> str:
    return "open circuits (models failing right now)"


def _or(values: Iterable[int]) -> int:
    out = 0
    for v in values:
        out |= v
    return out
