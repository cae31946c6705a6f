"""The selection options ``hive ask`` and ``hive models recommend`` share, how a choice is shown
(lines for people, :func:`selection_json` for ``--json``), the models a person names
(:func:`resolve_models`) and the catalog they are chosen from (:func:`cli_catalog`: fetched on first
use, refreshed when a day old, with one line on stderr): one owner for choosing models on the
command line."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import click

from hive_core.catalog.capabilities import CAPABILITIES
from hive_core.format import usd
from hive_core.selection.complexity import TASK_TYPES
from hive_core.selection.rankings import STRATEGIES

if TYPE_CHECKING:
    from hive_core.catalog.catalog import Catalog
    from hive_core.selection.selector import SelectionRequest, SelectionResult
    from hive_core.session import Session
    from hive_core.settings import Settings

__all__ = ["build_request", "cli_catalog", "notice", "resolve_models", "selection_json", "selection_lines",
           "selection_options"]


def notice(line: str) -> None:
    """One line on stderr: what the library did on the user's behalf (a fetch) or a warning."""
    click.echo(line, err=True)


def cli_catalog(settings: Settings) -> Catalog:
    """The data directory's catalog, fetched or refreshed first when needed
    (:func:`hive_core.catalog.fetch.ensure_catalog` on the settings' clock, notices on stderr)."""
    from hive_core.catalog.fetch import ensure_catalog

    return ensure_catalog(settings, now=settings.clock, notice=notice)


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
    cost = "unknown" if result.estimated_cost_usd is None else usd(result.estimated_cost_usd)
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


def resolve_models(session: Session, names: Sequence[str], param_hint: str) -> list[str]:
    """The catalog ids the model names given to ``param_hint`` (``--model``, ``MODEL``...) mean, before
    anything is sent: a short name (``gpt-4o-mini``) resolves to its full id, and an unknown or
    ambiguous name is a usage error (exit 2) saying what was meant - never a 400 recorded under a typo.

    Without a synced catalog a full id (``provider/model``) goes out as given (nothing to check it
    against; OpenRouter's answer says), while a short name is refused with how to sync: it is not guessed.
    """
    from hive_core.errors import UnknownModel

    ctx = click.get_current_context(silent=True)
    catalog = session.prices  # the synced catalog, or None without a usable one
    resolved = []
    for name in names:
        if catalog is None:
            if "/" not in name:
                raise click.BadParameter(
                    f"{name!r} is not a full model id (provider/model) and there is no model catalog to "
                    f"resolve it: run `hive models sync`, or give the full id", ctx, param_hint=f"'{param_hint}'")
            resolved.append(name)
            continue
        try:
            resolved.append(catalog.resolve(name).id)
        except UnknownModel as exc:
            raise click.BadParameter(str(exc), ctx, param_hint=f"'{param_hint}'") from None
    return resolved
