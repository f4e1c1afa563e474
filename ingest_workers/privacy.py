"""Privacy at the edge: nothing personal reaches the analytics store (rules in docs/data-format.md).

* Session ids are replaced by ``sha256(salt || ':' || id)``; the salt is 32 random bytes per
  tenant, kept encrypted in ``portal.tenant_settings`` and never leaves the server, so the hash
  cannot be reversed by trying candidate ids and cannot be linked across tenants.
* Free text (step names of events, feedback comments) is checked for e-mail addresses, phone
  numbers and IBANs. Step names come from a form definition, so a hit means a broken export:
  the row is rejected. Comments are written by citizens: the match is replaced by ``[…]``.

The loader checks step names once per distinct value in Python (``ingest_workers.loader``); the
patterns are written in syntax PostgreSQL reads the same way, so SQL can reuse them
(``tests/ingest/test_canonical_and_privacy.py`` checks that both agree).
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select

from portal.settings import Settings
from tenants.crypto import decrypt, encrypt
from tenants.models import TenantSetting

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
#: PostgreSQL's regular expressions understand the same syntax (including the look-behind).
#: + or 0 and at least 7 digits, single spaces, slashes, dashes or brackets between them; dots are
#: not separators, so dates like 01.02.2026 are no phone numbers.
PHONE = r"(?<![0-9A-Za-z])(?:\+|00|0)[0-9](?:[ /()-]?[0-9]){5,}"
IBAN = r"(?<![0-9A-Za-z])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}"

# IBAN before phone: the digit groups of an IBAN would otherwise pass for a phone number.
PATTERNS = {"e-mail address": EMAIL, "IBAN": IBAN, "phone number": PHONE}
_COMPILED = {name: re.compile(pattern) for name, pattern in PATTERNS.items()}
REDACTED = "[…]"

SALT_SETTING = "ingest_salt"


def personal_data_in(textvalue: str | None) -> str | None:
    """The kind of personal data found in ``textvalue`` ("e-mail address", …), or None."""
    if not textvalue:
        return None
    for name, pattern in _COMPILED.items():
        if pattern.search(textvalue):
            return name
    return None


def scrub(textvalue: str | None) -> str | None:
    """``textvalue`` with every e-mail address, phone number and IBAN replaced by ``[…]``."""
    if textvalue is None:
        return None
    for pattern in _COMPILED.values():
        textvalue = pattern.sub(REDACTED, textvalue)
    return textvalue


def hash_session(salt: str, session_id: str | None) -> bytes | None:
    """The stored form of a session id (the loader computes the same in SQL: 32 bytes, never hex text)."""
    if not session_id:
        return None
    return hashlib.sha256(f"{salt}:{session_id}".encode()).digest()


def tenant_salt(session, settings: Settings) -> str:
    """The tenant's secret salt (created on first use); call inside ``tenant_transaction``."""
    row = session.scalar(select(TenantSetting).where(TenantSetting.key == SALT_SETTING))
    if row is None:
        from tenants.context import current_tenant_id

        salt = secrets.token_hex(32)
        row = TenantSetting(tenant_id=current_tenant_id(), key=SALT_SETTING,
                            value={"encrypted": encrypt(settings, salt)})
        session.add(row)
        session.flush()
        return salt
    return decrypt(settings, row.value["encrypted"])
