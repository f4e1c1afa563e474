"""The OpenAPI 3.1 description of the push API, built from the canonical schemas (no second copy)."""

from __future__ import annotations

from typing import Any

from ingest_workers.canonical import aggregate_schema, event_schema

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


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
        {"name": "source_id", "in": "path", "required": True, "schema": {"type": "integer"}},
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
                                          "description": "Required for CSV bodies (JSON carries batch_id).",
                                          "schema": {"type": "string", "maxLength": 200}}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Batch"}},
                    "text/csv": {"schema": {"type": "string"},
                                 "description": "A file in the data source's mapping profile (canonical by default)."},
                }},
                "responses": {
                    "202": _status_response("Accepted; poll status_url (also in the Location header)."),
                    "200": _status_response("This batch id was sent before; nothing was changed."),
                    "401": {"description": "Missing or invalid token", "content": PROBLEM},
                    "403": {"description": "The tenant is not active", "content": PROBLEM},
                    "404": {"description": "The municipality has no such data source"},
                    "413": {"description": "Body larger than 20 MB", "content": PROBLEM},
                    "415": {"description": "Unsupported content type", "content": PROBLEM},
                    "422": {"description": "Malformed batch", "content": PROBLEM},
                    "429": {"description": "Too many requests (120 per minute and source)"},
                }}},
            f"{source_path}/batches/{{run_id}}": {"get": {
                "summary": "Status of a batch",
                "parameters": params + [{"name": "run_id", "in": "path", "required": True,
                                          "schema": {"type": "integer"}}],
                "responses": {"200": _status_response("Status and counters"),
                              "401": {"description": "Missing or invalid token", "content": PROBLEM},
                              "404": {"description": "No such batch", "content": PROBLEM}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "ProcessEvent": _strip(event_schema()),
                "DailyAggregate": _strip(aggregate_schema()),
                "Batch": {"type": "object", "required": ["batch_id"], "additionalProperties": False, "properties": {
                    "batch_id": {"type": "string", "minLength": 1, "maxLength": 200},
                    "events": {"type": "array", "items": {"$ref": "#/components/schemas/ProcessEvent"}},
                    "aggregates": {"type": "array", "items": {"$ref": "#/components/schemas/DailyAggregate"}}}},
                "RunStatus": {"type": "object", "properties": {
                    "run_id": {"type": "integer"}, "batch_id": {"type": "string"},
                    "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
                    "rows_total": {"type": "integer"}, "rows_accepted": {"type": "integer"},
                    "rows_rejected": {"type": "integer"}, "error": {"type": ["string", "null"]},
                    "status_url": {"type": "string", "format": "uri"}}},
                "Problem": {"type": "object", "properties": {"status": {"type": "integer"},
                                                             "title": {"type": "string"}}},
            },
        },
    }
