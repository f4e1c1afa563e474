"""The documented format matches the code, and the privacy rules do what docs/data-format.md says."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tenants import canonical
from tenants.ingest.privacy import hash_session, personal_data_in, scrub


@pytest.mark.parametrize("name", sorted(canonical.SCHEMAS))
def test_published_json_schemas_are_the_ones_the_code_uses(name):
    published = json.loads((canonical.SCHEMA_DIR / name).read_text())
    assert published == canonical.SCHEMAS[name](), "run: python -m tenants.canonical"


def test_schema_vocabularies_match_the_database_checks(owner_engine):
    with owner_engine.connect() as conn:
        definition = conn.execute(text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ck_process_events_payment_method'"
        )).scalar()
    assert all(f"'{method}'" in definition for method in canonical.PAYMENT_METHODS)


FOUND = [
    ("Bitte an max.mustermann@example.org schreiben", "e-mail address"),
    ("Ruf an: 06421 201-0", "phone number"),
    ("Meine Nummer +49 151 2345678", "phone number"),
    ("IBAN DE89 3704 0044 0532 0130 00", "IBAN"),
    ("iban de89370400440532013000", "IBAN"),
]
CLEAN = ["Antrag am 01.02.2026 gestellt", "Schritt 3 von 5", "Gebühr 12,50 Euro", "Angaben zum Hund", "PLZ 35037"]


@pytest.mark.parametrize(("value", "kind"), FOUND)
def test_personal_data_is_found(value, kind):
    assert personal_data_in(value) == kind
    assert "[…]" in scrub(value)


@pytest.mark.parametrize("value", CLEAN)
def test_ordinary_text_is_left_alone(value):
    assert personal_data_in(value) is None and scrub(value) == value


def test_session_hash_depends_on_the_salt():
    assert hash_session("salt-a", "abc") != hash_session("salt-b", "abc")
    assert hash_session("salt-a", None) is None
