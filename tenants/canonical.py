"""The canonical, vendor-neutral format every source is mapped onto (docs/data-format.md).

Two payloads: *process events* (one row per step of one session) and *daily aggregates* (counts
per day when a source only has counts). The column lists and vocabularies here are the single
source: the loader validates against them, the JSON Schemas in docs/schemas/ are generated from
them (``python -m tenants.canonical`` rewrites the files; a test fails when they drift),
and the database enforces the same values with CHECK constraints.
"""

from __future__ import annotations

import json
from pathlib import Path

EVENT_TYPES = ("started", "step_reached", "submitted", "aborted", "payment", "authentication")
CHANNELS = ("web", "ios", "android")
PAYMENT_METHODS = ("paypal", "credit_card", "sepa_direct_debit", "giropay", "paydirekt", "wero", "invoice",
                   "on_site", "free_of_charge", "other")
#: giropay and paydirekt ended on 2024-12-31 (replaced by Wero); later payments with them are rejected.
LEGACY_PAYMENT_METHODS = ("giropay", "paydirekt")
LEGACY_PAYMENT_END = "2024-12-31"
PAYMENT_PROVIDERS = ("epaybl", "pmpayment", "girosolution", "epay21", "other")
#: The codes of the domain notes (section 2.4), shared with the Open Data datasets.
AUTH_METHODS = ("none", "bundid_basis", "bundid_elster", "bundid_eid", "eu_eid", "muk_elster", "other")
TRUST_LEVELS = ("none", "basis", "substanziell", "hoch")

SERVICE_KEY_PATTERN = r"^(99[0-9]{12}|local:[a-z0-9][a-z0-9_.-]{0,57})$"

#: Column order of the canonical event CSV (the header may list them in any order; only
#: occurred_at, service_key and event_type are required).
EVENT_COLUMNS = ("event_id", "occurred_at", "service_key", "session_id", "event_type", "step_no", "step_name",
                 "channel", "payment_method", "payment_provider", "auth_method", "trust_level")
EVENT_REQUIRED = ("occurred_at", "service_key", "event_type")

AGGREGATE_COLUMNS = ("day", "service_key", "measure", "value", "step_no", "channel", "payment_method",
                     "auth_method", "trust_level")
AGGREGATE_REQUIRED = ("day", "service_key", "measure", "value")

PAYLOADS = {"events": EVENT_COLUMNS, "aggregates": AGGREGATE_COLUMNS}
REQUIRED = {"events": EVENT_REQUIRED, "aggregates": AGGREGATE_REQUIRED}

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "docs" / "schemas"


def _enum(values, description: str) -> dict:
    return {"type": ["string", "null"], "enum": [*values, None], "description": description}


def event_schema() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://egovsad.example/schemas/process-event.schema.json",
        "title": "Process event",
        "description": "One step of one session in an online service (canonical eGovSAD format).",
        "type": "object",
        "additionalProperties": False,
        "required": list(EVENT_REQUIRED),
        "properties": {
            "event_id": {"type": ["string", "null"], "format": "uuid",
                         "description": "Stable id from the source; derived from the row when missing."},
            "occurred_at": {"type": "string", "format": "date-time",
                            "description": "ISO 8601 with offset; without offset Europe/Berlin is assumed."},
            "service_key": {"type": "string", "pattern": SERVICE_KEY_PATTERN,
                            "description": "LeiKa key (14 digits, 99…) or local:<name> for services without one."},
            "session_id": {"type": ["string", "null"], "maxLength": 200,
                           "description": "The source's session id; hashed with the tenant's secret salt on arrival."},
            "event_type": {"type": "string", "enum": list(EVENT_TYPES)},
            "step_no": {"type": ["integer", "null"], "minimum": 0, "maximum": 999},
            "step_name": {"type": ["string", "null"], "maxLength": 200,
                          "description": "Free text; must not contain e-mail addresses, phone numbers or IBANs."},
            "channel": _enum(CHANNELS, "web, iOS app or Android app"),
            "payment_method": _enum(PAYMENT_METHODS, "giropay and paydirekt only until 2024-12-31"),
            "payment_provider": _enum(PAYMENT_PROVIDERS, "the payment service provider"),
            "auth_method": _enum(AUTH_METHODS, "how the user signed in"),
            "trust_level": _enum(TRUST_LEVELS, "eIDAS trust level of the authentication"),
        },
    }


def aggregate_schema() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://egovsad.example/schemas/daily-aggregate.schema.json",
        "title": "Daily aggregate",
        "description": "A count per day for sources without events (canonical eGovSAD format).",
        "type": "object",
        "additionalProperties": False,
        "required": list(AGGREGATE_REQUIRED),
        "properties": {
            "day": {"type": "string", "format": "date"},
            "service_key": {"type": "string", "pattern": SERVICE_KEY_PATTERN},
            "measure": {"type": "string", "enum": list(EVENT_TYPES)},
            "value": {"type": "integer", "minimum": 0},
            "step_no": {"type": ["integer", "null"], "minimum": 0, "maximum": 999},
            "channel": _enum(CHANNELS, "web, iOS app or Android app"),
            "payment_method": _enum(PAYMENT_METHODS, "giropay and paydirekt only until 2024-12-31"),
            "auth_method": _enum(AUTH_METHODS, "how the user signed in"),
            "trust_level": _enum(TRUST_LEVELS, "eIDAS trust level"),
        },
    }


def batch_schema() -> dict:
    """The JSON body of the push API."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://egovsad.example/schemas/batch.schema.json",
        "title": "Push batch",
        "type": "object",
        "required": ["batch_id"],
        "properties": {
            "batch_id": {"type": "string", "minLength": 1, "maxLength": 200,
                         "description": "Unique per data source; sending the same id again changes nothing."},
            "events": {"type": "array", "items": {"$ref": "process-event.schema.json"}},
            "aggregates": {"type": "array", "items": {"$ref": "daily-aggregate.schema.json"}},
        },
    }


SCHEMAS = {
    "process-event.schema.json": event_schema,
    "daily-aggregate.schema.json": aggregate_schema,
    "batch.schema.json": batch_schema,
}


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, build in SCHEMAS.items():
        (directory / name).write_text(render(build()))


if __name__ == "__main__":
    write_schemas()
