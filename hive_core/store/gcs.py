"""``gs://bucket/prefix``: Google Cloud Storage (or an emulator), the backend of :mod:`hive_core.store.backends`.

Recursive listings and scans go through ``pyarrow.fs.GcsFileSystem``. Writes, deletions, the
conditional operations and one-level listings are six calls of the Cloud Storage JSON API, sent
with httpx (a runtime dependency already): a multipart upload carrying the content's MD5, which
creates the object whole when the request completes and the hash matches, or not at all; a DELETE; the object's
metadata; its content; the bucket's metadata for the server's clock; a LIST with a delimiter
(pyarrow's reads no prefix: :meth:`GcsBackend.listdir`). A version is the object's *generation*, and the
conditions are GCS's generation preconditions: ``ifGenerationMatch=0`` (only while no object is
there: ``If-None-Match: *``) and ``ifGenerationMatch=<generation>`` (only while it is that version:
``If-Match``). (GCS's ``etag`` also changes when only metadata does, and the JSON API takes no
``If-Match`` on it; the generation is what GCS documents for "only if unchanged".) A transient
failure (no connection, a timeout, 408, 429, 5xx) is retried twice; a conditional write whose
answer was lost and whose retry is refused by the object it wrote is read back by
:mod:`hive_core.store.conditional` (the lock's nonce), as on the other backends.

The endpoint and credentials come from Google's standard environment only:
``STORAGE_EMULATOR_HOST`` (what Google's own clients read: ``http://127.0.0.1:9023``) points both
pyarrow and these calls at an emulator, unauthenticated; otherwise Application Default Credentials
(``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's ``application-default`` login, or the metadata server
of a Google Cloud host), through ``google-auth`` (the ``gcs`` extra: Google's credential library,
which finds, refreshes and scopes tokens; pyarrow's client reads the same chain itself). No error
carries a token: a refused call says GCS's status and reason.

Tested against Google's storage-testbench (``tests/gcs_testbench``, the server Google's client
libraries are tested against; it checks generation preconditions on uploads, deletions and reads),
unauthenticated; the credential chain on Google Cloud itself is on paper only.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from hive_core.errors import ConfigError, StorageError
from hive_core.store.backends import TOMBSTONE_META, ObjectVersion

if TYPE_CHECKING:
    import httpx
    import pyarrow.fs as pafs

    from hive_core.store.objects import ObjectPath

__all__ = ["BACKEND", "GcsEndpoint", "gcs_endpoint"]

_ADVICE = ("check the bucket, STORAGE_EMULATOR_HOST or the Application Default Credentials "
           "(GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`)")
_API = "https://storage.googleapis.com"
_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
#: statuses worth a second attempt: a timeout, GCS's rate limit (one write per second per object),
#: and the server's own failures
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
_ATTEMPTS = 3
#: reads of an object that another writer keeps replacing between its metadata and its content
_REREADS = 10
#: how long pyarrow's client retries a failed request before it reports it (its default is 15 minutes)
_PYARROW_RETRY = timedelta(seconds=20)


@dataclass(frozen=True)
class GcsEndpoint:
    """Where the JSON API is: ``https://storage.googleapis.com`` with credentials, or an emulator's
    URL (``STORAGE_EMULATOR_HOST``) without."""

    url: str
    emulator: bool


def gcs_endpoint(environ: Mapping[str, str] | None = None) -> GcsEndpoint:
    """The endpoint of Google's standard environment (``STORAGE_EMULATOR_HOST``, else GCS itself)."""
    env = os.environ if environ is None else environ
    host = env.get("STORAGE_EMULATOR_HOST", "").strip()
    if not host:
        return GcsEndpoint(_API, False)
    url = host if "://" in host else f"http://{host}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"STORAGE_EMULATOR_HOST={host!r} is not an emulator's address: "
                          "write it as http://host:port")
    return GcsEndpoint(f"{parts.scheme}://{parts.netloc}", True)


@functools.lru_cache(maxsize=4)
def _filesystem(endpoint: GcsEndpoint) -> pafs.FileSystem:
    import pyarrow.fs as pafs

    if endpoint.emulator:
        parts = urlsplit(endpoint.url)
        return pafs.GcsFileSystem(anonymous=True, scheme=parts.scheme, endpoint_override=parts.netloc,
                                  retry_time_limit=_PYARROW_RETRY)
    _default_credentials()  # no credentials: one line now, never pyarrow's 20 s of retries first
    return pafs.GcsFileSystem(retry_time_limit=_PYARROW_RETRY)


