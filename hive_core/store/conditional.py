"""Conditional writes in object storage, and the job lock built on them: two hosts cannot both win.

``pyarrow.fs.S3FileSystem`` has no conditional PUT (no ``If-None-Match``/``If-Match``), so the two
writes that must be exclusive go through botocore (installed with boto3; the AWS SDK for Python,
the same credential chain as pyarrow's): :func:`put_if_absent` (``If-None-Match: *``, the server
refuses with 412 when the object exists) and a replace that holds only while the object is still
the one read (``If-Match: <etag>``).

:func:`object_lock` is ``job_lock`` for an ``s3://`` data directory (``state/<name>.lock``). A kernel
releases a ``flock`` when its holder dies; nothing releases an object, so the lock is a lease: its
holder rewrites it (``If-Match``) every third of :data:`LEASE_S`, and a lock object whose last write
is older than the lease (on the *server's* clock: its ``Last-Modified`` against its ``Date``, never
this host's) is taken over with ``If-Match`` on the stale version, which one host alone can win. A
holder that could not renew in time has lost the lock; it says so when it releases.

The event log's compaction (``ingest.compact_remote``) uses the same primitives: its journal is
created with :func:`create_object`, removed with :func:`delete_if_match` (only the version it
wrote), and a rolled-back compaction's output name is fenced with a :func:`put_tombstone`, a marked
empty object that makes the dead (or late) compactor's own ``If-None-Match`` PUT of that name fail.
Ages are always the server's: :attr:`ObjectVersion.age_s` and :func:`server_now`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from hive_core.errors import ConfigError, DataError, LockHeld, StorageError
from hive_core.store.objects import ObjectPath, S3Endpoint, s3_endpoint

__all__ = ["LEASE_S", "ObjectVersion", "create_object", "delete_if_match", "head_version", "object_lock", "put_if_absent",
           "put_tombstone", "read_version", "server_now"]

#: seconds a lock object stays valid without being renewed (a killed holder's lock is free after it)
LEASE_S = 60.0
_POLL_S = 0.2
#: a condition the server refused (412), or a concurrent conditional write it resolved (409)
_LOST = frozenset({409, 412})
#: the user metadata that marks a tombstone (S3 returns metadata keys in lower case)
_TOMBSTONE_META = {"hive-tombstone": "compaction-rolled-back"}


@functools.lru_cache(maxsize=4)
def _client(endpoint: S3Endpoint) -> Any:
    try:
        import botocore.session
    except ImportError:
        raise ConfigError("an s3:// data directory needs botocore for its lock's conditional writes: "
                          "pip install 'hive[s3]'") from None

    return botocore.session.Session().create_client("s3", endpoint_url=endpoint.endpoint_url,
                                                    region_name=endpoint.region)


def _call(path: ObjectPath, operation: str, **kwargs: Any) -> dict[str, Any] | None:
    """One S3 call on ``path``; ``None`` when its condition failed; other errors as one line."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = path.key.partition("/")
    keyed = {"Key": key} if key else {}
    try:
        result: dict[str, Any] = getattr(_client(s3_endpoint()), operation)(Bucket=bucket, **keyed, **kwargs)
        return result
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if status in _LOST:
            return None
        if status == 404:
            raise FileNotFoundError(2, "no such object", str(path)) from None
        raise StorageError(path, f"{operation}: {exc.response.get('Error', {}).get('Code', status)}",
                           "check the bucket and the AWS credentials") from None
    except BotoCoreError as exc:  # no endpoint, no credentials: its message names neither secret
        raise StorageError(path, str(exc), "check AWS_ENDPOINT_URL and the AWS credentials") from None


def create_object(path: ObjectPath, data: bytes) -> str | None:
    """Create ``path`` with ``data`` unless it exists (``If-None-Match: *``): the new object's ETag,
    ``None`` when the object existed (another writer won)."""
    created = _call(path, "put_object", Body=data, IfNoneMatch="*")
    return None if created is None else str(created["ETag"])


def put_if_absent(path: ObjectPath, data: bytes) -> bool:
    """Create ``path`` with ``data`` unless it exists (``If-None-Match: *``); whether this call created it."""
    return create_object(path, data) is not None


def put_tombstone(path: ObjectPath) -> bool:
    """Create an empty, marked object at ``path`` unless something is there: whether this call did.
    Once it exists, nobody's ``If-None-Match`` PUT of ``path`` can succeed."""
    return _call(path, "put_object", Body=b"", IfNoneMatch="*", Metadata=_TOMBSTONE_META) is not None


