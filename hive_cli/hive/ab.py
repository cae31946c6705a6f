"""``hive ab``: create, list and stop A/B experiments (library: :mod:`hive_core.experiments`).

Traffic enters an experiment through ``hive ask --experiment NAME``; the analysis is
``hive-jobs ab-report NAME``.
"""

from __future__ import annotations

import click

from hive_cli.common import echo_json, get_settings
from hive_cli.params import json_option
from hive_core.experiments import DEFAULT_GUARDRAILS, GOALS

__all__ = ["ab"]


@click.group()
def ab() -> None:
    """Create, list and stop A/B experiments (model A against model B)."""


@ab.command()
@click.argument("name")
@click.option("--model-a", required=True, help="Control model: full id or short name (variant a).")
@click.option("--model-b", required=True, help="Challenger model: full id or short name (variant b).")
@click.option("--split", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="Share of the experiment's requests sent to model B.")
@click.option("--task", default=None, help="Task category recorded on the experiment's requests.")
@click.option("--goal", type=click.Choice(GOALS), default="success", show_default=True,
              help="The metric B must be significantly better on to win.")
@click.option("--guardrail", "guardrails", type=click.Choice(GOALS), multiple=True, default=DEFAULT_GUARDRAILS,
              show_default=True, help="A metric the winner may not be significantly worse on (repeatable).")
@click.pass_context
def create(ctx: click.Context, name: str, model_a: str, model_b: str, split: float, task: str | None,
           goal: str, guardrails: tuple[str, ...]) -> None:
    """Create and start experiment NAME: model A (control) against model B, won on --goal while
    no --guardrail gets significantly worse. Model names are checked against the synced catalog
    before anything is stored (a typo fails with the close matches)."""
    from hive_cli.selection import resolve_models
    from hive_core.experiments import create_experiment
    from hive_core.session import Session

    settings = get_settings(ctx)
    with Session(settings, None) as session:  # only its catalog: nothing is sent
        model_a, model_b = (resolve_models(session, [model_a], "--model-a")[0],
                            resolve_models(session, [model_b], "--model-b")[0])
    exp = create_experiment(settings.data_dir, name, model_a=model_a, model_b=model_b, split=split, task=task,
                            goal=goal, guardrails=guardrails)
    click.echo(f"experiment {exp.name}: a={exp.model_a} b={exp.model_b} split={exp.split:g} goal={exp.goal} "
               f"guardrails={','.join(exp.guardrails) or 'none'} (send traffic with `hive ask --experiment {exp.name} ...`)")


@ab.command("list")
@json_option()
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List experiments, running and stopped."""
    from hive_core.experiments import list_experiments

    experiments = list_experiments(get_settings(ctx).data_dir)
    if as_json:
        echo_json(experiments)
        return
    if not experiments:
        click.echo("no experiments (create one with `hive ab create NAME --model-a A --model-b B`)")
        return
    for e in experiments:
        task = f" task={e.task}" if e.task else ""
        click.echo(f"{e.name:<24} {e.status:<8} a={e.model_a}  b={e.model_b}  split={e.split:g}{task}  "
                   f"goal={e.goal}  since {e.created_at}")


@ab.command()
@click.argument("name")
@click.pass_context
def stop(ctx: click.Context, name: str) -> None:
    """Stop experiment NAME (its results stay available to `hive-jobs ab-report`)."""
    from hive_core.experiments import stop_experiment

    exp = stop_experiment(get_settings(ctx).data_dir, name)
    click.echo(f"experiment {exp.name} stopped at {exp.stopped_at}")
