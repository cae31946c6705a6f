"""A virtual key's secret: how it is made, what is stored of it, and how a presented one is checked.

    hk-3f9a1c2b7d4e.Xq2...43 characters...     "hk-" + key id (12 hex, public) + "." + 32 random bytes

The key id inside the secret finds the key's row with one primary-key lookup; the random part is
what proves possession. Only ``HMAC-SHA256(salt, secret)`` is stored, with a random salt per key.

Why a fast hash and not bcrypt/scrypt/argon2: those slow functions protect *guessable* secrets
(passwords) against brute force of a stolen hash. A secret here is 256 random bits from
:func:`secrets.token_urlsafe`; no amount of hashing speed makes guessing it feasible, and a slow
hash would cost tens of milliseconds on every gateway request. The per-key salt keeps two stores,
or two keys, from ever sharing a hash, and stops precomputed tables. The stored hash is compared
with :func:`hmac.compare_digest`, whose time does not depend on where the bytes differ, so response
times say nothing about how close a guess came.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["PREFIX", "digest", "key_id_of", "matches", "new_salt", "new_secret"]

#: what every secret starts with: easy to recognise in a leaked config or a secret scanner
PREFIX = "hk-"
#: random bytes in a secret (256 bits) and in a salt
SECRET_BYTES = 32
SALT_BYTES = 16
#: where the "." after the key id is, and the whole length (token_urlsafe(32) is 43 characters)
_DOT = len(PREFIX) + 12
_LENGTH = _DOT + 1 + 43


def new_secret() -> tuple[str, str]:
    """A new ``(key_id, secret)``."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}{key_id}.{secrets.token_urlsafe(SECRET_BYTES)}"


def key_id_of(secret: str) -> str | None:
    """The key id a presented secret names, or ``None`` when it is not shaped like a secret.
    (Shape only, by slicing - a regular expression costs more than the row read; the HMAC decides.)"""
    if len(secret) != _LENGTH or not secret.startswith(PREFIX) or secret[_DOT] != ".":
        return None
    return secret[len(PREFIX):_DOT]


def new_salt() -> bytes:
    """A random salt for one key."""
    return secrets.token_bytes(SALT_BYTES)


def digest(salt: bytes, secret: str) -> bytes:
    """What is stored of ``secret``."""
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def matches(salt: bytes, stored: bytes, secret: str) -> bool:
    """Whether ``secret`` is the one whose digest is ``stored`` (constant time in the digest)."""
    return hmac.compare_digest(digest(salt, secret), stored)
