"""``s3://bucket/prefix``: Amazon S3 or an S3-compatible server, the backend of :mod:`hive_core.store.backends`.

Reads, writes and listings go through ``pyarrow.fs.S3FileSystem``. It has no conditional PUT (no
``If-None-Match``/``If-Match``), so the conditional operations go through botocore (installed with
boto3; the AWS SDK for Python, the same credential chain as pyarrow's).

Credentials and the endpoint come from the standard AWS environment and profile only:
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``,
``~/.aws/credentials``; ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` for an S3-compatible server
(pyarrow's S3 client does not read those two itself: they are passed as its ``endpoint_override``);
``AWS_REGION``/``AWS_DEFAULT_REGION``. The AWS SDK's error messages carry no credential, and ours
add none. Tested against moto's S3 server; AWS itself must honour ``If-None-Match`` on PUT and
``If-Match`` on PUT and DELETE (it does since 2024).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from hive_core.errors import ConfigError, StorageError
from hive_core.store.backends import TOMBSTONE_META, ObjectVersion

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from hive_core.store.objects import ObjectPath

__all__ = ["BACKEND", "S3Endpoint", "s3_endpoint"]

#: a condition the server refused (412), or a concurrent conditional write it resolved (409)
_LOST = frozenset({409, 412})
_ADVICE = "check the bucket, AWS_ENDPOINT_URL and the AWS credentials (environment or profile)"


@dataclass(frozen=True)
class S3Endpoint:
    """Where the S3 API is, from the AWS environment (credentials are left to the AWS SDK's chain)."""

    endpoint_url: str | None
    region: str | None


def s3_endpoint(environ: Mapping[str, str] | None = None) -> S3Endpoint:
    """The endpoint and region of the standard AWS environment variables."""
    env = os.environ if environ is None else environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    return S3Endpoint(endpoint, region)


@functools.lru_cache(maxsize=4)
def _filesystem(endpoint: S3Endpoint) -> pafs.FileSystem:
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(endpoint_override=endpoint.endpoint_url, region=endpoint.region,
                             allow_bucket_creation=False, allow_bucket_deletion=False)


@functools.lru_cache(maxsize=4)
def _client(endpoint: S3Endpoint) -> Any:
    try:
        import botocore.session
    except ImportError:
        raise ConfigError("an s3:// data directory needs botocore for its conditional writes: "
                          "pip install 'hive[s3]'") from None

    return botocore.session.Session().create_client("s3", endpoint_url=endpoint.endpoint_url,
                                                    region_name=endpoint.region)


#: the error codes of an object (or upload) that is not there, as opposed to a missing bucket
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _call(path: ObjectPath, operation: str, *, conditional: bool = False, **kwargs: Any) -> dict[str, Any]:
    """One S3 call on ``path``, its response; errors as one line (:class:`StorageError`), a missing
    object as ``FileNotFoundError``, and a refused condition as :class:`_Lost` (``conditional``
    calls only: a 409/412 to a call that asked none is the server's own refusal, an error)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = path.key.partition("/")
    keyed = {"Key": key} if key else {}
    try:
        result: dict[str, Any] = getattr(_client(s3_endpoint()), operation)(Bucket=bucket, **keyed, **kwargs)
        return result
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        code = str(exc.response.get("Error", {}).get("Code", status))
        if conditional and status in _LOST:
            raise _Lost from None
        if code in _MISSING:
            raise FileNotFoundError(2, "no such object", str(path)) from None
        raise StorageError(path, f"{operation}: {code} ({status})", "check the bucket and the AWS credentials") from None
    except (BotoCoreError, OSError) as exc:  # no endpoint, no credentials, a timeout: no secret in it
        raise StorageError(path, f"{operation}: {exc}", "check AWS_ENDPOINT_URL and the AWS credentials") from None


class _Lost(Exception):
    """A conditional call's condition did not hold (412), or lost to a concurrent one (409)."""


def _conditional(path: ObjectPath, operation: str, **kwargs: Any) -> dict[str, Any] | None:
    """:func:`_call` of a conditional operation: ``None`` when its condition failed."""
    try:
        return _call(path, operation, conditional=True, **kwargs)
    except _Lost:
        return None


def _body(path: ObjectPath, response: dict[str, Any]) -> bytes:
    """The whole body of a GET: a download cut short is a :class:`StorageError` (or
    ``FileNotFoundError`` when the object is gone meanwhile), never short content or a traceback."""
    from botocore.exceptions import BotoCoreError

    try:
        with contextlib.closing(response["Body"]) as body:
            return bytes(body.read())
    except (BotoCoreError, OSError) as exc:
        failed = StorageError(path, f"get_object: {exc}", _ADVICE)
    try:
        _call(path, "head_object")
    except FileNotFoundError:
        raise FileNotFoundError(2, "vanished while being read", str(path)) from None
    except StorageError:
        pass  # the server cannot say either: the download's error is the one to report
    raise failed


def _version(response: dict[str, Any]) -> ObjectVersion:
    server = parsedate_to_datetime(response["ResponseMetadata"]["HTTPHeaders"]["date"])
    written: datetime = response["LastModified"]
    marker = response.get("Metadata", {}).get("hive-tombstone")
    return ObjectVersion(str(response["ETag"]), int(response.get("ContentLength", 0)),
                         (server - written).total_seconds(), marker == TOMBSTONE_META["hive-tombstone"])


class S3Backend:
    """The :class:`~hive_core.store.backends.ObjectBackend` of ``s3://``."""

    advice = _ADVICE

    def filesystem(self) -> pafs.FileSystem:
        return _filesystem(s3_endpoint())

    def put(self, path: ObjectPath, data: bytes, *, if_none_match: bool = False, if_match: str | None = None,
            metadata: dict[str, str] | None = None) -> str | None:
        conditions: dict[str, Any] = {"IfNoneMatch": "*"} if if_none_match else {}
        if if_match is not None:
            conditions["IfMatch"] = if_match
        extra: dict[str, Any] = {"Metadata": metadata} if metadata else {}
        if not conditions:
            return str(_call(path, "put_object", Body=data, **extra)["ETag"])
        written = _conditional(path, "put_object", Body=data, **conditions, **extra)
        return None if written is None else str(written["ETag"])

    def delete(self, path: ObjectPath, *, if_match: str | None = None) -> bool:
        if if_match is None:
            _call(path, "delete_object")
            return True
        return _conditional(path, "delete_object", IfMatch=if_match) is not None

    def head(self, path: ObjectPath) -> ObjectVersion:
        return _version(_call(path, "head_object"))

    def get(self, path: ObjectPath) -> tuple[bytes, ObjectVersion]:
        got = _call(path, "get_object")
        return _body(path, got), _version(got)

    def server_now(self, path: ObjectPath) -> float:
        from hive_core.store.objects import ObjectPath

        head = _call(ObjectPath(path.scheme, path.key.partition("/")[0]), "head_bucket")
        return parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["date"]).timestamp()


    def listdir(self, path: ObjectPath) -> list[pafs.FileInfo]:
        from hive_core.store.objects import pyarrow_listdir

        return pyarrow_listdir(path)

BACKEND = S3Backend()
