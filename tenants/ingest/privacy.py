"""Privacy at the edge: nothing personal reaches the analytics store (rules in docs/data-format.md).

* Session ids are replaced by ``sha256(salt || ':' || id)``; the salt is 32 random bytes per
  tenant, kept encrypted in ``portal.tenant_settings`` and never leaves the server, so the hash
  cannot be reversed by trying candidate ids and cannot be linked across tenants.
* Free text (step names of events, feedback comments) is checked for e-mail addresses, phone
  numbers and IBANs. Step names come from a form definition, so a hit means a broken export:
  the row is rejected. Comments are written by citizens: the match is replaced by ``[…]``.

How text is searched: first normalised to Unicode NFKC, so full-width or otherwise styled
characters (``０６４２１``, ``ｍａｘ＠ｅｘａｍｐｌｅ．ｄｅ``) read as the plain ones; a scrubbed comment is
stored in that form. Phone numbers are found by ``phonenumbers`` (Google's libphonenumber for
Python), which knows the German numbering plan and every common way of writing a number
(``(06421) 123456``, ``06421 / 12 34 56``, ``0171.2345678``, ``+49 (0) 6421 123456``); it accepts a
match when it is a valid German or international number, so amounts, postcodes and file numbers
stay; a number that is only possible (a mobile number one digit short) counts when it is written as
phone numbers are: with +49/0049 and nine digits or more, or with the leading 0 and eight or more,
and is not a date. E-mail addresses are matched with
``@`` and with the usual disguises: ``(at)``, ``[at]``, ``{at}``, `` at ``, ``(dot)``, ``(punkt)``,
spaces around the signs, umlauts in the domain. The loader checks step names once per distinct
value (``tenants.ingest.loader``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata

import phonenumbers

from tenants import tenant_state
from tenants.crypto import decrypt, encrypt
from tenants.settings import Settings

REGION = "DE"
_OPEN, _CLOSE = r"[(\[{<]\s*", r"\s*[)\]}>]"
_AT = rf"(?:\s*@\s*|\s*{_OPEN}(?:at|ät|ae?t){_CLOSE}\s*|\s+(?:at|ät)\s+)"
_DOT = rf"(?:\s*\.\s*|\s*{_OPEN}(?:dot|punkt){_CLOSE}\s*|\s+(?:dot|punkt)\s+)"
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
EMAIL = re.compile(rf"(?<![\w.%+-])[\w.%+-]+{_AT}{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}[^\W\d_]{{2,}}(?![\w-])",
                   re.IGNORECASE)
IBAN = re.compile(r"(?<![0-9A-Za-z])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}")
#: Digits a number needs to count as a phone number when libphonenumber finds it possible but not valid.
_INTERNATIONAL_MIN_DIGITS = 9
_NATIONAL_MIN_DIGITS = 8
_DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
REDACTED = "[…]"

SALT_SETTING = "ingest_salt"


def _normalised(textvalue: str) -> str:
    return unicodedata.normalize("NFKC", textvalue)


def _meant_as_phone(raw: str) -> bool:
    """A number libphonenumber finds possible but not valid, written the way phone numbers are written:
    with +49/00 and at least nine digits, or with the trunk 0 and at least eight, and not a date."""
    digits = sum(ch.isdigit() for ch in raw)
    if raw.startswith(("+", "00")):
        return digits >= _INTERNATIONAL_MIN_DIGITS
    return raw.startswith("0") and digits >= _NATIONAL_MIN_DIGITS and not _DATE.fullmatch(raw)


def _phone_spans(textvalue: str) -> list[tuple[int, int]]:
    """Where phone numbers are in (normalised) text: valid ones, and ones a writer evidently meant
    (a mobile number one digit short is still somebody's number)."""
    spans = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(
        textvalue, REGION, leniency=phonenumbers.Leniency.VALID)]
    for match in phonenumbers.PhoneNumberMatcher(textvalue, REGION, leniency=phonenumbers.Leniency.POSSIBLE):
        if _meant_as_phone(match.raw_string) and not any(start <= match.start < end for start, end in spans):
            spans.append((match.start, match.end))
    return sorted(spans)


def _found(textvalue: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every piece of personal data in normalised text, in text order.

    IBAN before phone number: the digit groups of an IBAN would otherwise pass for a phone number.
    """
    found = [(m.start(), m.end(), "e-mail address") for m in EMAIL.finditer(textvalue)]
    found += [(m.start(), m.end(), "IBAN") for m in IBAN.finditer(textvalue)]
    taken = [(start, end) for start, end, _ in found]
    found += [(start, end, "phone number") for start, end in _phone_spans(textvalue)
              if not any(start < t_end and t_start < end for t_start, t_end in taken)]
    return sorted(found)


def personal_data_in(textvalue: str | None) -> str | None:
    """The kind of personal data found in ``textvalue`` ("e-mail address", "IBAN", "phone number"), or None."""
    if not textvalue:
        return None
    kinds = {kind for _, _, kind in _found(_normalised(textvalue))}
    return next((kind for kind in ("e-mail address", "IBAN", "phone number") if kind in kinds), None)


def scrub(textvalue: str | None) -> str | None:
    """``textvalue`` in NFKC form with every e-mail address, phone number and IBAN replaced by ``[…]``."""
    if textvalue is None:
        return None
    textvalue = _normalised(textvalue)
    for start, end, _ in reversed(_found(textvalue)):
        textvalue = textvalue[:start] + REDACTED + textvalue[end:]
    return textvalue


def hash_session(salt: str, session_id: str | None) -> bytes | None:
    """The stored form of a session id (the loader computes the same in SQL: 32 bytes, never hex text)."""
    if not session_id:
        return None
    return hashlib.sha256(f"{salt}:{session_id}".encode()).digest()


def tenant_salt(session, settings: Settings) -> str:
    """The tenant's secret salt (created on first use); call inside ``tenant_transaction``."""
    from tenants.context import current_tenant_id

    stored = tenant_state.load(session, current_tenant_id(), SALT_SETTING)
    if stored is None:
        salt = secrets.token_hex(32)
        tenant_state.add(session, current_tenant_id(), SALT_SETTING, {"encrypted": encrypt(settings, salt)})
        return salt
    return decrypt(settings, stored["encrypted"])
