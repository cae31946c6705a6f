"""``az://container/prefix``: Azure Blob Storage (or Azurite), the backend of :mod:`hive_core.store.backends`.

The URL's first part is the container; the storage account comes from the environment. (``abfs://``
is not taken: Hadoop's ``abfs[s]://container@account.dfs.core.windows.net/path`` carries the account
and means the Data Lake endpoint; one spelling, whose account is the environment's, is less to get wrong.)

Reads, listings and scans go through ``pyarrow.fs.AzureFileSystem``; writes and deletions do not
(``ObjectPath.write_bytes`` and ``unlink`` call :meth:`AzureBackend.put` and :meth:`AzureBackend.delete`).
pyarrow's output stream creates an empty blob when opened and commits the data at close, so a
writer killed between the two would leave an empty object where Hive promises a whole one or none;
its ``delete_file`` first takes a 15 s lease on the blob, which a killed process leaves held (the
next run's deletion fails until it expires), and writes a directory marker blob. The SDK's Put Blob
is whole or absent (staged blocks and one commit above 64 MiB) and its Delete Blob takes no lease.
(A ``pyarrow.fs.PyFileSystem`` wrapping pyarrow's with those two calls replaced deadlocked: DuckDB
starts a dataset scan holding the GIL while pyarrow's I/O thread, holding the scan's lock, waits
for the GIL to open a file through the Python handler.)

The conditional operations go through the SDK too (``azure-storage-blob``, the ``az`` extra:
Microsoft's own client, kept in step with the service; requests signed by hand would re-implement
its SharedKey signing and leave out its credential chain): Put Blob with ``If-None-Match: *`` or
``If-Match``, Delete Blob and Get Blob Properties with ``If-Match``, the server's clock from ``Date``.
The tombstone's metadata name is stored as ``hive_tombstone`` (Azure's names are C# identifiers).

Credentials and the endpoint come from Azure's standard environment only:
``AZURE_STORAGE_CONNECTION_STRING`` (its ``AccountName``, ``AccountKey`` and ``BlobEndpoint``, or
``DefaultEndpointsProtocol``/``EndpointSuffix``), else ``AZURE_STORAGE_ACCOUNT_NAME`` (or the Azure
CLI's ``AZURE_STORAGE_ACCOUNT``) with ``AZURE_STORAGE_ACCOUNT_KEY`` (``AZURE_STORAGE_KEY``), else that
account through the default credential chain (pyarrow's own; the SDK's needs ``azure-identity``).
No error carries the key or the connection string: a refused call says the server's error code.
Tested against Azurite (the account-key path only); Azure itself must honour ``If-None-Match: *``
and ``If-Match`` on Put Blob and ``If-Match`` on Delete Blob and Get Blob Properties, as its
"conditional headers for Blob service operations" documentation says it does.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hive_core.errors import ConfigError, StorageError
from hive_core.store.backends import TOMBSTONE_META, ObjectVersion

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from hive_core.store.objects import ObjectPath

__all__ = ["BACKEND", "AzureAccount", "azure_account"]

#: the error codes of a lost race, the only refusals a conditional call returns as "condition failed":
#: a blob that exists under ``If-None-Match: *`` (409) and a version ``If-Match`` no longer names (412).
#: Azure answers 409 and 412 for other states of a blob too (a lease held without its id in the request,
#: ``LeaseIdMissing`` 412; an archived blob, 409): those are errors, never "another writer won"
_LOST = frozenset({"BlobAlreadyExists", "ConditionNotMet"})
_ADVICE = "check the container, AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_NAME and the account key"
_LEASED = ("the blob is leased (pyarrow's delete_file leases a blob for 15 s first and a killed one leaves the "
           "lease held; another tool may hold one): try again once the lease expires, or break it with "
           "`az storage blob lease break`")
#: what to do about a blob whose state refused the call, by Azure's error code
_STATE_ADVICE = {
    "LeaseIdMissing": _LEASED, "LeaseAlreadyPresent": _LEASED, "LeaseIdMismatchWithBlobOperation": _LEASED,
    "LeaseNotPresentWithBlobOperation": _LEASED,
    "BlobArchived": "the blob is in the Archive tier: rehydrate it (set its tier to Hot or Cool), then try again",
    "BlobBeingRehydrated": "the blob is being rehydrated from the Archive tier: try again once it is done",
    "SnapshotsPresent": "the blob has snapshots: delete them (Hive takes none), then try again",
    "BlobImmutableDueToPolicy": "an immutability policy or legal hold protects the blob: Hive cannot change it "
                                "until the policy allows",
}
#: a 409/412 whose code has no advice of its own
_STATE = "Azure refused the call in the blob's current state (see its code in Azure's Blob service error codes)"
#: Azure metadata names are C# identifiers: ``hive-tombstone`` is stored as ``hive_tombstone``
_META_NAMES = {name: name.replace("-", "_") for name in TOMBSTONE_META}


@dataclass(frozen=True)
class AzureAccount:
    """The storage account of the environment: its name, key (``None``: the default credential
    chain) and Blob service endpoint (``https://<name>.blob.core.windows.net``, or Azurite's
    path-style ``http://127.0.0.1:10000/<name>``)."""

    name: str
    key: str | None = field(repr=False)
    blob_endpoint: str


def _connection_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")  # a key's base64 may end in '='
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def azure_account(environ: Mapping[str, str] | None = None) -> AzureAccount:
    """The account, key and endpoint of Azure's standard environment variables."""
    env = os.environ if environ is None else environ
    if text := env.get("AZURE_STORAGE_CONNECTION_STRING", "").strip():
        fields = _connection_fields(text)
        name, key = fields.get("accountname"), fields.get("accountkey")
        if not name or not key:  # never echo the string: it may hold a SAS token
            raise ConfigError("AZURE_STORAGE_CONNECTION_STRING: an az:// data directory needs its AccountName and "
                              "AccountKey (SAS tokens are not supported)")
        endpoint = fields.get("blobendpoint") or (f"{fields.get('defaultendpointsprotocol', 'https')}://{name}.blob."
                                                  f"{fields.get('endpointsuffix', 'core.windows.net')}")
        return AzureAccount(name, _checked_key("AZURE_STORAGE_CONNECTION_STRING's AccountKey", key),
                            endpoint.rstrip("/"))
    name = env.get("AZURE_STORAGE_ACCOUNT_NAME") or env.get("AZURE_STORAGE_ACCOUNT")
    if not name:
        raise ConfigError("an az:// data directory needs AZURE_STORAGE_CONNECTION_STRING or "
                          "AZURE_STORAGE_ACCOUNT_NAME (with AZURE_STORAGE_ACCOUNT_KEY, or a default Azure credential)")
    variable = "AZURE_STORAGE_ACCOUNT_KEY" if env.get("AZURE_STORAGE_ACCOUNT_KEY") else "AZURE_STORAGE_KEY"
    key = env.get(variable) or None
    return AzureAccount(name, None if key is None else _checked_key(variable, key),
                        f"https://{name}.blob.core.windows.net")


def _checked_key(where: str, key: str) -> str:
    """``key`` when it is base64, as every account key is; else a one-line error that names where
    it came from, never the key (pyarrow's own error was a traceback)."""
    import base64
    import binascii

    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not an account key (not base64): copy it again from the storage "
                          "account's access keys") from None
    return key


