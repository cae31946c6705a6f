"""Choose a model and an ordered fallback chain for one request - correct, explainable, fast.

Scoring (per task type, strategy and complexity; computed once, then cached as an ordering):

* Each model's numbers come from the ranking table when it has >= ``MIN_SAMPLES`` calls for the
  (task, model) pair, else for ("*", model), else from catalog priors (:mod:`hive_core.selection.priors`);
  :func:`~hive_core.selection.rankings.strategy_scores` turns them into a score per strategy (weights in
  :mod:`hive_core.selection.rankings`).
* Exploration: ``0.03 * 20 / (20 + n)`` for a model measured over ``n`` calls (0.03 unmeasured),
  so new models get tried without beating a model that is measurably better.
* Tier pull: ``0.04 x pull x tier rank`` (tier ranks 0..3), the pull by complexity being simple -1,
  moderate 1, complex 2, expert 3. It grows with complexity *and* tier, which is what makes "raising
  complexity never lowers the chosen tier" hold; for a simple request it pushes down, because there
  a short answer costs a fraction of a cent anywhere and price alone would not keep a premium model
  from answering "Is a tomato a fruit?".
* Ties break on lower effective cost, then id: the same inputs always give the same choice.

Constraints are bitsets over the catalog, applied in this order; when one empties the candidate
set, :class:`NoCandidates` names it: eligibility (routers, aliases, expired and free models only
when allowed or listed in ``allow``), allow, deny, providers, capabilities (requested plus the
task's), context (prompt tokens + max_tokens), suited to the request (without ``allow``: general
text models, plus code-specialised ones for code tasks and tool-specialised ones when tools are
needed; see :mod:`hive_core.catalog.specialties`), ``max_cost_per_1k`` (prompt + completion price
per 1k tokens; catalog prices are per token), open circuits. Complexity then sets a minimum tier
(simple/moderate: any, complex: standard+, expert: premium+), lowered with a warning to the best
tier that is left rather than failing. Fallbacks follow the same order, other providers first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hive_core.catalog.capabilities import with_measured_speed
from hive_core.catalog.catalog import ModelInfo
from hive_core.catalog.pricing import estimate_cost
from hive_core.catalog.tiers import TIER_RANK, TIERS
from hive_core.clock import system_clock
from hive_core.errors import ConfigError, NoCandidates
from hive_core.selection.candidates import CandidateIndex, specialties_wanted
from hive_core.selection.complexity import TASK_TYPES, assess, parse_complexity
from hive_core.selection.priors import prior_metrics
from hive_core.selection.rankings import (  # one a line (ruff's isort): `duplicates` pairs such lists by shape
    ALL_TASKS,
    COST_MIX,
    STRATEGIES,
    Metrics,
    Rankings,
    effective_cost,
    strategy_scores,
)

if TYPE_CHECKING:
    from hive_core.catalog.catalog import Catalog
    from hive_core.selection.health import CircuitBreaker
    from hive_core.store.events import Selection

__all__ = ["STRATEGIES", "SelectionRequest", "SelectionResult", "Selector"]

MIN_TIER = {"simple": "economy", "moderate": "economy", "complex": "standard", "expert": "premium"}
TIER_PULL = 0.04
#: the tier pull's factor per complexity (see the module docstring): increasing, negative for simple
PULL = {"simple": -1, "moderate": 1, "complex": 2, "expert": 3}
EXPLORATION_BONUS, EXPLORATION_K = 0.03, 20
#: the metrics of a model without enough measured calls (frozen: one shared instance)
_UNMEASURED = Metrics()


@dataclass(frozen=True)
class SelectionRequest:
    """What the caller needs. ``complexity`` overrides the one assessed from the prompt/task."""

    prompt: str | None = None
    task: str | None = None
    strategy: str = "balanced"
    capabilities: frozenset[str] = frozenset()
    max_cost_per_1k: Decimal | None = None
    context_tokens: int | None = None
    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    providers: tuple[str, ...] = ()
    allow_free: bool = False
    primary_model: str | None = None
    max_tokens: int | None = None
    fallbacks: int = 3
    complexity: str | None = None


@dataclass(slots=True)
class SelectionResult:
    """The choice: primary, fallbacks (best first), why, and what it is expected to cost.

    A plain slotted dataclass, not a frozen one: a frozen one's ``__init__`` sets each field through
    ``object.__setattr__`` (2 us of a 20 us selection); nothing changes a result once returned.
    """

    primary: str
    fallbacks: tuple[str, ...]
    tier: str
    complexity: str
    task_category: str | None
    estimated_cost_usd: Decimal | None
    reason: str
    scores: dict[str, float]
    candidates: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def chain(self) -> tuple[str, ...]:
        """Primary then fallbacks: the order ``hive ask`` tries them."""
        return (self.primary, *self.fallbacks)

    def to_event(self, request_id: str, strategy: str, **envelope: Any) -> Selection:
        """The ``selection`` event of this choice, linked to the request by ``request_id``."""
        from hive_core.store.events import Selection  # pydantic: imported only when an event is recorded

        return Selection(
            request_id=request_id, strategy=strategy, complexity=self.complexity,
            task_category=self.task_category, candidates=self.candidates, model=self.primary,
            fallbacks=list(self.fallbacks), top_models=list(self.scores), top_scores=list(self.scores.values()),
            estimated_cost_usd=None if self.estimated_cost_usd is None else float(self.estimated_cost_usd),
            reason=self.reason, **envelope,
        )


class Selector:
    """Selection over one catalog (+ rankings, + breaker). Build once, call :meth:`select` often."""

    def __init__(
        self, catalog: Catalog, rankings: Rankings | None = None, breaker: CircuitBreaker | None = None,
        *, today: date | None = None,
    ) -> None:
        self.catalog = catalog
        self.rankings = rankings if rankings is not None else Rankings()
        self.breaker = breaker
        self.today = today or system_clock().date()  # UTC, as everywhere
        self._models = catalog.models
        self._ids = [m.id for m in self._models]
        self.capabilities = tuple(self._capabilities(m) for m in self._models)
        self.candidates = CandidateIndex(self._models, self.capabilities, self.today)
        self._task_scores: dict[str, tuple[list[dict[str, float]], list[float], list[int]]] = {}
        self._orders: dict[tuple[str, str, str], tuple[list[int], list[float]]] = {}
        #: per order: (index, bit, provider) of each model in that order, what :meth:`_chain` walks
        self._ranked: dict[tuple[str, str, str], list[tuple[int, int, str]]] = {}
        #: per (task, requested capabilities): the capabilities needed and the specialties wanted
        self._needs: dict[tuple[str, frozenset[str]], tuple[frozenset[str], frozenset[str]]] = {}
        self._blocked: tuple[frozenset[str], int] = (frozenset(), 0)
        self._costs: dict[tuple[int, int, int], Decimal | None] = {}

    def _capabilities(self, model: ModelInfo) -> frozenset[str]:
        measured = self.rankings.metrics(ALL_TASKS, model.id)
        return with_measured_speed(model.capabilities, measured.ttft_p50_ms if measured else None)

    # -- scores, computed once per task and cached ---------------------------------------------

    def _scores(self, task: str) -> tuple[list[dict[str, float]], list[float], list[int]]:
        cached = self._task_scores.get(task)
        if cached is None:
            kind = TASK_TYPES[task]
            scores, costs, samples = [], [], []
            for model in self._models:
                prior = prior_metrics(model, kind, self.today)
                measured = self.rankings.metrics(task, model.id) or _UNMEASURED
                bonus = EXPLORATION_BONUS * EXPLORATION_K / (EXPLORATION_K + measured.samples)
                scores.append(strategy_scores(measured, prior, bonus=bonus))
                costs.append(effective_cost(measured, prior))
                samples.append(measured.samples)
            cached = self._task_scores[task] = (scores, costs, samples)
        return cached

    def _order(self, task: str, strategy: str, complexity: str) -> tuple[list[int], list[float]]:
        key = (task, strategy, complexity)
        cached = self._orders.get(key)
        if cached is None:
            scores, costs, _samples = self._scores(task)
            c = PULL[complexity]
            totals = []
            for i, model in enumerate(self._models):
                quality_first = scores[i]["quality-first"] + TIER_PULL * c * model.tier_rank
                if strategy == "cost-optimized":
                    # Literally COST_MIX * quality-first + rest * cost, so it never prefers a costlier model.
                    cost_part = (scores[i]["cost-optimized"] - COST_MIX * scores[i]["quality-first"])
                    totals.append(COST_MIX * quality_first + cost_part)
                elif strategy == "quality-first":
                    totals.append(quality_first)
                else:
                    totals.append(scores[i][strategy] + TIER_PULL * c * model.tier_rank)
            order = sorted(range(len(totals)), key=lambda i: (-totals[i], costs[i], self._models[i].id))
            cached = self._orders[key] = (order, totals)
            self._ranked[key] = [(i, 1 << i, self._models[i].provider) for i in order]
        return cached

    def effective_cost(self, model_id: str, task: str = "chat") -> float:
        """USD per successful request of ``task`` the selector assumes for ``model_id``."""
        return self._scores(task)[1][self.candidates.index[model_id]]

    def _open_bits(self) -> int:
        if self.breaker is None:
            return 0
        blocked = self.breaker.blocked()
        if blocked is not self._blocked[0]:
            self._blocked = (blocked, self.candidates.named(blocked))
        return self._blocked[1]

    # -- selection -----------------------------------------------------------------------------

    def select(self, request: SelectionRequest) -> SelectionResult:
        """The primary model and fallbacks for ``request``; :class:`NoCandidates` if none qualifies."""
        if request.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {request.strategy!r}: one of {', '.join(STRATEGIES)}")
        found = assess(request.prompt, request.task)
        complexity = parse_complexity(request.complexity) if request.complexity else found.complexity
        task = found.task
        needed, specialties = self._needed(task, request.capabilities)
        prompt_tokens = request.context_tokens if request.context_tokens is not None else (
            found.prompt_tokens if request.prompt else 0)
        index = self.candidates
        blocked = self._open_bits()
        cand = index.filter(
            allow=request.allow, deny=request.deny, providers=request.providers, allow_free=request.allow_free,
            capabilities=needed, context=prompt_tokens + (request.max_tokens or 0),
            max_cost_per_1k=request.max_cost_per_1k, blocked=blocked, specialties=specialties,
        )
        warnings: list[str] = []
        wanted = TIER_RANK[MIN_TIER[complexity]]
        floor = index.best_tier_floor(cand, wanted)
        if floor < wanted:
            warnings.append(f"no {TIERS[wanted]}+ model meets the constraints; the best left is {TIERS[floor]}")
        cand &= index.at_least(floor)
        key = (task, request.strategy, complexity)
        totals = self._order(*key)[1]
        first = self._explicit(request, cand, needed, blocked, warnings)
        chain = self._chain(self._ranked[key], cand, first, 1 + max(request.fallbacks, 0))
        primary = self._models[chain[0]]
        cost = self._cost(chain[0], prompt_tokens or found.prompt_tokens, request.max_tokens or found.completion_tokens)
        ids = self._ids
        return SelectionResult(
            primary=primary.id, fallbacks=tuple([ids[i] for i in chain[1:]]), tier=primary.tier,
            complexity=complexity, task_category=task, estimated_cost_usd=cost,
            reason=self._reason(chain[0], first is not None, request.strategy, complexity, task, cand, totals),
            scores={ids[i]: totals[i] for i in chain}, candidates=cand.bit_count(),
            warnings=tuple(warnings),
        )

    def _needed(self, task: str, requested: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
        """The capabilities a request needs (its own plus its task's) and the specialties it may get."""
        key = (task, requested if isinstance(requested, frozenset) else frozenset(requested))  # a set works too
        found = self._needs.get(key)
        if found is None:
            needed = requested | TASK_TYPES[task].capabilities
            found = (needed, specialties_wanted(task, needed))
            if len(self._needs) >= 1024:
                self._needs.clear()
            self._needs[key] = found
        return found

    def _cost(self, i: int, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
        """Estimated request cost, memoised: Decimal arithmetic is a tenth of a selection."""
        key = (i, prompt_tokens, completion_tokens)
        cost = self._costs.get(key, self)
        if cost is self:
            if len(self._costs) > 4096:
                self._costs.clear()
            cost = self._costs[key] = estimate_cost(self._models[i].pricing, prompt_tokens=prompt_tokens,
                                                    completion_tokens=completion_tokens)
        return cost  # type: ignore[return-value]

    def _explicit(self, request: SelectionRequest, cand: int, needed: frozenset[str], blocked: int,
                  warnings: list[str]) -> int | None:
        """Index of ``primary_model`` when it can go first, else None with a warning saying why."""
        name = request.primary_model
        if not name:
            return None
        i = self.candidates.index.get(name)
        if i is None:
            warnings.append(f"unknown model {name!r}; using the selector's choice instead")
            return None
        bit = 1 << i
        if blocked & bit:
            warnings.append(f"{name} is failing right now (circuit open); using the selector's choice instead")
            return None
        try:
            # The same constraints as everyone, except that naming a model makes it eligible.
            self.candidates.filter(
                allow=frozenset({name}), deny=request.deny, providers=request.providers, allow_free=True,
                capabilities=needed, context=0, max_cost_per_1k=request.max_cost_per_1k, blocked=0,
            )
        except NoCandidates as exc:  # say which constraint M breaks, then fall back
            warnings.append(f"{name} does not qualify ({exc}); using the selector's choice instead")
            return None
        return i

    def _chain(self, ranked: list[tuple[int, int, str]], cand: int, first: int | None, size: int) -> list[int]:
        """Best candidates in score order (``ranked``: :meth:`_order`'s, with each model's bit and
        provider), other providers before a provider already in the chain."""
        chain = [first] if first is not None else []
        used = {self._models[first].provider} if first is not None else set()
        same: list[int] = []
        if len(chain) < size:
            for i, bit, provider in ranked:
                if not cand & bit or i == first:
                    continue
                if provider in used:  # only a provider already in the chain is in ``used``
                    if len(same) < size:
                        same.append(i)
                    continue
                chain.append(i)
                used.add(provider)
                if len(chain) >= size:
                    break
        return (chain + same)[:size]

    def _reason(self, i: int, explicit: bool, strategy: str, complexity: str, task: str, cand: int,
                totals: list[float]) -> str:
        model = self._models[i]
        if explicit:
            return f"{model.id} was requested as the primary model; fallbacks follow the {strategy} ranking."
        samples = self._scores(task)[2][i]
        basis = f"measured over {samples} calls" if samples else "from catalog priors"
        return (f"{model.id} ({model.tier}) has the best {strategy} score ({totals[i]:.3f}, {basis}) of "
                f"{cand.bit_count()} candidates for a {complexity} {task} request.")

