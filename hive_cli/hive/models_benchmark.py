"""``hive models benchmark``: thin over :func:`hive_core.benchmark.benchmark` and a Session; progress bar on stderr."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from hive_cli.common import echo_json, open_event_log, sending_settings
from hive_cli.params import json_option

__all__ = ["benchmark"]


@click.command()
@click.option("--models", default=None, metavar="M1,M2,...", help="Comma-separated model ids.")
@click.option("--top", type=click.IntRange(min=1), default=None, help="The N best models of the ranking table.")
@click.option("--prompts", "prompts_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Prompts, one per line (or a JSON list); default: a small built-in set.")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True, help="Requests in flight.")
@click.option("--requests", type=click.IntRange(min=1), default=8, show_default=True, help="Requests per model.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=256, show_default=True, help="Cap per answer.")
@json_option("Print JSON rows instead of the table.")
@click.pass_context
def benchmark(ctx: click.Context, models: str | None, top: int | None, prompts_file: str | None, concurrency: int,
              requests: int, max_tokens: int, as_json: bool) -> None:
    """Run one prompt set against several models (recorded as request_type=benchmark) and compare."""
    from hive_core.benchmark import benchmark as run
    from hive_core.benchmark import format_table, load_prompts, top_models
    from hive_core.session import Session

    if bool(models) == bool(top):
        raise click.UsageError("pass exactly one of --models M1,M2,... or --top N")
    settings = sending_settings(ctx)
    chosen = [m.strip() for m in models.split(",") if m.strip()] if models else top_models(settings.datadir, top or 0)
    prompts = load_prompts(Path(prompts_file) if prompts_file else None)
    with ExitStack() as stack:
        log = stack.enter_context(open_event_log(settings))
        session = stack.enter_context(Session(settings, log))
        progress: Any = click.progressbar(length=len(chosen) * requests, label="benchmark", file=sys.stderr)
        bar = stack.enter_context(progress)
        rows = run(session, chosen, prompts, requests=requests, concurrency=concurrency, max_tokens=max_tokens,
                   on_done=lambda: bar.update(1))
    if as_json:
        echo_json(rows)
    else:
        click.echo(format_table(rows))
