"""``hive ab``: create, list and stop A/B experiments (library: :mod:`hive_core.experiments`).

Traffic enters an experiment through ``hive ask --experiment NAME``; the analysis is
``hive-jobs ab-report NAME``.
"""

from __future__ import annotations

import click

from hive_cli.common import echo_json, get_settings
from hive_cli.params import json_option

__all__ = ["ab"]


@click.group()
def ab() -> None:
    """Create, list and stop A/B experiments (model A against model B)."""


@ab.command()
@click.argument("name")
@click.option("--model-a", required=True, help="Control model id (variant a).")
@click.option("--model-b", required=True, help="Challenger model id (variant b).")
@click.option("--split", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="Share of the experiment's requests sent to model B.")
@click.option("--task", default=None, help="Task category recorded on the experiment's requests.")
@click.pass_context
def create(ctx: click.Context, name: str, model_a: str, model_b: str, split: float, task: str | None) -> None:
    """Create and start experiment NAME."""
    from hive_core.experiments import create_experiment

    exp = create_experiment(get_settings(ctx).data_dir, name, model_a=model_a, model_b=model_b,
                            split=split, task=task)
    click.echo(f"experiment {exp.name}: a={exp.model_a} b={exp.model_b} split={exp.split:g} "
               f"(send traffic with `hive ask --experiment {exp.name} ...`)")


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
                   f"since {e.created_at}")


@ab.command()
@click.argument("name")
@click.pass_context
def stop(ctx: click.Context, name: str) -> None:
    """Stop experiment NAME (its results stay available to `hive-jobs ab-report`)."""
    from hive_core.experiments import stop_experiment

    exp = stop_experiment(get_settings(ctx).data_dir, name)
    click.echo(f"experiment {exp.name} stopped at {exp.stopped_at}")