class _Session:
    """The JSON API's HTTP client and, outside an emulator, the credentials that sign its requests."""

    def __init__(self, endpoint: GcsEndpoint) -> None:
        import httpx

        self.endpoint = endpoint
        self.http = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
        self._credentials: Any = None
        self._lock = threading.Lock()

    def headers(self) -> dict[str, str]:
        """The Authorization header (a fresh token) when the endpoint is Google's."""
        if self.endpoint.emulator:
            return {}
        with self._lock:
            if self._credentials is None:
                self._credentials = _default_credentials()
            headers: dict[str, str] = {}
            if not self._credentials.valid:
                from google.auth.exceptions import GoogleAuthError
                from google.auth.transport.requests import Request

                try:
                    self._credentials.refresh(Request())
                except GoogleAuthError as exc:  # its message names the credential source, never the token
                    raise StorageError(_API, f"refreshing the Google credentials: {' '.join(str(exc).split())}",
                                       _ADVICE) from None
            self._credentials.apply(headers)
            return headers


def _default_credentials() -> Any:
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
    except ImportError:
        raise ConfigError("a gs:// data directory needs google-auth for Google's credentials: "
                          "pip install 'hive[gcs]'") from None
    try:
        credentials, _project = google.auth.default(scopes=[_SCOPE])
    except DefaultCredentialsError:
        raise ConfigError("a gs:// data directory needs Google credentials: set GOOGLE_APPLICATION_CREDENTIALS "
                          "to a service account key file or run `gcloud auth application-default login` "
                          "(or STORAGE_EMULATOR_HOST for an emulator)") from None
    return credentials


@functools.lru_cache(maxsize=4)
def _session(endpoint: GcsEndpoint) -> _Session:
    return _Session(endpoint)


def _split(path: ObjectPath) -> tuple[str, str]:
    bucket, _, name = path.key.partition("/")
    return bucket, name


class _Lost(Exception):
    """A generation precondition that did not hold (412)."""


def _reason(response: httpx.Response) -> str:
    """GCS's reason for an error response (``conditionNotMet``, ``notFound``...), else its status text."""
    try:
        error = response.json()["error"]
        reason = error.get("errors", [{}])[0].get("reason") or error.get("status") or ""
        return str(reason) or response.reason_phrase
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return response.reason_phrase or "refused"


