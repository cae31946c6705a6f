"""Virtual keys of the gateway: who may call it, under which app, budget, models and rate.

    KeyStore      create (the secret ``hk-...`` shown once), verify on every request, list, revoke
    VirtualKey    one key: app, user, limits, models, rpm; never the secret
    RateLimiter   requests per minute per key, exact across the gateway's worker processes
    UnknownKey    a key id the store does not hold ("did you mean")

A key's daily/monthly limits are the budget scope ``key:<key_id>`` (:mod:`hive_core.budget`):
``Budget.reserve(..., key=key.key_id)`` reserves against them with the global, app and model limits.
The files live under ``<data>/state/keys/`` (:class:`~hive_core.store.datadir.DataDir`), private.
"""

from __future__ import annotations

from hive_core.keys.key import VirtualKey
from hive_core.keys.rate import RateLimiter
from hive_core.keys.store import KeyStore, UnknownKey, read_keys

__all__ = ["KeyStore", "RateLimiter", "UnknownKey", "VirtualKey", "read_keys"]
