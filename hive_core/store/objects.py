"""Object storage as a data directory: ``--data-dir s3://bucket/prefix``, through ``pyarrow.fs``.

:class:`ObjectPath` is the small path type of a remote data directory. It has the part of
``pathlib.Path`` that the store's readers and writers use - joins (``/``), ``name``, ``parent``,
``exists``, ``iterdir``, ``read_bytes``, ``write_bytes`` (one PUT, so whole or not at all),
``unlink``, ``stat`` - and nothing else: every other attribute, and ``os.fspath`` (which every local
``open``, ``os.scandir``, ``Path(...)`` and DuckDB path goes through), raises a one-line
:class:`~hive_core.errors.ConfigError` saying object storage is not supported there yet. So a
command that was not taught object storage refuses it; it can never take ``s3://b/x`` for the
relative local path ``s3:/b/x`` and write there.

The settings hand it out where a ``Path`` is typed (``Settings.data_dir``): the modules that take a
data directory need no change, and the ones that support object storage branch on
``isinstance(path, ObjectPath)``. (Typing ``Path | ObjectPath`` through the ~60 modules that take a
data directory would have changed them all to say "not supported" in as many places.)

Each scheme has a backend module (:mod:`hive_core.store.backends`: ``s3://``, ``az://``, ``gs://``): its
``pyarrow.fs`` filesystem for reads, listings and scans, its endpoint and credentials from its
ecosystem's standard environment (never from Hive's files), and the writes and deletes (each one
request, conditional where asked) that ``pyarrow.fs`` does not make safely. A scheme pyarrow knows
but no backend covers (``gcs://``, pyarrow's other spelling of ``gs://``; ``abfs://``) is refused
with one line that names the spelling to use.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from hive_core.errors import ConfigError, StorageError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

__all__ = ["ObjectPath", "ObjectStat", "as_object", "backend_advice", "parquet_dataset", "parse_url", "pyarrow_listdir",
           "read_parquet", "translated"]

#: pyarrow's other spellings of a supported scheme: refused with one line that names the one to use
#: (one spelling per store is less to get wrong; ``abfs://`` also means Azure's Data Lake endpoint)
_SPELLINGS = {"gcs": "gs", "abfs": "az", "abfss": "az"}


def parse_url(text: str) -> ObjectPath:
    """``s3://bucket/prefix`` (or another supported scheme's URL) as an :class:`ObjectPath`; a
    :class:`ConfigError` for any other URL."""
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep:  # "s3:/b/x": a URL that a Path already collapsed
        scheme, _, rest = text.partition(":")
        scheme, rest = scheme.lower(), rest.lstrip("/")
    from hive_core.store.backends import BACKENDS

    *rest_forms, last = (s.form(name) for name, s in BACKENDS.items())
    forms = f"{', '.join(rest_forms)} or {last}"  # s3://bucket/prefix, az://container/prefix or gs://bucket/prefix
    if scheme in _SPELLINGS:
        known = _SPELLINGS[scheme]
        raise ConfigError(f"{text!r}: write {scheme}:// as {BACKENDS[known].form(known)}")
    if scheme not in BACKENDS:
        raise ConfigError(f"{text!r} is a {scheme}:// URL; a data directory is a local path, {forms}")
    key = "/".join(part for part in rest.split("/") if part)
    if not key:
        raise ConfigError(f"{text!r} names no {BACKENDS[scheme].root}; use {BACKENDS[scheme].form(scheme)}")
    return ObjectPath(scheme, key)


@dataclass(frozen=True)
class ObjectStat:
    """What ``ObjectPath.stat`` returns: the fields of ``os.stat_result`` the store reads."""

    st_size: int
    st_mtime_ns: int

    @property
    def st_mtime(self) -> float:
        return self.st_mtime_ns / 1e9


class ObjectPath(os.PathLike[str]):
    """An object (or a prefix) under a remote data directory: ``s3://bucket/key``. Immutable."""

    __slots__ = ("key", "scheme")

    scheme: str
    #: ``bucket/key``, as ``pyarrow.fs`` names it
    key: str

    def __init__(self, scheme: str, key: str) -> None:
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "key", key.strip("/"))

    # -- a path: pure operations -----------------------------------------------------------------
    def __str__(self) -> str:
        return f"{self.scheme}://{self.key}"

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and (other.scheme, other.key) == (self.scheme, self.key)

    def __lt__(self, other: ObjectPath) -> bool:
        return (self.scheme, self.key) < (other.scheme, other.key)

    def __hash__(self) -> int:
        return hash((self.scheme, self.key))

    def __truediv__(self, part: object) -> ObjectPath:
        return ObjectPath(self.scheme, f"{self.key}/{part}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ObjectPath is immutable")

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def parent(self) -> ObjectPath:
        head = self.key.rsplit("/", 1)[0] if "/" in self.key else self.key
        return ObjectPath(self.scheme, head)

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    @property
    def filesystem(self) -> pafs.FileSystem:
        """The ``pyarrow.fs`` filesystem that holds this object (one per process and endpoint)."""
        from hive_core.store.backends import backend

        return backend(self.scheme).filesystem()

    # -- local I/O is refused ----------------------------------------------------------------------
    def __fspath__(self) -> str:
        _unsupported(self, "local file access")

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):  # protocols Python probes for (copy, pickle): not there
            raise AttributeError(name)
        _unsupported(self, f"Path.{name}")

    # -- I/O through pyarrow.fs --------------------------------------------------------------------
    def _info(self) -> Any:
        with translated(self):
            return self.filesystem.get_file_info(self.key)

    def exists(self) -> bool:
        import pyarrow.fs as pafs

        return bool(self._info().type != pafs.FileType.NotFound)

    def is_file(self) -> bool:
        import pyarrow.fs as pafs

        return bool(self._info().type == pafs.FileType.File)

    def is_dir(self) -> bool:
        import pyarrow.fs as pafs

        return bool(self._info().type == pafs.FileType.Directory)

    def stat(self) -> ObjectStat:
        import pyarrow.fs as pafs

        info = self._info()
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(2, "no such object", str(self))
        return ObjectStat(int(info.size or 0), int(info.mtime_ns or 0))

    def iterdir(self) -> Iterator[ObjectPath]:
        """The objects and prefixes directly under this one (none when it does not exist)."""
        from hive_core.store.backends import backend

        return iter([ObjectPath(self.scheme, info.path) for info in backend(self.scheme).listdir(self)])

    def glob(self, pattern: str) -> Iterator[ObjectPath]:
        """The children whose name matches ``pattern`` (one level, like ``Path.glob`` without ``/``)."""
        import fnmatch

        return iter([p for p in self.iterdir() if fnmatch.fnmatchcase(p.name, pattern)])

    def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: a prefix exists as soon as an object is under it."""

    def read_bytes(self) -> bytes:
        """One GET, by the scheme's backend: the content of one version. (pyarrow's stream asks
        the size first and then reads that range: an object replaced in between, such as a
        compaction's journal that another compactor created again, broke the read.)"""
        from hive_core.store.backends import backend

        return backend(self.scheme).get(self)[0]

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> int:
        """One PUT, by the scheme's backend: readers see the old object or the new one, never a part
        (no temporary, no rename; pyarrow's Azure output stream would create an empty blob first)."""
        from hive_core.store.backends import backend

        backend(self.scheme).put(self, bytes(data))
        return len(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> int:
        return self.write_bytes(text.encode(encoding))

    def unlink(self, missing_ok: bool = False) -> None:
        import pyarrow.fs as pafs

        with translated(self):
            if self.filesystem.get_file_info(self.key).type == pafs.FileType.NotFound:
                if missing_ok:
                    return
                raise FileNotFoundError(2, "no such object", str(self))
        from hive_core.store.backends import backend

        with contextlib.suppress(FileNotFoundError):  # one DELETE by the backend (pyarrow's Azure
            backend(self.scheme).delete(self)          # delete_file takes a lease a killed process keeps)

    def walk(self) -> list[tuple[ObjectPath, int]]:
        """Every object under this prefix, at any depth, with its size (one recursive LIST, paged
        by the server): what ``Path.rglob("*")`` and a ``stat`` each would give."""
        import pyarrow.fs as pafs

        with translated(self):
            infos = self.filesystem.get_file_info(pafs.FileSelector(self.key, recursive=True, allow_not_found=True))
        return [(ObjectPath(self.scheme, i.path), int(i.size or 0)) for i in infos if i.type == pafs.FileType.File]

    def remove_tree(self) -> None:
        """Delete every object under this prefix (``shutil.rmtree``): one DELETE each by the backend,
        not atomic - a caller that must survive being killed halfway records its intent first.
        (pyarrow's ``delete_dir`` on GCS also deletes the directory-named object its own
        ``create_dir`` makes, and fails where there is none: a prefix is only its objects.)"""
        from hive_core.store.backends import backend

        store = backend(self.scheme)
        for path, _size in self.walk():
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile: what was asked
                store.delete(path)

    def open_input(self) -> Any:
        """A random-access ``pyarrow`` file of the object (Parquet footers are read by ranges)."""
        with translated(self):
            return self.filesystem.open_input_file(self.key)


def parquet_dataset(paths: Sequence[object], schema: pa.Schema | None = None) -> pads.Dataset:
    """The Parquet objects ``paths`` as one ``pyarrow`` dataset, for DuckDB to scan (projection and
    filters pushed down, footers and columns fetched by ranged GETs). Without ``schema``, the union
    of the files' own schemas (foreign files of one group may differ beside ``ts``)."""
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    objects = [as_object(p) for p in paths]
    fs = objects[0].filesystem
    keys = [o.key for o in objects]
    with translated(objects[0]):
        if schema is None:
            schema = pa.unify_schemas([pq.read_schema(k, filesystem=fs) for k in keys], promote_options="permissive")
        return pads.dataset(keys, schema=schema, format="parquet", filesystem=fs)


def read_parquet(path: object, columns: Sequence[str] | None = None) -> pa.Table:
    """The rows (of ``columns``, default all) of one Parquet file, local or in object storage: the
    one reader of the small files the jobs write whole (rollups, rankings) and of single event files.
    A local file is opened by path, an object through its ``pyarrow.fs`` file (the footer and the
    columns by ranged GETs), so no caller branches. ``pq.ParquetFile``, not ``read_table``: that
    would import ``pyarrow.dataset`` (60 ms)."""
    import pyarrow.parquet as pq

    if not isinstance(path, ObjectPath):
        return pq.ParquetFile(path).read(columns=columns)
    with path.open_input() as source, translated(path):
        return pq.ParquetFile(source).read(columns=columns)


def as_object(path: object) -> ObjectPath:
    """``path`` typed as the :class:`ObjectPath` it is (the settings hand one out typed as a ``Path``)."""
    if not isinstance(path, ObjectPath):
        raise TypeError(f"{path!r} is not in object storage")
    return path


def _unsupported(path: ObjectPath, what: str) -> NoReturn:
    raise ConfigError(f"{path}: this command does not support object storage yet ({what}); use a local "
                      "--data-dir for it")


@contextlib.contextmanager
def translated(path: ObjectPath) -> Iterator[None]:
    """Turn a pyarrow/storage SDK error about ``path`` into a :class:`StorageError` (one line, no
    credential). A missing object stays ``FileNotFoundError`` (pyarrow's own: callers take it for a
    vanished file), and so does a read that failed because the object was deleted under it (a
    compaction's cleanup: the caller lists again instead of failing)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        if _gone(path):
            raise FileNotFoundError(2, "vanished while being read", str(path)) from exc
        raise StorageError(path, " ".join(str(exc).split()), backend_advice(path)) from exc


def _gone(path: ObjectPath) -> bool:
    """Whether ``path`` is certainly not there (a HEAD that fails says nothing)."""
    import pyarrow.fs as pafs

    try:
        return bool(path.filesystem.get_file_info(path.key).type == pafs.FileType.NotFound)
    except OSError:
        return False


def pyarrow_listdir(path: ObjectPath) -> list[pafs.FileInfo]:
    """:meth:`~hive_core.store.backends.ObjectBackend.listdir` by ``pyarrow.fs`` (a LIST with a
    delimiter), for the stores whose pyarrow filesystem reports the prefixes a delimiter lists (S3,
    Azure; GCS's lists only the objects named like directories it creates itself)."""
    import pyarrow.fs as pafs

    with translated(path):
        return list(path.filesystem.get_file_info(pafs.FileSelector(path.key, allow_not_found=True)))


def backend_advice(path: ObjectPath) -> str:
    """What a storage error about ``path`` tells the user to check (its scheme's endpoint, credentials)."""
    from hive_core.store.backends import backend

    return backend(path.scheme).advice
