"""Conditional writes in object storage, and the job lock built on them: two hosts cannot both win.

``pyarrow.fs`` has no conditional PUT (no ``If-None-Match``/``If-Match``), so the writes that must be
exclusive go through the scheme's backend (:mod:`hive_core.store.backends`): :func:`put_if_absent`
(``If-None-Match: *``, the server refuses when the object exists) and a replace that holds only
while the object is still the one read (``If-Match: <etag>``).

:func:`object_lock` is ``job_lock`` for a data directory in object storage (``state/<name>.lock``). A kernel
releases a ``flock`` when its holder dies; nothing releases an object, so the lock is a lease: its
holder rewrites it (``If-Match``) every third of :data:`LEASE_S`, and a lock object whose last write
is older than the lease (on the *server's* clock: its ``Last-Modified`` against its ``Date``, never
this host's) is taken over with ``If-Match`` on the stale version, which one host alone can win. A
holder that could not renew in time has lost the lock; it says so when it releases. An SDK retries
a PUT whose answer it lost (a timeout, a cut connection), and when the first attempt had landed
the retry is refused by the object it wrote: the lock's body carries a nonce, so a refused PUT
whose body the object holds is read back as this holder's own write, never as another run's.

The event log's compaction (``ingest.compact_remote``) uses the same primitives: its journal is
created with :func:`create_object`, removed with :func:`delete_if_match` (only the version it
wrote), and a rolled-back compaction's output name is fenced with a :func:`put_tombstone`, a marked
empty object that makes the dead (or late) compactor's own ``If-None-Match`` PUT of that name fail.
Ages are always the server's: :attr:`ObjectVersion.age_s` and :func:`server_now`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator

from hive_core.errors import DataError, LockHeld, StorageError
from hive_core.store.backends import TOMBSTONE_META, ObjectBackend, ObjectVersion, backend
from hive_core.store.objects import ObjectPath

__all__ = ["LEASE_S", "ObjectVersion", "create_object", "delete_if_match", "head_version", "object_lock", "put_if_absent",
           "put_tombstone", "read_version", "server_now"]

#: seconds a lock object stays valid without being renewed (a killed holder's lock is free after it)
LEASE_S = 60.0
_POLL_S = 0.2


def _backend(path: ObjectPath) -> ObjectBackend:
    return backend(path.scheme)


def create_object(path: ObjectPath, data: bytes) -> str | None:
    """Create ``path`` with ``data`` unless it exists (``If-None-Match: *``): the new object's ETag,
    ``None`` when the object existed (another writer won)."""
    return _backend(path).put(path, data, if_none_match=True)


def put_if_absent(path: ObjectPath, data: bytes) -> bool:
    """Create ``path`` with ``data`` unless it exists (``If-None-Match: *``); whether this call created it."""
    return create_object(path, data) is not None


def put_tombstone(path: ObjectPath) -> bool:
    """Create an empty, marked object at ``path`` unless something is there: whether this call did.
    Once it exists, nobody's ``If-None-Match`` PUT of ``path`` can succeed."""
    return _backend(path).put(path, b"", if_none_match=True, metadata=dict(TOMBSTONE_META)) is not None


def delete_if_match(path: ObjectPath, etag: str) -> bool:
    """Delete ``path`` only while it is the version ``etag`` (``If-Match``): whether this call deleted
    it (``False``: it is gone, or another writer replaced it)."""
    try:
        return _backend(path).delete(path, if_match=etag)
    except FileNotFoundError:
        return False


def head_version(path: ObjectPath) -> ObjectVersion | None:
    """The current version of ``path`` (one HEAD); ``None`` when there is none."""
    try:
        return _backend(path).head(path)
    except FileNotFoundError:
        return None


def read_version(path: ObjectPath) -> tuple[bytes, ObjectVersion] | None:
    """The content of ``path`` and the version it belongs to (one GET); ``None`` when there is none."""
    try:
        return _backend(path).get(path)
    except FileNotFoundError:
        return None


