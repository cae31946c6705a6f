"""Which models a request goes to: as asked, or Hive's selector behind the ``hive/auto`` aliases.

``hive/auto`` (balanced), ``hive/auto:cost-optimized``, ``hive/auto:performance`` and
``hive/auto:quality-first`` ask the selector, which sees what the request needs: the prompt (the
last user message) for its complexity and task, the tools offered (``tools``), images
(``vision``) and a JSON answer (``json-mode``; held to a schema, ``structured-output``) as capabilities, and the prompt's size
(tools' definitions included) against the models' context. Its primary and fallbacks become the
chain, recorded as the request's ``selection`` event. Any other id is an OpenRouter model,
resolved against the synced catalog (a typo is a 404 with "did you mean").

``GET /v1/models`` lists the catalog (OpenRouter's model objects, with OpenAI's ``object`` and
``owned_by``) followed by the aliases.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hive_core.budget.estimate import estimate_prompt_tokens
from hive_core.session import prompt_text

if TYPE_CHECKING:
    from hive_core.selection.selector import SelectionRequest

__all__ = ["ALIASES", "load_catalog_document", "models_document", "selection_request"]

#: model id -> selector strategy
ALIASES: dict[str, str] = {
    "hive/auto": "balanced",
    "hive/auto:cost-optimized": "cost-optimized",
    "hive/auto:performance": "performance",
    "hive/auto:quality-first": "quality-first",
}

#: what a ``response_format`` asks of the model: JSON mode, or an answer held to a JSON schema
_JSON_FORMATS = {"json_object": "json-mode", "json_schema": "structured-output"}


def _has_images(messages: Sequence[Mapping[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(
                isinstance(part, Mapping) and part.get("type") == "image_url" for part in content):
            return True
    return False


def selection_request(strategy: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any],
                      max_tokens: int | None, task: str | None,
                      allow: Sequence[str] = ()) -> SelectionRequest:
    """What the selector is asked for this request (``allow``: a key's models, empty for any). The
    selector is imported here, at the first ``hive/auto`` request: a gateway that only passes model
    ids through never loads it (start-up)."""
    from hive_core.selection.selector import SelectionRequest

    tools = params.get("tools")
    tools = tools if isinstance(tools, list) else None
    needed = set()
    if tools:
        needed.add("tools")
    if _has_images(messages):
        needed.add("vision")
    response_format = params.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") in _JSON_FORMATS:
        needed.add(_JSON_FORMATS[response_format["type"]])
    return SelectionRequest(
        prompt=prompt_text(messages), task=task, strategy=strategy, capabilities=frozenset(needed),
        context_tokens=estimate_prompt_tokens(messages, tools)[0], max_tokens=max_tokens,
        allow=frozenset(allow) if allow else None,
    )


def models_document(catalog: Mapping[str, Any] | None, created: int) -> dict[str, Any]:
    """``GET /v1/models``: OpenAI's list shape over the catalog's models, then the aliases."""
    data: list[dict[str, Any]] = []
    for model in (catalog or {}).get("data") or ():
        if isinstance(model, dict) and isinstance(model.get("id"), str):
            data.append({**model, "object": "model", "owned_by": model["id"].partition("/")[0]})
    for alias, strategy in ALIASES.items():
        data.append({"id": alias, "object": "model", "created": created, "owned_by": "hive",
                     "name": f"Hive: auto ({strategy})",
                     "description": f"Hive's selector picks the model and its fallbacks ({strategy} strategy)"})
    return {"object": "list", "data": data}


def load_catalog_document(text: bytes | None) -> dict[str, Any] | None:
    """The synced catalog file's JSON, ``None`` when absent or unreadable (the list is then aliases only)."""
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
