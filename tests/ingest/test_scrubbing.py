"""Issue 14, finding 4: free text is scrubbed of phone numbers and e-mail addresses in every common spelling.

Feedback comments are written by citizens; what they type is stored only after ``scrub`` (and step
names with personal data are rejected by the loader through ``personal_data_in``).
"""

from __future__ import annotations

import pytest

from tenants.ingest.feedback import clean_submission
from tenants.ingest.privacy import REDACTED, personal_data_in, scrub

PHONES = [
    "(06421) 123456",  # the four spellings of the issue ...
    "06421 / 123456",
    "0171.2345678",
    "+49 (0) 6421 123456",
    "06421-123456",  # ... and more that people write
    "06421/12 34 56",
    "0 64 21 / 12 34 56",
    "0049 6421 123456",
    "+49 171 2345678",
    "+49(6421)123456",
    "0171 / 234 56 78",
    "06421 201-0",
    "0151 2345678",  # a mobile number one digit short: still somebody's number (the demo writes it)
    "０６４２１ １２３４５６",  # full-width digits
]
EMAILS = [
    "max.mustermann@example.org",
    "ｍａｘ＠ｅｘａｍｐｌｅ．ｄｅ",  # full-width
    "max (at) example (dot) de",
    "max[at]example[dot]de",
    "max {at} example {punkt} de",
    "max(at)example.de",
    "max @ example . de",
    "max at example dot de",
    "erika.mueller@bürgeramt-marburg.de",
]
CLEAN = [
    "Antrag am 01.02.2026 gestellt",
    "Termin 05/03/2026 verschoben",
    "am 12.03.2026 um 14:30 Uhr",
    "Schritt 3 von 5",
    "Gebühr 12,50 Euro",
    "PLZ 35037",
    "Aktenzeichen 2026/12345",
    "Rechnung Nr. 123456789",
    "Zimmer 1.23, Haus 4",
    "Das hat gut geklappt, danke!",
    "Ich war at home",
]


@pytest.mark.parametrize("phone", PHONES)
def test_phone_numbers_in_every_common_spelling_are_found_and_scrubbed(phone):
    comment = f"Bitte rufen Sie mich an unter {phone}, danke."
    assert personal_data_in(comment) == "phone number"
    cleaned = scrub(comment)
    assert REDACTED in cleaned and not any(ch.isdigit() for ch in cleaned), cleaned
    assert cleaned.startswith("Bitte rufen Sie mich an unter") and cleaned.endswith(", danke.")


@pytest.mark.parametrize("address", EMAILS)
def test_obfuscated_and_full_width_e_mail_addresses_are_found_and_scrubbed(address):
    comment = f"Schreiben Sie an {address} bitte"
    assert personal_data_in(comment) == "e-mail address"
    cleaned = scrub(comment)
    assert cleaned == f"Schreiben Sie an {REDACTED} bitte", cleaned


@pytest.mark.parametrize("value", CLEAN)
def test_ordinary_text_keeps_its_numbers(value):
    assert personal_data_in(value) is None
    assert scrub(value) == value


def test_a_citizens_comment_is_stored_without_them():
    stored = clean_submission({"rating": 2, "service_key": "99102013104000",
                               "comment": "Ging nicht. Ruf an: (06421) 123456 oder ｍａｘ＠ｅｘａｍｐｌｅ．ｄｅ"})
    assert stored["comment"] == f"Ging nicht. Ruf an: {REDACTED} oder {REDACTED}"
