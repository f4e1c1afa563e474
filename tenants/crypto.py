"""Secrets at rest: client secrets, API tokens of data sources, per-tenant salts.

Encryption uses Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``)
with the keys in ``EGOV_ENCRYPTION_KEYS``: the first key encrypts, every key
decrypts. Rotating a key:

1. put a new key in front: ``EGOV_ENCRYPTION_KEYS=<new>,<old>`` and restart;
2. re-encrypt what is stored: ``rotate(token)`` for each value (see the
   operator command that walks the tables);
3. remove the old key and restart.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tenants.settings import Settings


class SecretError(ValueError):
    """A stored secret cannot be decrypted with any configured key."""


def _fernet(settings: Settings) -> MultiFernet:
    if not settings.encryption_keys:
        raise SecretError("No encryption key configured (EGOV_ENCRYPTION_KEYS).")
    return MultiFernet([Fernet(key.encode()) for key in settings.encryption_keys])


def encrypt(settings: Settings, plaintext: str) -> str:
    return _fernet(settings).encrypt(plaintext.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    try:
        return _fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretError("A stored secret cannot be decrypted with the configured keys.") from exc


def rotate(settings: Settings, token: str) -> str:
    """The same secret, encrypted with the first (newest) key."""
    try:
        return _fernet(settings).rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretError("A stored secret cannot be decrypted with the configured keys.") from exc
