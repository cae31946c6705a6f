"""Time-ordered identifiers: UUIDv7 (RFC 9562) event ids and sortable writer ids."""

from __future__ import annotations

import os
import random
import socket
import threading
import time

__all__ = ["new_request_id", "uuid7", "uuid7_time_ms", "writer_id"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0
_COUNTER_MAX = 0xFFF
_FORMAT = "%08x-%04x-%04x-%04x-%012x"


def uuid7() -> str:
    """A UUIDv7 string. Monotonic within a process: a 12-bit counter orders ids in the same millisecond
    (RFC 9562 method 1); 62 random bits keep processes apart."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = random.getrandbits(10)  # leave headroom before the counter overflows
        else:
            _counter += 1
            if _counter > _COUNTER_MAX:  # borrow the next millisecond rather than repeat
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        counter = _counter
    tail = (0b10 << 62) | random.getrandbits(62)
    return _FORMAT % (ms >> 16, ms & 0xFFFF, 0x7000 | counter, tail >> 48, tail & 0xFFFFFFFFFFFF)


def uuid7_time_ms(value: str) -> int:
    """The Unix millisecond timestamp inside a UUIDv7 string."""
    return int(value.replace("-", "")[:12], 16)


def new_request_id() -> str:
    """An id shared by every event of one logical request."""
    return uuid7()


def writer_id() -> str:
    """``<UTC start time>-<host>-<pid>-<random>``: unique per writer, sorts by start time."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    host = "".join(c for c in socket.gethostname() if c.isascii() and c.isalnum())[:16] or "host"  # portable names
    return f"{stamp}-{host}-{os.getpid()}-{random.getrandbits(24):06x}"
