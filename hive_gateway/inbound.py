"""A client's chat request as the gateway reads it: the body checked, the labels found.

The body is OpenAI's (with OpenRouter's extensions): everything but ``model``, ``models``,
``messages``, ``stream`` and the output cap goes to OpenRouter untouched (tools, response_format,
reasoning, provider, sampling...). ``models`` are the request's fallbacks: Hive walks them itself,
one reservation and one ``fallback_index`` each, exactly as ``hive ask --fallback`` does.

Who the request is for (recorded on every event, and the budget's app scope):

* ``app``: the virtual key's app; without a key, ``X-Hive-App``, else the gateway's ``HIVE_APP``;
* ``user``: the key's user, else ``X-Hive-User``, else the body's OpenAI ``user`` field;
* ``tags``: ``X-Hive-Tags`` (a comma list); ``X-Hive-Task``: the task category, one of the
  selector's task types (``hive ask --task``), checked here for every model: an unknown one is the
  client's mistake (400), never recorded and never a selector failure.

A key's app wins over a header: a client must not move its spend into another app's budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from hive_core.openrouter.protocol import decode
from hive_core.openrouter.tracking import Labels
from hive_gateway.errors import InvalidRequest

__all__ = ["ChatRequest", "KeyLabels", "parse_chat_request"]

#: body fields the gateway decides itself; the rest is passed through
_OWN = frozenset({"model", "models", "messages", "stream", "max_tokens"})
#: the longest label value kept (a header is not a place for a document)
MAX_LABEL = 200
#: the most tags a request may carry (each of its events records them all)
MAX_TAGS = 32


class KeyLabels(Protocol):
    """What a virtual key says about its requests (``hive_core.keys.VirtualKey`` has these)."""

    @property
    def app(self) -> str | None: ...

    @property
    def user(self) -> str | None: ...

    @property
    def key_id(self) -> str: ...


# Not frozen: one per request, never changed (a frozen dataclass's __init__ costs about 4x).
@dataclass(slots=True)
class ChatRequest:
    """One chat request: what to ask, how, and for whom."""

    messages: list[dict[str, Any]]
    model: str
    fallbacks: tuple[str, ...]
    stream: bool
    max_tokens: int | None
    #: the rest of the body, sent to OpenRouter as is
    params: dict[str, Any]
    labels: Labels
    task: str | None
    #: msgspec read the body (as nearly always), so msgspec may write it back (``chat_body``'s ``plain``)
    plain: bool = False


def _label(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:MAX_LABEL] or None


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string")
    return value


@cache
def _task_types() -> frozenset[str]:
    """The selector's task types (``hive ask --task``'s choices). Imported at the first request
    that names one, as :mod:`hive_gateway.routing` imports the selector: a gateway whose clients
    send no X-Hive-Task never loads them."""
    from hive_core.selection.complexity import TASK_TYPES

    return frozenset(TASK_TYPES)


def _task(value: str | None) -> str | None:
    """The task type the header names, in its canonical spelling; ``InvalidRequest`` for another."""
    if value is None:
        return None
    name = value.strip().lower()
    known = _task_types()
    if not name or name in known:
        return name or None
    raise InvalidRequest(f"unknown task {value.strip()[:MAX_LABEL]!r} in the X-Hive-Task header: send one of "
                         f"{', '.join(sorted(known))}, or leave the header out")


def _cap(body: Mapping[str, Any]) -> int | None:
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{name}' must be a positive integer")
        return value
    return None


def _messages(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'messages' must be a non-empty array of messages")
    if not all(isinstance(message, dict) and isinstance(message.get("role"), str) for message in value):
        raise InvalidRequest("each message must be an object with a 'role'")
    return value


def _models(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(model, str) and model for model in value):
        raise InvalidRequest("'models' must be an array of model ids")
    return tuple(value)


def parse_chat_request(raw: bytes, headers: Mapping[str, str], key: KeyLabels | None,
                       default_app: str | None) -> ChatRequest:
    """The request in ``raw`` (the body) and ``headers``; :class:`InvalidRequest` says what is wrong."""
    try:
        body, plain = decode(raw)  # msgspec's speed, json's meaning
    except ValueError:
        raise InvalidRequest("the body is not JSON: send a chat completion request") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    task = _task(headers.get("x-hive-task"))
    model = _text(body, "model")
    if not model:
        raise InvalidRequest("'model' is required: an OpenRouter model id, or hive/auto")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false")
    messages = _messages(body.get("messages"))
    fallbacks = tuple(m for m in _models(body.get("models")) if m != model)
    max_tokens = _cap(body)
    params = {name: value for name, value in body.items() if name not in _OWN}
    if max_tokens is not None:
        params.pop("max_completion_tokens", None)  # sent once, as max_tokens (the reservation's cap)
    tags: Sequence[str] = [t.strip()[:MAX_LABEL] for t in headers.get("x-hive-tags", "").split(",") if t.strip()]
    if len(tags) > MAX_TAGS:  # every event of the request carries them
        raise InvalidRequest(f"the X-Hive-Tags header holds {len(tags)} tags: send at most {MAX_TAGS}")
    app = _label(key.app if key is not None else None) or _label(headers.get("x-hive-app")) or default_app
    user = (_label(key.user if key is not None else None) or _label(headers.get("x-hive-user"))
            or _label(_text(body, "user")))
    return ChatRequest(messages, model, fallbacks, stream, max_tokens, params,
                       Labels(app, user, tuple(dict.fromkeys(tags)), key.key_id if key is not None else None),
                       task, plain)
