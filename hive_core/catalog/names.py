"""Model names as people type them: a full id (``openai/gpt-4o-mini``) or its short name
(``gpt-4o-mini``, the part after the provider), resolved against the catalog's ids before anything
is sent.

Why before: OpenRouter answers an unknown id with a 400 like any malformed request, and the
request is recorded under the typo, which then shows up as a "model" in performance tables and
reports. Resolving first turns a typo into one line that says what was meant (``did you mean``:
close matches from :mod:`difflib`, on the short names as well as the full ids) and sends nothing.

Rules (:func:`resolve_model_id`): an id of the catalog is itself; otherwise the name is compared
without case, a name with a ``/`` to the full ids and one without to the short names. One match
resolves; several are ambiguous (the error lists them); none is unknown (the error suggests).
A name ending in one of OpenRouter's routing shortcuts (``gpt-4o-mini:nitro``:
:mod:`hive_core.catalog.variants`) is its model's name under these rules, the shortcut kept.
Only the ids are needed, so this module knows nothing of :class:`~hive_core.catalog.catalog.Catalog`
(whose :meth:`~hive_core.catalog.catalog.Catalog.resolve` and ``get`` use it).
"""

from __future__ import annotations

from collections.abc import Collection

from hive_core.catalog.variants import split_shortcut
from hive_core.errors import AmbiguousModel, UnknownModel

__all__ = ["close_matches", "resolve_model_id", "short_name"]

#: how many close matches an unknown name suggests, and how close they must be (difflib's ratio)
SUGGESTIONS = 3
CUTOFF = 0.6


def short_name(model_id: str) -> str:
    """The part after the provider: ``gpt-4o-mini`` for ``openai/gpt-4o-mini`` (the id itself
    when it has no provider)."""
    return model_id.split("/", 1)[1] if "/" in model_id else model_id


def close_matches(name: str, ids: Collection[str], n: int = SUGGESTIONS) -> list[str]:
    """Up to ``n`` ids of ``ids`` close to ``name``, the closest first: the full ids close to a full
    name, then the ids whose short name is close to the name's short name (so a wrong provider or a
    missing one still finds the model)."""
    import difflib  # here: only a name that is not in the catalog needs it

    by_short: dict[str, list[str]] = {}
    for model_id in ids:
        by_short.setdefault(short_name(model_id).lower(), []).append(model_id)
    found: list[str] = []
    if "/" in name:
        lowered = {model_id.lower(): model_id for model_id in ids}
        found += [lowered[m] for m in difflib.get_close_matches(name.lower(), lowered, n=n, cutoff=CUTOFF)]
    shorts = difflib.get_close_matches(short_name(name).lower(), by_short, n=n, cutoff=CUTOFF)
    found += [model_id for short in shorts for model_id in sorted(by_short[short])]
    return list(dict.fromkeys(found))[:n]


def resolve_model_id(name: str, ids: Collection[str]) -> str:
    """The id of ``ids`` that ``name`` means (see the module docstring), or ``base:shortcut`` for a
    routing shortcut after one; raises :class:`~hive_core.errors.UnknownModel` when it is ambiguous
    (naming the candidates) or unknown (naming the close matches, or where the list is)."""
    if name in ids:
        return name
    shortcut = split_shortcut(name.strip())
    if shortcut is None:
        return _resolve(name, ids)
    base, variant = shortcut
    try:
        return f"{_resolve(base, ids)}:{variant}"
    except AmbiguousModel as error:
        raise AmbiguousModel(name, [f"{model_id}:{variant}" for model_id in error.candidates]) from None
    except UnknownModel:
        raise _unknown(name, [f"{model_id}:{variant}" for model_id in close_matches(base, ids)]) from None


def _resolve(name: str, ids: Collection[str]) -> str:
    """:func:`resolve_model_id` without routing shortcuts."""
    if name in ids:
        return name
    wanted = name.strip().lower()
    if "/" in wanted:
        matches = sorted(model_id for model_id in ids if model_id.lower() == wanted)
    else:
        matches = sorted(model_id for model_id in ids if short_name(model_id).lower() == wanted)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AmbiguousModel(name, list(matches))
    raise _unknown(name, close_matches(name, ids))


def _unknown(name: str, close: list[str]) -> UnknownModel:
    if close:
        return UnknownModel(name, f"did you mean {', '.join(close)}?")
    return UnknownModel(name, "no close match in the catalog: see `hive models list` "
                              "(or `hive models sync` if the model is new)")
