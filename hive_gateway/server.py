"""Running the gateway: one worker per process on aiohttp's server, N of them sharing the port.

    serve(GatewayConfig(settings, port=8080, workers=4))     # returns 0 after a clean SIGTERM

Each worker is :func:`hive_gateway.app.build_app` behind an ``aiohttp.web.AppRunner`` with its
observers: :class:`~hive_gateway.metrics.Metrics` (``GET /metrics`` sums every worker's snapshot
under ``state/gateway/``) and :class:`~hive_gateway.accesslog.AccessLog` on stderr. The port is
one socket, bound before anything else (:func:`hive_gateway.config.listen`: no other process can
share it; a taken port is one line). With ``--workers N`` the parent forks N workers that accept on
that socket (each takes the connections it is free for), replaces one that dies while serving
(:class:`_Workers`), forwards SIGTERM/SIGINT to them and exits with the worst of their statuses.

SIGTERM (or Ctrl-C) stops accepting at once; requests in flight - streams above all - may finish
until ``drain_s``; what still runs then is cancelled, and each is recorded as cancelled (its usage
counted so far) exactly like a client that went away (:func:`drain`). Its client is told: a 503
``gateway_shutting_down`` that SDKs retry, or, once its stream started, that error as the stream's
last event. Then the upstream pool, the ledger and the event log close: every event is written
before the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, NoReturn

from aiohttp import web

from hive_core.errors import EventsLost, EventsSpilled, HiveError
from hive_core.store.datadir import is_remote
from hive_gateway.accesslog import AccessLog
from hive_gateway.app import INFLIGHT, Inflight, build_app
from hive_gateway.chat import DRAIN_DEADLINE
from hive_gateway.config import BACKLOG, listen
from hive_gateway.exposition import CONTENT_TYPE
from hive_gateway.metrics import BudgetRemaining, Metrics
from hive_gateway.observe import Fanout

if TYPE_CHECKING:
    from hive_core.budget import Budget
    from hive_gateway.config import GatewayConfig

__all__ = ["NO_AUTH_WARNING", "explain", "serve"]

#: said at start-up by a gateway that takes requests without a key
NO_AUTH_WARNING = ("WARNING: --no-auth: this gateway accepts requests WITHOUT a virtual key; anyone who can "
                   "reach {address} spends this OpenRouter account. For local development only.")

Announce = Callable[[str], None]
#: the one line that says a failure, None for a bug (see :func:`explain`)
Explain = Callable[[BaseException], "str | None"]

#: aiohttp's own shutdown wait, left for a request that began while :func:`drain` ended (there is
#: none after it, normally). aiohttp waits this long for the handler, again after cancelling the
#: body's read, then cancels the handler without awaiting it: given the drain's deadline, that
#: was twice the deadline, and a handler that went on after the ledger closed
STRAGGLER_S = 0.5
#: how long cancelled requests get to record how they ended (they do within milliseconds: a bound
#: against a handler that would ignore its cancellation, not a wait anyone should see)
CANCELLED_S = 10.0
#: the signals that stop a worker (the parent of several forwards them)
FORWARDED = (signal.SIGTERM, signal.SIGINT)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _metrics_route(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``GET /metrics``: rendered in a thread (it reads every worker's snapshot file and the ledger), sent
    with the text format's own content type (``version=0.0.4``, what Prometheus negotiates)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        text = await asyncio.get_running_loop().run_in_executor(None, metrics.render)
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    return handler


async def _worker(config: GatewayConfig, sock: socket.socket, ready: Callable[[str], None], explain: Explain,
                  who: str = "") -> None:
    """One worker: serve on ``sock`` until SIGTERM/SIGINT, drain, close (every event written).

    Every closing step runs whatever the others did. What failed is raised: the event log's failure
    first (where the events went, or that they are lost: the line an operator must read), the
    others said on their own line before it (``who``: which worker, when there are several)."""
    from hive_core.budget import Budget

    budget: Budget = Budget(config.settings.data_dir, clock=config.settings.clock)  # /metrics' reads, own connection
    metrics = Metrics(BudgetRemaining(budget), shared_dir=config.datadir.gateway_state)
    access_log = AccessLog(sys.stderr)
    app = build_app(config, Fanout(metrics, access_log))
    app.router.add_get("/metrics", _metrics_route(metrics))
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=STRAGGLER_S, handler_cancellation=True,
                           access_log=None)

    async def close() -> list[Exception]:
        failures: list[Exception] = []
        stages: tuple[Callable[[], Awaitable[None]], ...] = (
            partial(drain, runner, app[INFLIGHT], config.drain_s),
            runner.cleanup)  # close the connections, then the application (events flushed)
        for stage in stages:
            try:
                await stage()
            except Exception as exc:
                failures.append(exc)
        for step in (access_log.flush, metrics.close, budget.close):  # the last turn's lines, the final snapshot
            try:
                step()
            except Exception as exc:
                failures.append(exc)
        return failures

    failures: list[Exception] = []
    try:
        await _serve(sock, runner, metrics, ready)
    except Exception as exc:
        failures.append(exc)
    except BaseException:  # cancelled, interrupted: closed all the same, its failures said
        for failure in await close():
            _say_failure(failure, explain, who)
        raise
    failures += await close()
    if failures:
        worst = next((f for f in failures if isinstance(f, EventsSpilled | EventsLost)), failures[0])
        for failure in failures:
            if failure is not worst:
                _say_failure(failure, explain, who)
        raise worst


async def _serve(sock: socket.socket, runner: web.AppRunner, metrics: Metrics, ready: Callable[[str], None]) -> None:
    """Accept on ``sock``, say so, and wait for SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    await runner.setup()  # opens the event log first: the handlers below replace its SIGTERM hook
    for signum in FORWARDED:
        loop.add_signal_handler(signum, stop.set)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)  # a forked worker starts with them blocked (_Workers)
    site = web.SockSite(runner, sock, backlog=BACKLOG)
    await site.start()
    metrics.start()
    host, port = runner.addresses[0][:2]
    ready(f"http://{host}:{port}")
    await stop.wait()


