"""The selection options ``hive ask`` and ``hive models recommend`` share, and how a choice is shown
(lines for people, :func:`selection_json` for ``--json``): one owner for selection on the command line."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import click

from hive_core.catalog.capabilities import CAPABILITIES
from hive_core.selection.complexity import TASK_TYPES
from hive_core.selection.rankings import STRATEGIES

if TYPE_CHECKING:
    from hive_core.selection.selector import SelectionRequest, SelectionResult

__all__ = ["build_request", "selection_json", "selection_lines", "selection_options"]


def _decimal(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a number (USD per 1k tokens, e.g. 0.002)") from None
    if not parsed.is_finite() or parsed < 0:
        raise click.BadParameter("must be a non-negative number of USD per 1k tokens")
    return parsed


def _ids(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> frozenset[str] | None:
    ids = frozenset(part.strip() for item in value for part in item.split(",") if part.strip())
    return ids or None


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --task, --strategy, --capability, --max-cost, --allow, --deny, --provider, --allow-free."""
    options = [
        click.option("--task", type=click.Choice(sorted(TASK_TYPES), case_sensitive=False), help="Task type."),
        click.option("--strategy", type=click.Choice(STRATEGIES), default="balanced", show_default=True,
                     help="How to weigh quality, success, latency and cost."),
        click.option("--capability", "capabilities", multiple=True,
                     type=click.Choice(CAPABILITIES, case_sensitive=False), help="Required capability (repeatable)."),
        click.option("--max-cost", callback=_decimal, help="Max prompt + completion price, USD per 1k tokens."),
        click.option("--allow", multiple=True, callback=_ids, help="Only these model ids (comma-separated)."),
        click.option("--deny", multiple=True, callback=_ids, help="Never these model ids (comma-separated)."),
        click.option("--provider", "providers", multiple=True, help="Only these providers (repeatable)."),
        click.option("--allow-free", is_flag=True, help="Free (:free, zero-priced) models may be chosen."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_request(
    *, prompt: str | None, task: str | None, strategy: str, capabilities: tuple[str, ...],
    max_cost: Decimal | None, allow: frozenset[str] | None, deny: frozenset[str] | None,
    providers: tuple[str, ...], allow_free: bool, max_tokens: int | None = None, fallbacks: int = 3,
    primary_model: str | None = None,
) -> SelectionRequest:
    """The selector's request from the shared options."""
    from hive_core.selection.selector import SelectionRequest

    return SelectionRequest(
        prompt=prompt, task=task.lower() if task else None, strategy=strategy,
        capabilities=frozenset(c.lower() for c in capabilities), max_cost_per_1k=max_cost, allow=allow,
        deny=deny or frozenset(), providers=providers, allow_free=allow_free, max_tokens=max_tokens,
        fallbacks=fallbacks, primary_model=primary_model,
    )


def selection_lines(result: SelectionResult, strategy: str) -> list[str]:
    """A choice as the lines ``recommend`` and ``ask --show-models`` print."""
    cost = "unknown" if result.estimated_cost_usd is None else f"${result.estimated_cost_usd:.6f}"
    return [
        f"primary:    {result.primary} ({result.tier})",
        f"fallbacks:  {', '.join(result.fallbacks) or '-'}",
        f"request:    {result.complexity} {result.task_category}, {result.candidates} candidates, {strategy}",
        f"estimated:  {cost} per request",
        f"reason:     {result.reason}",
    ]


def selection_json(result: SelectionResult, strategy: str) -> dict[str, Any]:
    """A choice as JSON (``recommend --json``, and ``selection`` in ``ask --json``)."""
    cost = result.estimated_cost_usd
    return {
        "primary": result.primary, "fallbacks": list(result.fallbacks), "tier": result.tier,
        "estimated_cost_usd": None if cost is None else float(cost), "reason": result.reason,
        "scores": result.scores, "strategy": strategy, "complexity": result.complexity,
        "task_category": result.task_category, "candidates": result.candidates, "warnings": list(result.warnings),
    }