def delete_if_match(path: ObjectPath, etag: str) -> bool:
    """Delete ``path`` only while it is the version ``etag`` (``If-Match``): whether this call deleted
    it (``False``: it is gone, or another writer replaced it)."""
    try:
        return _call(path, "delete_object", IfMatch=etag) is not None
    except FileNotFoundError:
        return False


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an object, as a HEAD or GET saw it."""

    etag: str
    size: int
    #: seconds since it was written, on the server's clock (its ``Date`` against ``Last-Modified``)
    age_s: float
    #: an empty marker left by a rolled-back compaction (:func:`put_tombstone`)
    tombstone: bool


def _version(response: dict[str, Any]) -> ObjectVersion:
    server = parsedate_to_datetime(response["ResponseMetadata"]["HTTPHeaders"]["date"])
    written: datetime = response["LastModified"]
    return ObjectVersion(str(response["ETag"]), int(response.get("ContentLength", 0)),
                         (server - written).total_seconds(),
                         response.get("Metadata", {}).get("hive-tombstone") == _TOMBSTONE_META["hive-tombstone"])


def head_version(path: ObjectPath) -> ObjectVersion | None:
    """The current version of ``path`` (one HEAD); ``None`` when there is none."""
    try:
        head = _call(path, "head_object")
    except FileNotFoundError:
        return None
    return None if head is None else _version(head)


def read_version(path: ObjectPath) -> tuple[bytes, ObjectVersion] | None:
    """The content of ``path`` and the version it belongs to (one GET); ``None`` when there is none."""
    try:
        got = _call(path, "get_object")
    except FileNotFoundError:
        return None
    if got is None:
        return None
    with contextlib.closing(got["Body"]) as body:
        return bytes(body.read()), _version(got)


def server_now(path: ObjectPath) -> float:
    """The server's clock (POSIX seconds, from the ``Date`` of a HEAD on ``path``'s bucket): object
    ages are measured on it, never on this host's."""
    bucket = path.key.partition("/")[0]
    head = _call(ObjectPath(path.scheme, bucket), "head_bucket")
    if head is None:
        raise StorageError(path, "head_bucket refused", "check the bucket and the AWS credentials")
    return parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["date"]).timestamp()


def _holder() -> bytes:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}).encode()


def _stale_etag(path: ObjectPath, lease_s: float) -> str | None:
    """The lock object's version when its last write is older than the lease on the server's clock."""
    version = head_version(path)
    return version.etag if version is not None and version.age_s >= lease_s else None


def _take(path: ObjectPath, lease_s: float) -> str | None:
    """The etag of the lock object this call wrote (created, or taken over from a stale holder)."""
    created = _call(path, "put_object", Body=_holder(), IfNoneMatch="*")
    if created is not None:
        return str(created["ETag"])
    stale = _stale_etag(path, lease_s)
    if stale is None:
        return None
    taken = _call(path, "put_object", Body=_holder(), IfMatch=stale)
    return None if taken is None else str(taken["ETag"])


@contextlib.contextmanager
def object_lock(path: ObjectPath, *, timeout_s: float, lease_s: float = LEASE_S) -> Iterator[ObjectPath]:
    """Hold the lock object ``path`` (see the module docstring); :class:`LockHeld` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (etag := _take(path, lease_s)) is None:
        if time.monotonic() >= deadline:
            raise LockHeld(f"another run holds {path}; waited {timeout_s:g} s, try again later "
                           f"(a killed run's lock is free {lease_s:g} s after its last renewal)")
        time.sleep(_POLL_S)
    state = {"etag": etag, "lost": False}
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease_s / 3):
            renewed = _call(path, "put_object", Body=_holder(), IfMatch=state["etag"])
            if renewed is None:
                state["lost"] = True
                return
            state["etag"] = str(renewed["ETag"])

    renewer = threading.Thread(target=renew, name="hive-object-lock", daemon=True)
    renewer.start()
    try:
        yield path
    finally:
        stop.set()
        renewer.join()
        if not state["lost"]:
            with contextlib.suppress(FileNotFoundError):
                if _call(path, "head_object", IfMatch=state["etag"]) is not None:
                    _call(path, "delete_object")
    if state["lost"]:
        raise DataError(f"{path}: this run's lock lapsed (not renewed within {lease_s:g} s) and another run "
                        "took it: check the other run's output")