def _send(path: ObjectPath, operation: str, method: str, url: str, *, conditional: bool = False,
          missing: bool = True, **kwargs: Any) -> httpx.Response:
    """One JSON API request about ``path``, retried while it fails transiently: its response.
    A 412 to a ``conditional`` request is :class:`_Lost`; a 404 is ``FileNotFoundError`` when
    ``missing`` says it means a missing object (an upload's 404 is a missing bucket: an error);
    any other failure one line (:class:`StorageError`) with GCS's reason, never a credential."""
    import httpx

    session = _session(gcs_endpoint())
    extra = kwargs.pop("headers", {})
    for attempt in range(_ATTEMPTS):
        last = attempt == _ATTEMPTS - 1
        try:
            response = session.http.request(method, f"{session.endpoint.url}{url}",
                                            headers={**session.headers(), **extra}, **kwargs)
        except httpx.HTTPError as exc:  # the message names the endpoint, never a header
            if last:
                raise StorageError(path, f"{operation}: {type(exc).__name__}: {' '.join(str(exc).split())}",
                                   _ADVICE) from None
        else:
            if response.status_code < 300:
                return response
            if response.status_code == 412 and conditional:
                raise _Lost
            if response.status_code == 404:
                if not missing:  # an upload's object cannot be missing: its bucket is
                    raise StorageError(path, f"{operation}: the bucket does not exist (404)", _ADVICE)
                raise FileNotFoundError(2, "no such object", str(path))
            if response.status_code not in _TRANSIENT or last:
                raise StorageError(path, f"{operation}: {_reason(response)} ({response.status_code})", _ADVICE)
        time.sleep((0.5 * 3**attempt) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def _conditional(path: ObjectPath, operation: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
    """:func:`_send` of a request under a generation precondition: ``None`` when it did not hold."""
    try:
        return _send(path, operation, method, url, conditional=True, **kwargs)
    except _Lost:
        return None


def _object_url(path: ObjectPath) -> str:
    bucket, name = _split(path)
    return f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"


def _server_date(path: ObjectPath, response: httpx.Response) -> float:
    """The server's clock: the response's ``Date`` (never this host's)."""
    date = response.headers.get("Date")
    if not date:
        raise StorageError(path, "the server's response has no Date header", _ADVICE)
    return parsedate_to_datetime(date).timestamp()


def _version(resource: Mapping[str, Any], server: float) -> ObjectVersion:
    written = datetime.fromisoformat(str(resource["updated"]).replace("Z", "+00:00")).timestamp()
    metadata = resource.get("metadata") or {}
    tombstone = all(metadata.get(k) == v for k, v in TOMBSTONE_META.items())
    return ObjectVersion(str(resource["generation"]), int(resource.get("size", 0)), server - written, tombstone)


def _upload(path: ObjectPath, data: bytes, metadata: Mapping[str, str] | None,
            params: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The upload request's URL and its keyword arguments: a multipart upload whose resource names
    the object, its ``metadata`` and the MD5 of ``data``. The server checks the hash against what it
    received, so a body cut short (a writer killed mid-request, a dropped connection) is refused
    instead of stored: without it the testbench stores what arrived (an empty or partial object,
    seen with a writer killed by SIGKILL), and GCS documents the hash as its check on a write."""
    bucket, name = _split(path)
    boundary = f"hive-{uuid.uuid4().hex}"
    resource: dict[str, Any] = {"name": name, "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode()}
    if metadata:
        resource["metadata"] = dict(metadata)
    body = b"".join((f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                     json.dumps(resource).encode(),
                     f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(), data,
                     f"\r\n--{boundary}--\r\n".encode()))
    return (f"/upload/storage/v1/b/{quote(bucket, safe='')}/o",
            {"params": {"uploadType": "multipart", **params}, "content": body,
             "headers": {"Content-Type": f"multipart/related; boundary={boundary}"}})


class GcsBackend:
    """The :class:`~hive_core.store.backends.ObjectBackend` of ``gs://``."""

    advice = _ADVICE

    def filesystem(self) -> pafs.FileSystem:
        return _filesystem(gcs_endpoint())

    def put(self, path: ObjectPath, data: bytes, *, if_none_match: bool = False, if_match: str | None = None,
            metadata: dict[str, str] | None = None) -> str | None:
        params = {"ifGenerationMatch": "0"} if if_none_match else {}
        if if_match is not None:
            params["ifGenerationMatch"] = if_match
        url, request = _upload(path, data, metadata, params)
        if not params:
            return str(_send(path, "upload", "POST", url, missing=False, **request).json()["generation"])
        written = _conditional(path, "upload", "POST", url, missing=False, **request)
        return None if written is None else str(written.json()["generation"])

    def delete(self, path: ObjectPath, *, if_match: str | None = None) -> bool:
        if if_match is None:
            _send(path, "delete", "DELETE", _object_url(path))
            return True
        return _conditional(path, "delete", "DELETE", _object_url(path),
                            params={"ifGenerationMatch": if_match}) is not None

    def head(self, path: ObjectPath) -> ObjectVersion:
        response = _send(path, "get metadata", "GET", _object_url(path))
        return _version(response.json(), _server_date(path, response))

    def get(self, path: ObjectPath) -> tuple[bytes, ObjectVersion]:
        for _ in range(_REREADS):  # the content of the generation the metadata named: replaced in between, again
            meta = _send(path, "get metadata", "GET", _object_url(path))
            resource = meta.json()
            content = _conditional(path, "get", "GET", _object_url(path),
                                   params={"alt": "media", "ifGenerationMatch": str(resource["generation"])})
            if content is not None:
                return content.content, _version(resource, _server_date(path, meta))
        raise StorageError(path, f"get: the object was replaced during each of {_REREADS} reads", _ADVICE)

    def listdir(self, path: ObjectPath) -> list[pafs.FileInfo]:
        """A LIST with a delimiter, by the JSON API: pyarrow's asks the same but reads only its
        ``items`` (the objects named like directories that its own ``create_dir`` makes), never its
        ``prefixes``, so it lists no prefix the objects under it make - no partition of the event log."""
        import pyarrow.fs as pafs

        bucket, name = _split(path)
        prefix = f"{name}/" if name else ""
        params = {"prefix": prefix, "delimiter": "/", "fields": "items(name,size,updated),prefixes,nextPageToken"}
        infos: list[pafs.FileInfo] = []
        while True:
            page = _send(path, "list", "GET", f"/storage/v1/b/{quote(bucket, safe='')}/o", missing=False,
                         params=params).json()
            for item in page.get("items", []):
                if not str(item["name"]).endswith("/"):  # a directory marker is listed as its prefix
                    updated = datetime.fromisoformat(str(item["updated"]).replace("Z", "+00:00"))
                    infos.append(pafs.FileInfo(f"{bucket}/{item['name']}", pafs.FileType.File,
                                               size=int(item.get("size", 0)), mtime=updated))
            infos.extend(pafs.FileInfo(f"{bucket}/{p.rstrip('/')}", pafs.FileType.Directory)
                         for p in page.get("prefixes", []))
            if not page.get("nextPageToken"):
                return infos
            params["pageToken"] = page["nextPageToken"]

    def server_now(self, path: ObjectPath) -> float:
        from hive_core.store.objects import ObjectPath

        bucket = ObjectPath(path.scheme, _split(path)[0])
        response = _send(bucket, "get bucket", "GET", f"/storage/v1/b/{quote(bucket.key, safe='')}",
                         params={"fields": "name"})
        return _server_date(path, response)


BACKEND = GcsBackend()
