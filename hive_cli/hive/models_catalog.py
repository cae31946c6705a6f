"""``hive models list``, ``info`` and ``recommend``: the catalog and the selector on the command line.

Thin: each command loads what it needs (catalog, rankings, circuit state) from the settings, calls
one library function, and formats. The catalog comes from :func:`hive_cli.selection.cli_catalog`
(``recommend``: from its Session, which does the same): on a fresh data directory it is fetched
first (no API key needed), and refreshed when a day old. Only pure-Python modules are imported at the top; the ranking
table's cache means pyarrow is not imported either, so ``recommend`` runs in well under 150 ms.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from hive_cli.common import echo_json, get_settings
from hive_cli.params import json_option
from hive_cli.selection import (
    build_request,
    cli_catalog,
    notice,
    selection_json,
    selection_lines,
    selection_options,
)
from hive_core.catalog.capabilities import CAPABILITIES
from hive_core.catalog.tiers import TIERS
from hive_core.format import ms, pct, usd
from hive_core.selection.selector import SelectionRequest

if TYPE_CHECKING:
    from hive_core.catalog.catalog import ModelInfo
    from hive_core.catalog.pricing import Pricing
    from hive_core.selection.rankings import Metrics

__all__ = ["info", "list_models", "model_json", "recommend"]

_PRICE_FIELDS = ("prompt", "completion", "request", "image", "web_search", "internal_reasoning",
                 "input_cache_read", "input_cache_write")
_PER_TOKEN = frozenset({"prompt", "completion", "internal_reasoning", "input_cache_read", "input_cache_write"})


def prices_json(pricing: Pricing) -> dict[str, Any]:
    """Per-token (or per-unit) prices as exact strings, plus per-1M figures for the per-token ones."""
    from hive_core.catalog.pricing import per_million

    out: dict[str, Any] = {"variable": pricing.variable}
    for name in _PRICE_FIELDS:
        value = getattr(pricing, name)
        out[name] = format(value, "f")  # never exponent notation (5E-7)
        if name in _PER_TOKEN:
            out[f"{name}_per_1m"] = str(per_million(value))
    return out


def model_json(model: ModelInfo) -> dict[str, Any]:
    """One catalog model as a JSON object (``hive models list --json`` / ``info --json``)."""
    return {
        "id": model.id, "name": model.name, "provider": model.provider, "context_length": model.context_length,
        "max_completion_tokens": model.max_completion_tokens, "prices": prices_json(model.pricing),
        "tier": model.tier, "capabilities": sorted(model.capabilities),
        "input_modalities": list(model.input_modalities), "output_modalities": list(model.output_modalities),
        "specialty": model.specialty, "is_free": model.is_free, "is_router": model.is_router,
        "expiration_date": None if model.expiration_date is None else model.expiration_date.isoformat(),
    }


def _money(pricing: Pricing, name: str) -> str:
    from hive_core.catalog.pricing import per_million

    return "variable" if pricing.variable else f"{per_million(getattr(pricing, name))}"


@click.command("list")
@click.option("--tier", type=click.Choice(TIERS, case_sensitive=False), help="Only this price tier.")
@click.option("--capability", "capabilities", multiple=True, type=click.Choice(CAPABILITIES, case_sensitive=False),
              help="Only models with this capability (repeatable: all must hold).")
@click.option("--provider", help="Only this provider (the id's prefix, e.g. anthropic).")
@json_option()
@click.pass_context
def list_models(ctx: click.Context, tier: str | None, capabilities: tuple[str, ...], provider: str | None,
                as_json: bool) -> None:
    """List models from the synced catalog, with tier, prices per 1M tokens and capabilities."""
    from hive_core.catalog.capabilities import describe

    catalog = cli_catalog(get_settings(ctx))
    found = catalog.list_models(tier=tier.lower() if tier else None,
                                capabilities=[c.lower() for c in capabilities], provider=provider)
    if as_json:
        echo_json([model_json(m) for m in found])
        return
    width = max((len(m.id) for m in found), default=10)
    click.echo(f"{'model':<{width}}  {'tier':<8} {'context':>9} {'$/1M in':>9} {'$/1M out':>9}  capabilities")
    for m in found:
        click.echo(f"{m.id:<{width}}  {m.tier:<8} {m.context_length:>9} {_money(m.pricing, 'prompt'):>9} "
                   f"{_money(m.pricing, 'completion'):>9}  {describe(m.capabilities)}")
    click.echo(f"{len(found)} models")


def _measured_line(task: str, m: Metrics) -> str:
    parts = [f"{task:<16} {m.samples:>6} calls"]
    if m.success_rate is not None:
        parts.append(f"success {pct(m.success_rate)}")
    if m.latency_p95_ms is not None:
        parts.append(f"p95 {ms(m.latency_p95_ms)}")
    if m.ttft_p50_ms is not None:
        parts.append(f"ttft50 {ms(m.ttft_p50_ms)}")
    if m.cost_per_request_usd is not None:
        parts.append(f"{usd(m.cost_per_request_usd)}/request")
    if m.quality is not None:
        parts.append(f"quality {m.quality:.2f} ({m.quality_samples})")
    return "  ".join(parts)


@click.command()
@click.argument("model")
@json_option()
@click.pass_context
def info(ctx: click.Context, model: str, as_json: bool) -> None:
    """Show one model: prices, tier, capabilities and measured stats from the ranking table."""
    from hive_core.catalog.capabilities import describe
    from hive_core.selection.rankings import load_rankings

    settings = get_settings(ctx)
    found = cli_catalog(settings).get(model)
    measured = load_rankings(settings.datadir.root).rows_for(found.id)
    if as_json:
        echo_json({**model_json(found), "measured": dict(sorted(measured.items()))})
        return
    p = found.pricing
    click.echo(f"{found.id}  ({found.name})")
    click.echo(f"provider:      {found.provider}")
    click.echo(f"tier:          {found.tier}")
    click.echo(f"context:       {found.context_length} tokens (max output {found.max_completion_tokens or '-'})")
    click.echo(f"price per 1M:  {_money(p, 'prompt')} in, {_money(p, 'completion')} out (USD)")
    extras = [f"{name} {getattr(p, name)}" for name in ("request", "image", "web_search") if getattr(p, name)]
    if extras:
        click.echo(f"per unit:      {', '.join(extras)} (USD)")
    click.echo(f"capabilities:  {describe(found.capabilities) or '-'}")
    if found.specialty:
        click.echo(f"specialty:     {found.specialty} (chosen implicitly only when a request asks for it)")
    flags = [f for f, on in (("free", found.is_free), ("router", found.is_router), ("alias", found.is_alias)) if on]
    if found.expiration_date:
        flags.append(f"expires {found.expiration_date.isoformat()}")
    if flags:
        click.echo(f"notes:         {', '.join(flags)} (never chosen unless allowed or named)")
    if measured:
        click.echo("measured:")
        for task, m in sorted(measured.items()):
            click.echo(f"  {_measured_line(task, m)}")
    else:
        click.echo("measured:      no calls in the ranking table yet")


@click.command()
@selection_options
@click.option("--prompt", help="The prompt (its complexity and task type are assessed).")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Output tokens the request may use.")
@click.option("--fallbacks", type=click.IntRange(min=0, max=10), default=SelectionRequest.fallbacks, show_default=True,
              help="How many fallback models to chain.")
@json_option()
@click.pass_context
def recommend(ctx: click.Context, task: str | None, prompt: str | None, strategy: str, capabilities: tuple[str, ...],
              max_cost: Decimal | None, allow: frozenset[str] | None, deny: frozenset[str] | None,
              providers: tuple[str, ...], allow_free: bool, max_tokens: int | None, fallbacks: int,
              as_json: bool) -> None:
    """Recommend a model and fallbacks for a task or prompt (nothing is sent)."""
    if not task and not prompt:
        raise click.UsageError("give --task or --prompt")
    from hive_core.session import Session

    request = build_request(
        prompt=prompt, task=task, strategy=strategy, capabilities=capabilities, max_cost=max_cost, allow=allow,
        deny=deny, providers=providers, allow_free=allow_free, max_tokens=max_tokens, fallbacks=fallbacks,
    )
    settings = get_settings(ctx)
    # No sink, no request id: nothing is recorded. The Session fetches or refreshes the catalog when
    # needed (the same ensure_catalog as cli_catalog, notices on stderr) and loads it once.
    with Session(settings, None, notice=notice) as session:
        result = session.select(request)
    if as_json:
        echo_json(selection_json(result, strategy))
        return
    for line in selection_lines(result, strategy):
        click.echo(line)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
