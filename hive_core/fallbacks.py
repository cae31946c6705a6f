"""Fallbacks an operator names for a model, in the ``fallbacks`` section of ``<data>/config.json``.

    {"fallbacks": {
        "openai/gpt-4o": ["anthropic/claude-3.5-sonnet", "google/gemini-2.0-flash-001"]
    }}

A request that names a model and no fallbacks of its own (``hive ask --model``, a gateway request
without ``models``) walks these after its model fails, as if it had named them: one reservation and
one ``fallback_index`` each. A request that names its own fallbacks (``--fallback``, ``models``) gets
those instead, and ``--no-fallback`` none. ``hive fallbacks set|unset|show`` edit and print the
section (:func:`set_fallbacks`): ids are resolved against the catalog when they are set, so a typo
is refused then, not found by a request. A long-running process (the gateway) takes in a change
within seconds (:meth:`hive_core.session.Session.refresh`).

The file is shared with the budget (:mod:`hive_core.budget.config`): the same lock, atomic write
and ``0600`` mode, each feature rewriting only its own section.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hive_core.budget.config import read_config_document, update_config_section
from hive_core.errors import ConfigError

__all__ = ["SECTION", "fallbacks_from_json", "load_fallbacks", "set_fallbacks", "unset_fallbacks"]

#: the section of config.json
SECTION = "fallbacks"

Fallbacks = dict[str, tuple[str, ...]]


def fallbacks_from_json(raw: object) -> Fallbacks:
    """The section as read from JSON (absent: none); :class:`ConfigError` says what is wrong."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError('"fallbacks" must be an object of model id -> list of model ids')
    chains: Fallbacks = {}
    for model, chain in raw.items():
        if not isinstance(chain, list) or not chain or not all(isinstance(m, str) and m.strip() for m in chain):
            raise ConfigError(f"the fallbacks of {model!r} must be a non-empty list of model ids")
        chains[model] = _chain(model, chain)
    return chains


def _chain(model: str, chain: Sequence[str]) -> tuple[str, ...]:
    """``chain`` without duplicates, order kept; a model is never its own fallback."""
    if model in chain:
        raise ConfigError(f"{model} cannot be its own fallback")
    return tuple(dict.fromkeys(chain))


def load_fallbacks(config_path: Path) -> Fallbacks:
    """The fallbacks in ``config_path`` (none when the file or the section is missing)."""
    return _of(read_config_document(config_path), config_path)


def _of(document: Mapping[str, Any], config_path: Path) -> Fallbacks:
    try:
        return fallbacks_from_json(document.get(SECTION))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in {config_path}: fix it there, or with `hive fallbacks set`)") from None


def _update(config_path: Path, change: Callable[[Fallbacks], Fallbacks]) -> Fallbacks:
    def rewrite(section: object) -> dict[str, list[str]]:
        return {model: list(chain) for model, chain in change(_of({SECTION: section}, config_path)).items()}

    return fallbacks_from_json(update_config_section(config_path, SECTION, rewrite)[0])


def set_fallbacks(config_path: Path, model: str, chain: Sequence[str]) -> Fallbacks:
    """Name ``chain`` as ``model``'s fallbacks (ids, resolved by the caller); returns the section."""
    ordered = _chain(model, chain)
    if not ordered:
        raise ConfigError(f"name at least one fallback for {model} (or `hive fallbacks unset {model}`)")
    return _update(config_path, lambda chains: {**chains, model: ordered})


def unset_fallbacks(config_path: Path, model: str) -> Fallbacks:
    """Forget ``model``'s fallbacks (none set: nothing changes); returns the section."""
    return _update(config_path, lambda chains: {m: c for m, c in chains.items() if m != model})