def _authorities(account: AzureAccount) -> tuple[str, str, str]:
    """pyarrow's (scheme, blob authority, dfs authority) for the endpoint: it prefixes the account to
    an authority (``blob.core.windows.net``) except on 127.0.0.1/localhost, where it puts it in the path."""
    url = urlsplit(account.blob_endpoint)
    host = url.netloc
    if host.lower().startswith(f"{account.name.lower()}."):
        host = host[len(account.name) + 1:]
    dfs = f"dfs.{host[5:]}" if host.startswith("blob.") else host  # an emulator serves both on one port
    return url.scheme or "https", host, dfs


@functools.lru_cache(maxsize=4)
def _filesystem(account: AzureAccount) -> pafs.FileSystem:
    import pyarrow.fs as pafs

    scheme, blob, dfs = _authorities(account)
    return pafs.AzureFileSystem(account.name, account_key=account.key, blob_storage_authority=blob,
                                blob_storage_scheme=scheme, dfs_storage_authority=dfs, dfs_storage_scheme=scheme)


@functools.lru_cache(maxsize=4)
def _client(account: AzureAccount) -> Any:
    try:
        from azure.storage.blob import BlobServiceClient, ExponentialRetry
    except ImportError:
        raise ConfigError("an az:// data directory needs azure-storage-blob for its conditional writes: "
                          "pip install 'hive[az]'") from None
    credential: Any = {"account_name": account.name, "account_key": account.key}
    if account.key is None:
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise ConfigError("an az:// data directory without AZURE_STORAGE_ACCOUNT_KEY needs azure-identity "
                              "for the default Azure credential: pip install azure-identity") from None
        credential = DefaultAzureCredential()
    # the SDK's one retry policy, shortened (its default waits 15 s, then 18, 24...): 1 s then 3 s, +-1 s of jitter
    retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=2, random_jitter_range=1)
    return BlobServiceClient(account.blob_endpoint, credential=credential, retry_policy=retry)