def server_now(path: ObjectPath) -> float:
    """The server's clock (POSIX seconds, from the ``Date`` of a response about ``path``'s bucket):
    object ages are measured on it, never on this host's."""
    return _backend(path).server_now(path)


def _holder() -> bytes:
    """A lock object's body: who holds it, and a nonce that makes each write's body its own."""
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(),
                       "nonce": secrets.token_hex(8)}).encode()


def _own(path: ObjectPath, body: bytes, refused: tuple[bytes, ObjectVersion] | None) -> str | None:
    """The etag of ``body``'s write when the server refused a conditional PUT of it but holds it:
    the SDK retried a PUT whose answer was lost (a timeout, a cut connection) after it had landed,
    and its retry was refused by the object the first attempt wrote. ``refused``: what a GET read
    after the refusal. The nonce in ``body`` (:func:`_holder`) makes it this write's alone."""
    return refused[1].etag if refused is not None and refused[0] == body else None


def _put_own(path: ObjectPath, body: bytes, *, if_match: str) -> str | None:
    """Replace the lock object while it is the version ``if_match``: the new etag, or None when
    another run replaced or removed it (a refusal whose body is ours is ours: :func:`_own`)."""
    written = _backend(path).put(path, body, if_match=if_match)
    return written if written is not None else _own(path, body, read_version(path))


def _take(path: ObjectPath, lease_s: float) -> str | None:
    """The etag of the lock object this call wrote (created, or taken over from a holder whose
    last write is older than the lease on the server's clock), or None while another run holds it."""
    body = _holder()
    created = _backend(path).put(path, body, if_none_match=True)
    if created is not None:
        return created
    current = read_version(path)  # one GET: whose the object is, and how old
    if current is None:
        return None  # released meanwhile: the next attempt creates it
    if (ours := _own(path, body, current)) is not None:
        return ours
    if current[1].age_s < lease_s:
        return None
    return _put_own(path, _holder(), if_match=current[1].etag)


@contextlib.contextmanager
def object_lock(path: ObjectPath, *, timeout_s: float, lease_s: float = LEASE_S) -> Iterator[ObjectPath]:
    """Hold the lock object ``path`` (see the module docstring); :class:`LockHeld` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (etag := _take(path, lease_s)) is None:
        if time.monotonic() >= deadline:
            raise LockHeld(f"another run holds {path}; waited {timeout_s:g} s, try again later "
                           f"(a killed run's lock is free {lease_s:g} s after its last renewal)")
        time.sleep(_POLL_S)
    held = [etag]  # the version this holder wrote last (the renewer replaces it)
    lost = threading.Event()
    stop = threading.Event()

    def renew() -> None:
        lapses = time.monotonic() + lease_s  # the lease as others see it, from the last write
        pause = lease_s / 3
        while not stop.wait(pause):
            sent = time.monotonic()  # the server's Last-Modified is no earlier than this
            try:
                renewed = _put_own(path, _holder(), if_match=held[0])
            except (StorageError, OSError):  # a failed renewal is retried until the lease would lapse
                if time.monotonic() + min(1.0, lease_s / 10) >= lapses:
                    lost.set()
                    return
                pause = min(1.0, lease_s / 10)
                continue
            if renewed is None:
                lost.set()
                return
            held[0], lapses, pause = renewed, sent + lease_s, lease_s / 3

    renewer = threading.Thread(target=renew, name="hive-object-lock", daemon=True)
    renewer.start()
    try:
        yield path
    finally:
        stop.set()
        renewer.join()
        if not lost.is_set():
            try:  # only the version this holder wrote: refused, another run took the lock meanwhile
                if not _backend(path).delete(path, if_match=held[0]):
                    lost.set()
            except FileNotFoundError:
                lost.set()
    if lost.is_set():
        raise DataError(f"{path}: this run's lock lapsed (not renewed within {lease_s:g} s) and another run "
                        "may have taken it: check the other run's output")
