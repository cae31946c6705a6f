"""Writing events: the append-only Parquet event log, compaction, verification and spill files.

Public surface (what ``jobs`` and the CLIs may use): :class:`EventLog`, :func:`write_atomic`,
:func:`compact`, :func:`verify`, and the spill files' :func:`import_spills`, :func:`pending_spills`
and :class:`SpillImport`. Each is imported on first use (PEP 562), so ``import ingest`` costs
nothing and a caller pays only for what it takes: ``EventLog`` needs the pydantic event classes,
which a job that only compacts or checks Parquet files must not pay for, and compaction's and
verification's store modules are no part of a writer's start-up.

``compact`` and ``verify`` are also the names of the modules that define them. Importing a submodule
binds it on its package (``ingest.verify`` imports ``ingest.compact``, which would then shadow the
function), so the package's class keeps a public name bound to its function, never to its module
(``from ingest.compact import ...`` still finds the module in ``sys.modules``).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.compact import compact
    from ingest.files import write_atomic
    from ingest.log import EventLog
    from ingest.spill import SpillImport, import_spills, pending_spills
    from ingest.verify import verify

__all__ = ["EventLog", "SpillImport", "compact", "import_spills", "pending_spills", "verify", "write_atomic"]

#: public name -> the module that defines it
_LAZY = {"EventLog": "ingest.log", "SpillImport": "ingest.spill", "compact": "ingest.compact",
         "import_spills": "ingest.spill", "pending_spills": "ingest.spill", "verify": "ingest.verify",
         "write_atomic": "ingest.files"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once: later lookups are plain attribute reads
        return value
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """``ingest`` itself: a submodule named like a public function is not bound over the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return  # the import system binding ``ingest.compact`` (the module): the name means the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
