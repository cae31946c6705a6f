"""``hive models sync`` and ``hive models test``: the two model commands that talk to OpenRouter.

Both go through a :class:`hive_core.session.Session`: ``test`` sends a real, billed completion, so
it is budgeted, reported to the circuit breaker and recorded like ``hive ask``, and its model name
is resolved like ``hive ask --model``'s (an unknown one is refused, never sent). ``sync`` only reads
``/models``, which is public: :func:`hive_core.catalog.fetch.sync_catalog` fetches it without an API
key (nothing to record or budget) and stamps it with the settings' clock.
"""

from __future__ import annotations

import click

from hive_cli.common import echo_json, get_settings, open_event_log, sending_settings
from hive_cli.params import json_option
from hive_cli.selection import resolve_models

__all__ = ["sync", "test"]

TEST_PROMPT = "Reply with the single word: OK"


@click.command()
@click.pass_context
def sync(ctx: click.Context) -> None:
    """Fetch /models from OpenRouter into the data directory (the catalog); no API key needed.

    Other commands fetch it on first use and refresh it once a day by themselves; this forces it."""
    from hive_core.catalog.fetch import sync_catalog

    settings = get_settings(ctx)
    catalog = sync_catalog(settings, now=settings.clock)
    click.echo(f"synced {len(catalog)} models to {settings.datadir.catalog_file}")


@click.command()
@click.argument("model")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Stream (measures TTFT).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=16, show_default=True, help="Output tokens for the test request.")
@json_option()
@click.pass_context
def test(ctx: click.Context, model: str, stream: bool, max_tokens: int, as_json: bool) -> None:
    """Send one small request to MODEL: latency, TTFT, tokens, cost (recorded as request_type=test).

    MODEL is a full id or a short name (gpt-4o-mini); an unknown one is refused before sending, with
    the close matches of the synced catalog."""
    from hive_core.ask import AskOptions
    from hive_core.session import Session

    settings = sending_settings(ctx)
    with open_event_log(settings) as log, Session(settings, log) as session:
        chain = resolve_models(session, [model], "MODEL")
        answer = session.ask(TEST_PROMPT, chain, AskOptions(stream=stream, max_tokens=max_tokens, request_type="test"))
        note = session.prices_note
    if as_json:
        echo_json(answer.as_dict(note))
        return
    click.echo(f"answer: {answer.result.text.strip()[:80]!r}")
    click.echo(answer.summary(note))
