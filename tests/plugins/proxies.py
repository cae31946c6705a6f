"""Faulty networks between a store's client and its real server: TCP proxies on 127.0.0.1 that, once,
spoil one matching request and relay everything else unchanged.

:class:`AnswerDroppingProxy` lets the request land and withholds its answer (a lost answer: the
client retries a write that happened); :class:`BodyCuttingProxy` relays the request's head and half
its body, then cuts both connections (a writer killed, or a connection lost, mid-upload: the server
must store nothing). A request is recognised by its method and a regular expression found in its
head, lower-cased; ``dropped`` / ``cut`` count what was spoiled, so a trial can prove its fault
happened.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading

__all__ = ["AnswerDroppingProxy", "BodyCuttingProxy"]


class _OnceProxy:
    """The relay both proxies share: one thread per direction per connection; a subclass decides,
    per request chunk, what reaches the server (``_forward``) and, per answer chunk, whether the
    client hears it (``_relay``)."""

    def __init__(self, upstream: str, method: bytes, pattern: bytes) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.method, self.pattern = method, re.compile(pattern)
        self._armed = True
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _matches(self, chunk: bytes) -> bool:
        """The first request that matches, once (the proxy then disarms)."""
        with self._lock:
            if self._armed and chunk.startswith(self.method + b" ") and \
                    self.pattern.search(chunk.split(b"\r\n\r\n", 1)[0].lower()):
                self._armed = False
                return True
            return False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            spoiled = threading.Event()
            threading.Thread(target=self._requests, args=(client, server, spoiled), daemon=True).start()
            threading.Thread(target=self._answers, args=(server, client, spoiled), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket, spoiled: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                if not self._forward(chunk, server, spoiled):
                    break
        _close(client, server)

    def _answers(self, server: socket.socket, client: socket.socket, spoiled: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while chunk := server.recv(65536):
                if not self._relay(chunk, spoiled):
                    break
                client.sendall(chunk)
        _close(client, server)

    def _forward(self, chunk: bytes, server: socket.socket, spoiled: threading.Event) -> bool:
        server.sendall(chunk)
        return True

    def _relay(self, chunk: bytes, spoiled: threading.Event) -> bool:
        return True

    def close(self) -> None:
        self._server.close()


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


class AnswerDroppingProxy(_OnceProxy):
    """Once, lets a matching request reach the server and then closes the client's connection instead
    of relaying the answer: the request landed, the client never heard, and the client retries it (a
    lost answer, as a timeout or a cut connection make it). ``dropped`` counts the answers it withheld."""

    def __init__(self, upstream: str, method: bytes, pattern: bytes) -> None:
        self.dropped = 0
        super().__init__(upstream, method, pattern)

    def _forward(self, chunk: bytes, server: socket.socket, spoiled: threading.Event) -> bool:
        if self._matches(chunk):
            spoiled.set()  # before the request is sent: its answer cannot come earlier
        server.sendall(chunk)
        return True

    def _relay(self, chunk: bytes, spoiled: threading.Event) -> bool:
        # an interim "100 Continue" (botocore asks for it on PUT) lets the body go: relayed
        if spoiled.is_set() and not chunk.startswith(b"HTTP/1.1 100 "):
            self.dropped += 1
            return False
        return True


class BodyCuttingProxy(_OnceProxy):
    """Once, relays a matching request's head and the first half of its body (its ``Content-Length``),
    then closes both connections: the server saw an upload cut short, the client a lost connection
    (and retries). ``cut`` counts the requests it cut."""

    def __init__(self, upstream: str, method: bytes, pattern: bytes) -> None:
        self.cut = 0
        self._left: dict[int, int] = {}  # per server socket: body bytes still to relay before the cut
        super().__init__(upstream, method, pattern)

    def _forward(self, chunk: bytes, server: socket.socket, spoiled: threading.Event) -> bool:
        key = id(server)
        if self._matches(chunk):
            head, _, body = chunk.partition(b"\r\n\r\n")
            length = re.search(rb"\r\ncontent-length: *(\d+)", head.lower())
            assert length is not None, "the proxy cuts bodies of a known length"
            self._left[key] = int(length.group(1)) // 2
            server.sendall(head + b"\r\n\r\n")
            chunk = body
        if key not in self._left:
            server.sendall(chunk)
            return True
        left = self._left[key]
        server.sendall(chunk[:left])
        self._left[key] = left - min(left, len(chunk))
        if self._left[key] > 0:
            return True
        self.cut += 1
        spoiled.set()
        return False
