"""``hive models sync`` and ``hive models test``: the two model commands that talk to OpenRouter."""

from __future__ import annotations

from contextlib import ExitStack

import click

from hive_cli.common import echo_json, get_settings, open_event_log, sending_settings

__all__ = ["sync", "test"]

TEST_PROMPT = "Reply with the single word: OK"


@click.command()
@click.pass_context
def sync(ctx: click.Context) -> None:
    """Fetch /models from OpenRouter and cache it in the data directory (the catalog)."""
    from hive_core.openrouter.client import OpenRouterClient

    settings = get_settings(ctx)
    with OpenRouterClient(settings) as client:
        document = client.models_document()
    from hive_core.store.atomic import write_json_atomic

    write_json_atomic(settings.catalog_path, document, indent=None, sort_keys=False)
    click.echo(f"synced {len(document['data'])} models to {settings.catalog_path}")


@click.command()
@click.argument("model")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Stream (measures TTFT).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=16, show_default=True, help="Output tokens for the test request.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def test(ctx: click.Context, model: str, stream: bool, max_tokens: int, as_json: bool) -> None:
    """Send one small request to MODEL: latency, TTFT, tokens, cost (recorded as request_type=test)."""
    from hive_cli.hive.ask import open_client, result_json, summary_line
    from hive_core.ask import AskOptions, ask

    settings = sending_settings(ctx)
    with ExitStack() as stack:
        log = stack.enter_context(open_event_log(settings))
        client, note = open_client(settings, log, stack)
        answer = ask(client, TEST_PROMPT, [model],
                     AskOptions(stream=stream, max_tokens=max_tokens, request_type="test"))
    result = answer.result
    if as_json:
        echo_json(result_json(result, fallback_index=0, note=note))
        return
    click.echo(f"answer: {result.text.strip()[:80]!r}")
    click.echo(summary_line(result, note))
