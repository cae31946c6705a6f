"""The object stores a data directory may live in, one backend module per URL scheme.

A backend gives :class:`~hive_core.store.objects.ObjectPath` its ``pyarrow.fs`` filesystem (every
plain read, write, listing and Parquet scan goes through it) and the few conditional operations
that ``pyarrow.fs`` does not have (:mod:`hive_core.store.conditional` builds the compaction journal,
tombstones and the job lock on them): a PUT that succeeds only when no object is there
(``If-None-Match: *``) or only while the object is the version read (``If-Match: <etag>``), a
DELETE under ``If-Match``, a HEAD and a GET that returns the version it read, and the server's clock.

Each backend module is imported only when its scheme is used, and takes its endpoint and
credentials from its ecosystem's standard environment, never from Hive's files. Its errors name
the object and the server's reason, never a credential.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from hive_core.store.objects import ObjectPath

__all__ = ["BACKENDS", "TOMBSTONE_META", "ObjectBackend", "ObjectVersion", "Scheme", "backend"]


@dataclass(frozen=True)
class Scheme:
    """A URL scheme a data directory may have."""

    #: the backend module: it has a module-level ``BACKEND`` (an :class:`ObjectBackend`)
    module: str
    #: what it is
    what: str
    #: what the URL's first part names, in the service's own words (Azure has containers, not buckets)
    root: str

    def form(self, scheme: str) -> str:
        """The URL of a data directory: ``s3://bucket/prefix``, ``az://container/prefix``."""
        return f"{scheme}://{self.root}/prefix"


BACKENDS: dict[str, Scheme] = {
    "s3": Scheme("hive_core.store.s3", "Amazon S3 or an S3-compatible server", "bucket"),
    "az": Scheme("hive_core.store.azure", "Azure Blob Storage (the account from the Azure environment)",
                 "container"),
    "gs": Scheme("hive_core.store.gcs", "Google Cloud Storage or its emulator", "bucket"),
}

#: the user metadata that marks a tombstone (:func:`hive_core.store.conditional.put_tombstone`);
#: stores return metadata keys in lower case
TOMBSTONE_META = {"hive-tombstone": "compaction-rolled-back"}


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an object, as a HEAD or GET saw it."""

    etag: str
    size: int
    #: seconds since it was written, on the server's clock (its ``Date`` against ``Last-Modified``)
    age_s: float
    #: an empty marker left by a rolled-back compaction (:func:`hive_core.store.conditional.put_tombstone`)
    tombstone: bool


class ObjectBackend(Protocol):
    """What a scheme's module provides. ``path`` is always of this backend's scheme. A condition the
    server refused returns ``None`` (or ``False``); a missing object raises ``FileNotFoundError``;
    any other failure a one-line :class:`~hive_core.errors.StorageError`."""

    #: the advice a storage error ends with (what to check: endpoint, credentials)
    advice: str

    def filesystem(self) -> pafs.FileSystem:
        """The ``pyarrow.fs`` filesystem of this scheme (one per process and environment)."""

    def put(self, path: ObjectPath, data: bytes, *, if_none_match: bool = False, if_match: str | None = None,
            metadata: dict[str, str] | None = None) -> str | None:
        """PUT ``data`` at ``path`` (under the one condition given): the new version's etag; ``None``
        when the condition failed."""

    def delete(self, path: ObjectPath, *, if_match: str | None = None) -> bool:
        """DELETE ``path`` (only while it is version ``if_match``): ``False`` when the condition failed."""

    def head(self, path: ObjectPath) -> ObjectVersion:
        """The current version of ``path``."""

    def get(self, path: ObjectPath) -> tuple[bytes, ObjectVersion]:
        """The content of ``path`` and the version it belongs to, in one GET."""

    def server_now(self, path: ObjectPath) -> float:
        """The server's clock (POSIX seconds), read off a response about ``path``'s bucket or container."""

    def listdir(self, path: ObjectPath) -> list[pafs.FileInfo]:
        """The objects (with size and mtime) and the prefixes (as directories) directly under
        ``path``; none when nothing is there."""


@functools.cache
def backend(scheme: str) -> ObjectBackend:
    """The backend of ``scheme`` (a key of :data:`BACKENDS`), its module imported on first use."""
    module = importlib.import_module(BACKENDS[scheme].module)
    found: ObjectBackend = module.BACKEND
    return found
