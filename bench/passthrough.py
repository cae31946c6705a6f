"""The floor of issue 14's speed targets: a minimal Python passthrough, aiohttp server + aiohttp client.

It relays ``POST /v1/chat/completions`` to the upstream as it came (the body untouched, the API key
added), the answer's status and body back; a stream chunk by chunk as it arrives. No parsing, no
recording, no budget: what any Python gateway on this stack pays at least. ``bench_gateway`` runs it
beside the gateway, in the same run, so the gateway's CPU can be read as a ratio to it - a figure a
loaded machine moves much less than the absolute one.

    OPENROUTER_API_KEY=sk-... python -m bench.passthrough --port 8081 --upstream http://127.0.0.1:8080/api/v1
"""

from __future__ import annotations

import argparse
import os

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

__all__ = ["build_app"]


def build_app(upstream: str, key: str) -> web.Application:
    """The passthrough's application (its client session opens with it)."""
    app = web.Application()
    url = f"{upstream}/chat/completions"
    session_key: web.AppKey[ClientSession] = web.AppKey("session")

    async def start(app: web.Application) -> None:
        app[session_key] = ClientSession(
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            connector=TCPConnector(limit=256), timeout=ClientTimeout(total=None, sock_read=60))

    async def stop(app: web.Application) -> None:
        await app[session_key].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with request.app[session_key].post(url, data=body) as answer:
            if answer.content_type != "text/event-stream":
                return web.Response(status=answer.status, body=await answer.read(), content_type=answer.content_type)
            response = web.StreamResponse(status=answer.status, headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def healthz(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/v1/chat/completions", relay)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1)")
    parser.add_argument("--upstream", required=True, help="the OpenRouter-compatible base URL")
    args = parser.parse_args()
    web.run_app(build_app(args.upstream, os.environ["OPENROUTER_API_KEY"]), host="127.0.0.1", port=args.port, access_log=None,
                print=None)


if __name__ == "__main__":
    main()
