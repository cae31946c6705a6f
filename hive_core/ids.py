"""Time-ordered identifiers: UUIDv7 (RFC 9562) event ids and sortable writer ids."""

from __future__ import annotations

import os
import random
import socket
import threading
import time

__all__ = ["new_request_id", "uuid7", "uuid7_time_ms", "writer_id"]

_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child gets a lock of its own: another thread of the parent may hold this one."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
_last_ms = 0
_counter = 0
_prefix = ""  # the hex of _last_ms and the version nibble, formatted once per millisecond
_COUNTER_MAX = 0xFFF


def uuid7() -> str:
    """A UUIDv7 string. Monotonic within a process: a 12-bit counter orders ids in the same millisecond
    (RFC 9562 method 1); 62 random bits keep processes apart. Every event and request takes one,
    several per completion: the millisecond's part is formatted once for all ids of that millisecond."""
    global _last_ms, _counter, _prefix
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = random.getrandbits(10)  # leave headroom before the counter overflows
            _prefix = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7"
        else:
            _counter += 1
            if _counter > _COUNTER_MAX:  # borrow the next millisecond rather than repeat
                _last_ms += 1
                _counter = 0
                _prefix = f"{_last_ms >> 16:08x}-{_last_ms & 0xFFFF:04x}-7"
        prefix, counter = _prefix, _counter
    tail = random.getrandbits(62)  # after the variant bits 0b10
    return f"{prefix}{counter:03x}-{0x8000 | (tail >> 48):04x}-{tail & 0xFFFFFFFFFFFF:012x}"


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
