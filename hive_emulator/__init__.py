"""The OpenRouter emulator (`hive-emulator`): a compatible HTTP server for offline development and tests.

Stdlib only (asyncio streams). Modules: ``http`` (minimal HTTP/1.1 server), ``routes`` (dispatch
and small endpoints), ``chat`` (chat completions, streaming and not), ``admission`` (OpenRouter's
404s for tools or images a model lacks, its 400 for a prompt beyond the context), ``answers``
(tool calls and JSON answers a request fixes), ``schema_values`` (a JSON value valid against a
schema), ``generation`` (free-text answers, token counts and latency model), ``faults`` (fault
injection), ``billing`` (costs, ``/generation`` records, key usage), ``bodies`` (wire shapes),
``catalog``, ``state``, ``server`` (CLI and :class:`Emulator`).

Names are imported lazily so that ``python -m hive_emulator.server`` does not import
``server`` twice.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DEFAULT_TEST_KEY", "FAULT_KINDS", "Emulator", "FaultRule", "parse_fault"]

#: module -> the public names it defines
_WHERE = {"hive_emulator.server": ("DEFAULT_TEST_KEY", "Emulator"),
          "hive_emulator.faults": ("FAULT_KINDS", "FaultRule", "parse_fault")}


def __getattr__(name: str) -> Any:
    for module, names in _WHERE.items():
        if name in names:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
