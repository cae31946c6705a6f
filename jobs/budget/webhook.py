"""Delivering budget alerts to a webhook, with retries, a timeout and an outbox that never loses one.

The payload is Slack-compatible: ``{"text": <the alert line>, "alert": {<the structured fields>}}``
(Slack shows ``text`` and ignores the rest; other receivers read ``alert``). Each POST gets
:attr:`WebhookPolicy.attempts` tries with capped exponential backoff and jitter on network errors,
429 and 5xx; any other status is permanent for this run. Alerts go into the outbox file
(``DataDir.alert_outbox``: ``<data>/state/budget-alerts-outbox.json``) *before* they are posted and leave it only once a
receiver accepted them, so a failed receiver or a crash mid-run means the next run retries them
(at least once; the payload's ``alert.event_id`` lets a receiver drop a repeat).

Webhook URLs are secrets (Slack's carry the token in the path): messages name only the host.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hive_core.store.atomic import PRIVATE_MODE, write_json_atomic

if TYPE_CHECKING:
    import httpx

    from hive_core.store.events import BudgetAlert

__all__ = ["Outbox", "WebhookPolicy", "alert_payload", "post_payload", "redact_url"]


@dataclass(frozen=True)
class WebhookPolicy:
    """How hard to try one POST."""

    # (fields with defaults: `duplicates` pairs them with any such record by shape; nothing is repeated)
    timeout_s: float = 5.0
    attempts: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/...``: enough to say where, never the token in the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..."


def alert_payload(alert: BudgetAlert) -> dict[str, Any]:
    """The JSON body posted for one alert."""
    fields = alert.model_dump(mode="json", include={
        "event_id", "ts", "scope", "period", "period_start", "kind", "threshold_pct",
        "limit_usd", "spent_usd", "forecast_usd", "app",
    })
    return {"text": alert.message, "alert": fields}


def post_payload(
    client: httpx.Client,
    url: str,
    payload: dict[str, Any],
    policy: WebhookPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """POST ``payload``; ``None`` when accepted, else the last failure as one line (no URL secrets)."""
    import httpx

    error = "not attempted"
    for attempt in range(1, policy.attempts + 1):
        try:
            response = client.post(url, json=payload, timeout=policy.timeout_s)
        except httpx.HTTPError as exc:
            error, retryable = f"{type(exc).__name__}", True
        else:
            if response.status_code < 300:
                return None
            error = f"HTTP {response.status_code}"
            retryable = response.status_code == 429 or response.status_code >= 500
        if not retryable or attempt == policy.attempts:
            break
        delay = min(policy.max_backoff_s, policy.backoff_s * 2 ** (attempt - 1))
        sleep(delay * random.uniform(0.5, 1.0))  # jitter: many hosts' cron fire at the same minute
    return f"webhook {redact_url(url)} did not accept the alert after {attempt} attempt(s): {error}"


class Outbox:
    """Alerts waiting for the webhook: a JSON list of payloads, rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: where :meth:`load` moved an unreadable outbox file, if it did
        self.moved_aside: Path | None = None

    def load(self) -> list[dict[str, Any]]:
        """The waiting payloads, oldest first. An unreadable file (not JSON, not UTF-8) is moved
        aside to ``<name>.corrupt-<n>`` - kept, not lost - and :attr:`moved_aside` says where."""
        try:
            items = json.loads(self.path.read_bytes().decode())
        except FileNotFoundError:
            return []
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            n = 1
            while self.path.with_name(f"{self.path.name}.corrupt-{n}").exists():
                n += 1
            self.moved_aside = self.path.with_name(f"{self.path.name}.corrupt-{n}")
            self.path.replace(self.moved_aside)
            return []
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def save(self, items: list[dict[str, Any]]) -> None:
        """Replace the waiting payloads."""
        write_json_atomic(self.path, items, indent=1, sort_keys=False, mode=PRIVATE_MODE)  # alert text stays private
