"""Virtual keys on the gateway's request path: ``KeyStore.verify`` and ``RateLimiter.acquire``.

``verify`` runs on every gateway request: one primary-key read of the shared SQLite file (which is
what makes another process's revocation count at once) plus one HMAC, and the limits from
``config.json`` (one ``stat``). Target (issue 14): <= 100 us with a warm store. The peer, measured
in the same run, is the floor of any key check: a dict lookup plus the same HMAC, in memory (it
cannot see a revocation made by another process). ``acquire`` is one immediate write transaction
(the exact sliding window of ``rpm`` admissions); it is shown for the record.
"""

from __future__ import annotations

import hashlib
import hmac
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Figure, median_time

CALLS = 2000


def run() -> list[Figure]:
    """Median cost of verify (against the in-memory floor) and of acquire."""
    from hive_core.keys import KeyStore, RateLimiter
    from hive_core.store.datadir import DataDir

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        data = DataDir(Path(tmp))
        with KeyStore(data) as store, RateLimiter(data) as limiter:
            made = [store.create(app=f"app{n}", daily_usd=5, rpm=10**9, now=now) for n in range(100)]
            secret, key = made[50]
            store.verify(secret, now=now)  # warm: the row, the config and the built key are cached
            ours = median_time(lambda: store.verify(secret, now=now), number=CALLS)
            salt = b"s" * 16
            table = {k.key_id: (salt, hmac.new(salt, s.encode(), hashlib.sha256).digest()) for s, k in made}

            def floor() -> bool:
                row = table[secret[3:15]]
                return hmac.compare_digest(hmac.new(row[0], secret.encode(), hashlib.sha256).digest(), row[1])

            peer = median_time(floor, number=CALLS)
            acquire = median_time(lambda: limiter.acquire(key, now=now), number=CALLS // 4)
    ours_us, peer_us, acquire_us = ours * 1e6, peer * 1e6, acquire * 1e6
    return [
        Figure("virtual key verify, warm store (median)", ours_us, "us", "<= 100 us", ours_us <= 100,
               peer="dict lookup + HMAC in memory", peer_value=peer_us, ratio=ours_us / peer_us,
               note="100 keys; one SQLite primary-key read per call, so a revocation by another process counts at once"),
        Figure("virtual key rpm acquire (median)", acquire_us, "us", "-", None,
               note="one BEGIN IMMEDIATE transaction on the keys' rate file (synchronous=OFF), one process"),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure)
