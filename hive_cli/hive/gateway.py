"""``hive gateway``: the OpenAI-compatible gateway (:mod:`hive_gateway`), or ``--check`` its configuration.

Thin: builds a :class:`~hive_gateway.config.GatewayConfig` from the settings and the options, then
:func:`hive_gateway.server.serve` or :func:`hive_gateway.config.check`. aiohttp is the optional
``gateway`` extra and is imported only here, when the command runs: without it the command says
``pip install hive[gateway]`` and exits 2.
"""

from __future__ import annotations

import click

from hive_cli.common import get_settings

__all__ = ["gateway"]

#: the exit status when the gateway extra is missing or the configuration is wrong
NOT_READY = 2


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on (0: any free port, printed at start-up).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes on one listening socket (no other process can take the port; a worker that "
                   "dies is replaced); budgets and key rates hold across them.")
@click.option("--no-auth", is_flag=True,
              help="Accept requests without a virtual key (local development only; said loudly at start-up).")
@click.option("--drain", "drain_s", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds SIGTERM lets in-flight streams finish before cancelling them (recorded as cancelled).")
@click.option("--send-timeout", "send_timeout_s", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True,
              help="Seconds a response write may make no progress (its client reads nothing) before the client "
                   "is cut off (its stream cancelled and recorded so; nginx's send_timeout).")
@click.option("--check", is_flag=True,
              help="Validate the configuration (the API key, asking OpenRouter whether it takes it; data "
                   "directory, catalog, budgets, keys, port), print each problem on its own line, and exit "
                   "(0: ready).")
@click.pass_context
def gateway(ctx: click.Context, /, host: str, port: int, workers: int, no_auth: bool, drain_s: float,
            send_timeout_s: float, check: bool) -> None:
    """Serve an OpenAI-compatible API (POST /v1/chat/completions, GET /v1/models, /healthz, /metrics)
    that records, budgets and routes every call: point any OpenAI SDK's base URL at
    http://HOST:PORT/v1 with a virtual key (`hive keys create`). model "hive/auto" lets Hive's
    selector choose. SIGTERM drains in-flight streams, writes every event and exits 0."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        click.echo("the gateway needs aiohttp: pip install hive[gateway]", err=True)
        raise SystemExit(NOT_READY) from None
    from hive_gateway.config import GatewayConfig
    from hive_gateway.config import check as check_config

    config = GatewayConfig(get_settings(ctx), host=host, port=port, workers=workers, no_auth=no_auth,
                           drain_s=drain_s, send_timeout_s=send_timeout_s)
    problems = check_config(config, catalog=check)
    if check:
        for line in problems:
            click.echo(line)
        if not problems:
            click.echo("ok: the gateway is ready to serve")
        raise SystemExit(1 if problems else 0)
    if problems:
        for line in problems:
            click.echo(f"error: {line}", err=True)
        click.echo("(hive gateway --check lists what to fix)", err=True)
        raise SystemExit(NOT_READY)
    from hive_cli.lazy import storage_error
    from hive_gateway.server import explain, serve

    def one_line(error: BaseException) -> str | None:  # a worker's failure, as this CLI says one
        storage = storage_error(error, config.settings.data_dir)
        return str(storage) if storage is not None else explain(error)

    raise SystemExit(serve(config, explain=one_line))
