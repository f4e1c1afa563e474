"""The OpenAPI 3.1 description of the push API, built from the canonical schemas (no second copy).

It describes every answer the API gives, errors included; ``tests/ingest/test_api_schema.py``
runs schemathesis against the served document and fails on any answer it does not describe.
"""

from __future__ import annotations

from typing import Any

from tenants.canonical import aggregate_schema, event_schema

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
#: As ``portal.views.api.BATCH_ID``: stored as the run's key, so no control characters.
BATCH_ID_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,200}$"


#: Ids are PostgreSQL integers (portal/inputs.py); a number beyond them names nothing (404).
ID = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


def _strip(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if not k.startswith("$")}


def _status_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/RunStatus"}}}}


def openapi_document(server_url: str) -> dict[str, Any]:
    source_path = "/api/v1/t/{ags}/sources/{source_id}"
    params = [
        {"name": "ags", "in": "path", "required": True,
         "description": "AGS of the municipality (8 digits, 5 for districts)",
         "schema": {"type": "string", "pattern": "^[0-9]{5}([0-9]{3})?$"}},
        {"name": "source_id", "in": "path", "required": True, "schema": ID},
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": "eGovSAD push API", "version": "1.0.0",
                 "description": "Send usage data of online services in the canonical format. Each data source has "
                                "its own bearer token (shown once when issued, revocable). A batch is loaded "
                                "asynchronously; sending the same batch id again changes nothing."},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": {
            f"{source_path}/batches": {"post": {
                "summary": "Send a batch",
                "parameters": params + [{"name": "Batch-Id", "in": "header", "required": False,
                                          "description": "The batch id of a CSV body (JSON carries batch_id); "
                                                         "without it a CSV body is identified by its SHA-256.",
                                          "schema": {"type": "string", "pattern": BATCH_ID_PATTERN}}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Batch"}},
                    "text/csv": {"schema": {"type": "string"},
                                 "description": "A file in the data source's mapping profile (canonical by default)."},
                }},
                "responses": {
                    "202": _status_response("Accepted; poll status_url (also in the Location header). Each "
                                            "event and aggregate is checked when the batch is loaded: bad ones "
                                            "are rejected one by one, with their number, field and reason."),
                    "200": _status_response("This batch id was sent before; nothing was changed."),
                    "401": _problem("Missing or invalid token"),
                    "403": _problem("The tenant is not active or the data source is switched off"),
                    "404": _problem("The municipality has no such data source"),
                    "413": _problem("Body larger than 20 MB (also when sent in chunks)"),
                    "415": _problem("Unsupported content type"),
                    "422": _problem("Malformed batch: not JSON, no batch id, unknown fields, no events and no "
                                    "aggregates"),
                    "429": _problem("Too many requests (120 per minute and source)"),
                }}},
            f"{source_path}/batches/{{run_id}}": {"get": {
                "summary": "Status of a batch",
                "parameters": params + [{"name": "run_id", "in": "path", "required": True, "schema": ID}],
                "responses": {"200": _status_response("Status and counters"),
                              "401": _problem("Missing or invalid token"),
                              "404": _problem("No such batch"),
                              "429": _problem("Too many requests (600 per minute and source)")}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "ProcessEvent": _strip(event_schema()),
                "DailyAggregate": _strip(aggregate_schema()),
                "Batch": {"type": "object", "required": ["batch_id"], "additionalProperties": False, "properties": {
                    "batch_id": {"type": "string", "pattern": BATCH_ID_PATTERN},
                    "events": {"type": ["array", "null"], "items": {"$ref": "#/components/schemas/ProcessEvent"}},
                    "aggregates": {"type": ["array", "null"],
                                   "items": {"$ref": "#/components/schemas/DailyAggregate"}}},
                    # at least one event or aggregate
                    "anyOf": [{"required": ["events"], "properties": {"events": {"type": "array", "minItems": 1}}},
                              {"required": ["aggregates"],
                               "properties": {"aggregates": {"type": "array", "minItems": 1}}}]},
                "RunStatus": {"type": "object", "properties": {
                    "run_id": {"type": "integer"}, "batch_id": {"type": "string"},
                    "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "duplicate"]},
                    "rows_total": {"type": "integer"}, "rows_accepted": {"type": "integer"},
                    "rows_rejected": {"type": "integer"}, "error": {"type": ["string", "null"]},
                    "status_url": {"type": "string", "format": "uri"}}},
                "Problem": {"type": "object", "properties": {"status": {"type": "integer"},
                                                             "title": {"type": "string"}}},
            },
        },
    }
