"""Secrets at rest: encrypted with the newest key, readable with any configured key, rotatable."""

import dataclasses

import pytest
from cryptography.fernet import Fernet

from tenants.crypto import SecretError, decrypt, encrypt, rotate


def test_encrypt_rotate_and_retire_the_old_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = dataclasses.replace(settings, encryption_keys=(old,))
    during = dataclasses.replace(settings, encryption_keys=(new, old))
    after = dataclasses.replace(settings, encryption_keys=(new,))

    stored = encrypt(before, "client-secret-Marburg")
    assert "client-secret" not in stored
    assert decrypt(during, stored) == "client-secret-Marburg"
    with pytest.raises(SecretError):
        decrypt(after, stored)
    rotated = rotate(during, stored)
    assert decrypt(after, rotated) == "client-secret-Marburg"


def test_missing_key_is_a_clear_error(settings):
    with pytest.raises(SecretError, match="EGOV_ENCRYPTION_KEYS"):
        encrypt(dataclasses.replace(settings, encryption_keys=()), "x")
