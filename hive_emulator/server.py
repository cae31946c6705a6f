"""``hive-emulator``: the OpenRouter emulator as a command, and :class:`Emulator` for in-process use.

    hive-emulator --host 127.0.0.1 --port 0 --catalog models.json --fault '*:429:0.2' --seed 7 \
        --quality openai/gpt-4o-mini=0.3

prints ``listening on http://127.0.0.1:<port>/api/v1`` once ready and serves until SIGTERM/SIGINT.
In a test, ``with Emulator(catalog) as emu:`` runs the same server on its own event loop in a
background thread; ``emu.base_url`` and ``emu.api_key`` are what a client needs.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from hive_emulator.catalog import Catalog
from hive_emulator.faults import FaultRule, parse_fault
from hive_emulator.http import HttpServer
from hive_emulator.judge import parse_quality, validate_qualities
from hive_emulator.routes import API_PREFIX, dispatch
from hive_emulator.state import EmulatorState

__all__ = ["DEFAULT_TEST_KEY", "Emulator", "main"]

#: the key tests send; any ``sk-or-v1-`` key is accepted unless ``api_key`` restricts it
DEFAULT_TEST_KEY = "sk-or-v1-test" + hashlib.blake2b(b"hive-emulator", digest_size=26).hexdigest()[:51]

T = TypeVar("T")
FaultSpec = FaultRule | str | Mapping[str, Any]


class Emulator:
    """An emulator server running on its own asyncio loop in a background thread."""

    def __init__(
        self,
        catalog_path: str | Path,
        *,
        faults: Iterable[FaultSpec] = (),
        seed: int = 0,
        latency_scale: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        credit_limit: Decimal | float | None = None,
        quality: Mapping[str, float] | None = None,
    ) -> None:
        limit = None if credit_limit is None else Decimal(str(credit_limit))
        self.state = EmulatorState(Catalog.from_path(catalog_path), faults=faults, seed=seed,
                                   latency_scale=latency_scale, api_key=api_key, credit_limit=limit,
                                   quality=quality)
        self.host = host
        self.api_key = api_key or DEFAULT_TEST_KEY
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/api/v1`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    def start(self) -> str:
        """Start serving; returns :attr:`base_url` once the port is bound."""
        if self._thread is not None:
            return self.base_url
        self._thread = threading.Thread(target=self._run, name="hive-emulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"emulator failed to start: {self._error}") from self._error
        return self.base_url

    def stop(self) -> None:
        """Stop serving (connections in flight are dropped) and join the thread."""
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # Runtime control, applied on the emulator's loop (its state is not shared across threads).
    def set_faults(self, faults: Iterable[FaultSpec]) -> None:
        """Replace the active fault rules (same as ``POST /_emulator/faults``)."""
        rules = list(faults)
        self._call(lambda: self.state.faults.replace(rules))

    def set_quality(self, quality: Mapping[str, float]) -> None:
        """Replace the answer quality per model (same as ``POST /_emulator/quality``)."""
        checked = validate_qualities(quality)

        def apply() -> None:
            self.state.quality = checked

        self._call(apply)

    def reset(self) -> None:
        """Start-up faults and qualities, no records or usage, counters at zero (``POST /_emulator/reset``)."""
        self._call(self.state.reset)

    def stats(self) -> dict[str, Any]:
        """``{"total": n, "requests": {model: {outcome: n}}}`` (``GET /_emulator/stats``)."""
        return self._call(self.state.ledger.stats)

    def _call(self, func: Callable[[], T]) -> T:
        if self._loop is None or self._thread is None:
            return func()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(func())
            except BaseException as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            self._loop = None
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = HttpServer(lambda req, ex: dispatch(self.state, req, ex), self.host, self._port)
        await server.start()
        self.port = server.port
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await server.close()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hive-emulator",
        description="An OpenRouter-compatible HTTP server for offline development and tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    parser.add_argument("--catalog", required=True, type=Path, help="a /api/v1/models JSON file to serve")
    parser.add_argument("--fault", action="append", default=[], metavar="MODEL:KIND:RATE",
                        help="inject a fault (MODEL may be *; KIND 429|500|502|503|timeout|disconnect|"
                             "midstream-error|malformed|slow; RATE 0..1); repeatable")
    parser.add_argument("--quality", action="append", default=[], metavar="MODEL=Q",
                        help="answer quality of MODEL in 0..1, what the emulator's judge scores (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed for answers, latency and faults")
    parser.add_argument("--latency-scale", type=float, default=1.0,
                        help="multiply every delay (0 = no artificial delay; default 1)")
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any sk-or-v1- key)")
    parser.add_argument("--credit-limit", default=None, help="USD limit per key; requests beyond it get 402")
    return parser.parse_args(argv)


async def _serve_until_signal(state: EmulatorState, host: str, port: int) -> None:
    server = HttpServer(lambda req, ex: dispatch(state, req, ex), host, port)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on http://{host}:{server.port}{API_PREFIX}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hive-emulator``; returns the exit status."""
    args = _parse_args(argv)
    try:
        faults = [parse_fault(spec) for spec in args.fault]
        limit = None if args.credit_limit is None else Decimal(args.credit_limit)
        quality = dict(parse_quality(spec) for spec in args.quality)
        state = EmulatorState(Catalog.from_path(args.catalog), faults=faults, seed=args.seed,
                              latency_scale=args.latency_scale, api_key=args.api_key, credit_limit=limit,
                              quality=quality)
    except (ValueError, InvalidOperation, OSError) as exc:
        print(f"hive-emulator: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve_until_signal(state, args.host, args.port))
    except OSError as exc:
        print(f"hive-emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