def explain(error: BaseException) -> str | None:
    """The one line that says ``error`` (Hive's own errors), ``None`` for a bug (its traceback is
    printed). The CLI passes its own, which also turns a storage failure into one line."""
    if isinstance(error, HiveError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return None


def _say_failure(error: BaseException, explain: Explain, who: str = "") -> None:
    line = explain(error)
    if line is None:
        traceback.print_exception(error)
        sys.stderr.flush()
    else:
        _say(f"error: {who}{line}")


async def drain(runner: web.AppRunner, inflight: Inflight, timeout: float) -> None:
    """Stop accepting; let the requests in ``inflight`` finish until ``timeout`` seconds from now;
    cancel those still running and wait until each has recorded how it ended, so nothing settles or
    records after the ledger and the log close. A request that starts meanwhile is refused at once."""
    inflight.draining = True
    requests = inflight.tasks
    for site in runner.sites:
        await site.stop()
    await asyncio.sleep(0)  # a connection accepted before the stop starts its request (aiohttp's own order)
    if runner.server is not None:
        runner.server.pre_shutdown()  # a keep-alive connection closes after its request
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while requests and (left := deadline - loop.time()) > 0:
        await asyncio.wait(list(requests), timeout=left)
    if not requests:
        return
    for task, tally in requests.items():
        tally.drained, tally.error_class = True, DRAIN_DEADLINE  # not the client's doing: told so, and logged so
        task.cancel()
    await asyncio.wait(list(requests), timeout=CANCELLED_S)


def _tell(fd: int) -> None:
    """A worker listens: one byte to the parent, which announces once all of them do; then its end
    of the pipe closes, so the parent reads the end of it once every worker either said so or died."""
    os.write(fd, b"1")
    os.close(fd)


#: Arrow's allocator for the event log's flushes: the system's. Arrow's default (mimalloc) keeps
#: its arenas once a flush used them: measured ~8 MB more resident memory per worker for buffers
#: of a few thousand events that live for milliseconds. An operator's own setting wins.
ARROW_POOL = ("ARROW_DEFAULT_MEMORY_POOL", "system")

#: Modules pyarrow loads whenever it can, which a worker never uses; left out, they cannot load.
#: ``pyarrow.lib`` imports numpy at once (measured: 11 MB resident per worker, an OpenBLAS thread,
#: ~270 ms of the first flush); ``pyarrow.parquet`` imports ``pyarrow.fs``, which loads every
#: filesystem's binding (the log writes local files, or S3 through ``pyarrow._s3fs``: the AWS SDK
#: alone is ~3 MB). pyarrow runs without each of them: numpy is optional since pyarrow 16, and a
#: binding that fails to import is only missing from ``pyarrow.fs``.
UNUSED_BY_WORKERS = ("numpy", "pyarrow._gcsfs", "pyarrow._azurefs", "pyarrow._hdfs", "pyarrow._s3fs")
#: the binding a data directory in object storage needs, by its scheme (:mod:`hive_core.store.backends`):
#: that one is kept
FS_BINDINGS = {"s3": "pyarrow._s3fs", "az": "pyarrow._azurefs", "gs": "pyarrow._gcsfs"}


def left_out(data_dir: object) -> list[str]:
    """The modules a worker of ``data_dir`` never loads: :data:`UNUSED_BY_WORKERS` but the
    filesystem binding its object store needs."""
    needed = FS_BINDINGS.get(getattr(data_dir, "scheme", "")) if is_remote(data_dir) else None
    return [name for name in UNUSED_BY_WORKERS if name != needed]


def _leave_out_unused(config: GatewayConfig) -> None:
    """Before anything imports pyarrow (the log's first flush), in the parent: every worker inherits it."""
    for name in left_out(config.settings.data_dir):
        if name not in sys.modules:  # one already loaded stays
            # the import system's own rule: a None entry makes `import name` raise ImportError
            sys.modules[name] = None  # type: ignore[assignment]


def serve(config: GatewayConfig, *, announce: Announce = _say, explain: Explain = explain) -> int:
    """Serve until SIGTERM; the exit status (0: drained and every event written). One worker raises
    what failed; with several, each worker says its failure (``explain``: the line) and the exit
    status is the worst of theirs. A port that is taken raises :class:`~hive_gateway.config.ListenError`
    before anything starts."""
    os.environ.setdefault(*ARROW_POOL)  # before pyarrow loads (the log's first flush), in every worker
    _leave_out_unused(config)
    sock = listen(config.host, config.port)
    config = replace(config, port=sock.getsockname()[1])  # --port 0: the one picked
    if config.no_auth:
        announce(NO_AUTH_WARNING.format(address=f"{config.host}:{config.port}"))
    with sock:
        if config.workers <= 1:
            asyncio.run(_worker(config, sock, lambda url: announce(f"listening on {url}"), explain))
            return 0
        workers = _Workers(config, sock, explain)
        if workers.start():
            announce(f"listening on http://{config.host}:{config.port} ({config.workers} workers)")
        return workers.wait()


#: a worker that dies this soon after it started died quickly: its replacement waits, longer each time
QUICK_DEATH_S = 5.0
#: the wait before replacing a worker that died quickly, doubled for each quick death in a row
RESTART_BACKOFF_S = 0.1
#: quick deaths in a row after which the gateway stops: what kills its workers kills the next ones
MAX_QUICK_DEATHS = 5


def _how(code: int) -> str:
    """How a process ended, from :func:`os.waitstatus_to_exitcode`: ``SIGKILL``, ``exit code 3``."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class _Workers:
    """The parent of ``--workers N``: forks the workers on its listening socket, replaces one that
    dies while the gateway serves, forwards SIGTERM/SIGINT, and collects the exit statuses.

    The parent keeps its copy of the socket while it serves: a replacement inherits it, and
    connections wait in its queue meanwhile. It closes it as it stops, so once the workers stopped
    accepting, a connection is refused."""

    def __init__(self, config: GatewayConfig, sock: socket.socket, explain: Explain) -> None:
        self.config, self.sock, self.explain = config, sock, explain
        self.running: dict[int, float] = {}  # pid -> when it was forked (monotonic)
        self.stopping = False
        self.failed = False
        self.worst = 0  # the worst exit status of a worker stopped with the gateway
        self.quick_deaths = 0  # in a row
        self.previous = {signum: signal.getsignal(signum) for signum in FORWARDED}  # what a worker starts with

    def start(self) -> bool:
        """Fork the workers; whether each of them listens (False: one died first, and all are told to
        stop; or the gateway was told to stop meanwhile)."""
        for signum in FORWARDED:
            signal.signal(signum, self.stop)
        ready_r, ready_w = os.pipe()
        for _ in range(self.config.workers):
            self._fork(ready_w, ready_r)
        os.close(ready_w)
        started = 0
        while started < self.config.workers:
            got = os.read(ready_r, self.config.workers - started)
            if not got:
                break  # a worker died before listening: it said why
            started += len(got)
        os.close(ready_r)
        if started < self.config.workers and not self.stopping:
            self.failed = True  # a worker died before listening: it said why
            self.stop()
        return not self.stopping

    def stop(self, signum: int | None = None, frame: object = None) -> None:
        """Stop accepting and tell every worker to drain (SIGTERM, SIGINT, or the gateway gave up)."""
        self.stopping = True
        self.sock.close()
        for pid in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def wait(self) -> int:
        """Reap each worker as it exits, replace one that died while serving; once all are gone, the
        exit status."""
        while self.running:
            pid, status = os.waitpid(-1, 0)  # a signal's handler runs meanwhile; the wait goes on (PEP 475)
            forked = self.running.pop(pid, None)
            if forked is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                self.worst = max(self.worst, code & 0xFF)
            else:
                self._replace(pid, code, time.monotonic() - forked)
        return max(self.worst, 1) if self.failed else self.worst

    def _replace(self, pid: int, code: int, lived: float) -> None:
        """Say that ``pid`` died and start another; after quick deaths, not at once; after too many, stop."""
        self.quick_deaths = self.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        if self.quick_deaths >= MAX_QUICK_DEATHS:
            _say(f"error: gateway worker {pid} died ({_how(code)}): {self.quick_deaths} workers in a row died within "
                 f"{QUICK_DEATH_S:g} s of starting; stopping the gateway (the lines above may say why)")
            self.failed = True
            self.stop()
            return
        _say(f"error: gateway worker {pid} died ({_how(code)}); starting another")
        if self.quick_deaths:
            time.sleep(RESTART_BACKOFF_S * 2 ** (self.quick_deaths - 1))  # a SIGTERM meanwhile: none starts
        self._fork()

    def _fork(self, ready_w: int | None = None, ready_r: int | None = None) -> None:
        """One worker (its own loop, log, Session and pool) on the socket; ``ready_w``: where it says
        it listens. The signals wait until the parent knows its pid, so a SIGTERM reaches it too."""
        if self.stopping:
            return
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        pid = os.fork()
        if pid == 0:
            self._child(ready_w, ready_r)
        self.running[pid] = time.monotonic()
        if self.stopping:  # told to stop between the check above and now: its SIGTERM is waiting in it
            os.kill(pid, signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)

    def _child(self, ready_w: int | None, ready_r: int | None) -> NoReturn:
        """The worker's side of the fork: the signals' handlers as a single worker has them, the
        signals themselves held until its loop handles them (:func:`_serve`), so a SIGTERM that comes
        while it starts is a clean stop, not a kill; its one line if it fails, as one worker's CLI
        would say it (not a silent exit)."""
        code = 1
        who = f"worker {os.getpid()}: "
        try:  # whatever happens, this process never returns into the parent's code
            for signum, handler in self.previous.items():
                signal.signal(signum, handler)
            if ready_r is not None:
                os.close(ready_r)
            ready = (lambda url: _tell(ready_w)) if ready_w is not None else (lambda url: None)
            asyncio.run(_worker(self.config, self.sock, ready, self.explain, who))
            code = 0
        except BaseException as exc:
            _say_failure(exc, self.explain, who)
        finally:
            os._exit(code)