def _call(path: ObjectPath, operation: str, call: Callable[..., Any], *,
          conditional: bool = False) -> tuple[Any, float] | None:
    """One SDK call about ``path`` and the server's ``Date`` of its response. ``None`` when the call
    was ``conditional`` and its condition failed (an error code of :data:`_LOST`: never a lease or
    another state of the blob); a missing blob (or container) is ``FileNotFoundError``, except to a
    Put Blob (the container is missing: an error); others one line saying what to do."""
    from azure.core.exceptions import AzureError, HttpResponseError

    dates: list[str] = []

    def hook(response: Any) -> None:
        dates.append(response.http_response.headers.get("Date", ""))

    try:
        result = call(raw_response_hook=hook)
    except HttpResponseError as exc:
        status = int(exc.status_code or 0)
        code = getattr(exc, "error_code", None)  # the storage SDK's: a StorageErrorCode, a str, or None
        code = str(getattr(code, "value", code) or "")
        if conditional and code in _LOST:
            return None
        if status == 404 and operation != "put blob":
            raise FileNotFoundError(2, "no such object", str(path)) from None
        advice = _STATE_ADVICE.get(code) or (_STATE if status in (409, 412) else _ADVICE)
        raise StorageError(path, f"{operation}: {code or exc.reason or 'refused'} ({status})", advice) from None
    except AzureError as exc:  # no connection, a timeout: the message names the endpoint, never the key
        raise StorageError(path, f"{operation}: {' '.join(str(exc.message).split())}", _ADVICE) from None
    return result, parsedate_to_datetime(dates[-1]).timestamp() if dates and dates[-1] else 0.0


def _sure(path: ObjectPath, operation: str, call: Callable[..., Any]) -> tuple[Any, float]:
    """:func:`_call` without a condition: its result and the server's ``Date``."""
    got = _call(path, operation, call)
    if got is None:  # only a conditional call returns None
        raise StorageError(path, f"{operation} refused", _ADVICE)
    return got


def _blob(path: ObjectPath) -> Any:
    container, _, name = path.key.partition("/")
    return _client(azure_account()).get_blob_client(container, name)


def _version(etag: str, size: int, written: datetime, metadata: Mapping[str, str], server: float) -> ObjectVersion:
    stored = {k.lower(): v for k, v in metadata.items()}
    tombstone = all(stored.get(_META_NAMES[k]) == v for k, v in TOMBSTONE_META.items())
    return ObjectVersion(str(etag), int(size), server - written.timestamp(), tombstone)


class AzureBackend:
    """The :class:`~hive_core.store.backends.ObjectBackend` of ``az://``."""

    advice = _ADVICE

    def filesystem(self) -> pafs.FileSystem:
        return _filesystem(azure_account())

    def put(self, path: ObjectPath, data: bytes, *, if_none_match: bool = False, if_match: str | None = None,
            metadata: dict[str, str] | None = None) -> str | None:
        conditions: dict[str, Any] = {"if_none_match": "*"} if if_none_match else {}
        if if_match is not None:
            conditions["if_match"] = if_match
        if metadata:
            conditions["metadata"] = {_META_NAMES.get(k, k.replace("-", "_")): v for k, v in metadata.items()}
        blob = _blob(path)
        written = _call(path, "put blob", lambda **hook: blob.upload_blob(data, overwrite=True, **conditions, **hook),
                        conditional=if_none_match or if_match is not None)
        return None if written is None else str(written[0]["etag"])

    def delete(self, path: ObjectPath, *, if_match: str | None = None) -> bool:
        blob = _blob(path)
        condition = {} if if_match is None else {"if_match": if_match}
        deleted = _call(path, "delete blob", lambda **hook: blob.delete_blob(**condition, **hook),
                        conditional=bool(condition))
        return deleted is not None

    def head(self, path: ObjectPath) -> ObjectVersion:
        blob = _blob(path)
        props, server = _sure(path, "get blob properties", lambda **hook: blob.get_blob_properties(**hook))
        return _version(props.etag, props.size, props.last_modified, props.metadata or {}, server)

    def get(self, path: ObjectPath) -> tuple[bytes, ObjectVersion]:
        blob = _blob(path)
        stream, server = _sure(path, "get blob", lambda **hook: blob.download_blob(**hook))
        props = stream.properties  # a blob past the first range is read under If-Match on its etag
        data, _ = _sure(path, "get blob", lambda **hook: stream.readall())
        return bytes(data), _version(props.etag, props.size, props.last_modified, props.metadata or {}, server)

    def server_now(self, path: ObjectPath) -> float:
        container = _client(azure_account()).get_container_client(path.key.partition("/")[0])
        return _sure(path, "get container properties", lambda **hook: container.get_container_properties(**hook))[1]


    def listdir(self, path: ObjectPath) -> list[pafs.FileInfo]:
        from hive_core.store.objects import pyarrow_listdir

        return pyarrow_listdir(path)

BACKEND = AzureBackend()
